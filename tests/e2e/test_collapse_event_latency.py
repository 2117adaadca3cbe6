"""Event delivery goes on while a slow health check runs.

The collapse controller's check here is a real process that marks its start
in a file, sleeps, and marks its end. The sub-agents keep working (one
listing per model call) while the watcher reads the events; each time an
event arrives, the watcher looks at the markers. Events that arrive after
the check started and before it ended prove the check did not hold up the
event stream: if sampling blocked the event loop, nothing would arrive in
between and the events would all come after the end marker. Nothing here
compares against wall-clock thresholds; only the order of arrivals and the
check's own start/end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, Reply, agent_responder

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

TURN_DELAY = 0.05
MAX_TURNS = 600
#: Events that must arrive while one check runs (a few model turns' worth).
MIN_EVENTS_DURING_CHECK = 3


def slow_check(markers: Path) -> common_pb2.CollapseConfig:
    """A check that writes ``started-N``, sleeps 2 s, then writes ``ended-N``."""
    script = (
        f"n=$(ls {shlex.quote(str(markers))} | grep -c started); "
        f"touch {shlex.quote(str(markers))}/started-$n; sleep 2; touch {shlex.quote(str(markers))}/ended-$n"
    )
    return common_pb2.CollapseConfig(
        enabled=True,
        checks=[common_pb2.HealthCheckSpec(name="command", options={"command": f"sh -c {shlex.quote(script)}"})],
        interval_ms=100,
        warmup_ms=600_000,
        check_timeout_ms=30_000,
    )


async def test_events_keep_flowing_while_a_slow_check_runs(tmp_path: Path, git_repo: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    done = False

    def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
        if done or turn.turn > MAX_TURNS:
            return None
        return [("list", {"path": "."})]

    respond = agent_responder(act)

    def fallback(body: Any) -> Reply:
        return dataclasses.replace(respond(body), delay=TURN_DELAY)

    # For each arrival: (sequence, check started, check ended), the first check's markers.
    arrivals: list[tuple[int, bool, bool]] = []
    async with FakeOpenAIServer() as server:
        server.fallback = fallback
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Keep listing",
                plan=common_pb2.Plan(subtasks=[common_pb2.SubTask(id="lister", instruction="List the folder.")]),
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(git_repo),
                    request_delay_ms=0,
                    cache_enabled=False,
                    max_steps_per_subagent=MAX_TURNS + 5,
                    collapse=slow_check(markers),
                ),
            )

            async def watch() -> None:
                nonlocal done
                async for event in client.watch(reply.swarm.id):
                    started, ended = (markers / "started-0").exists(), (markers / "ended-0").exists()
                    arrivals.append((event.sequence, started, ended))
                    if ended:
                        done = True  # the agent may finish now: the first check is over

            await asyncio.wait_for(watch(), 110)
            swarm = await client.get(reply.swarm.id)

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    during = [seq for seq, started, ended in arrivals if started and not ended]
    after = [seq for seq, _, ended in arrivals if ended]
    assert len(during) >= MIN_EVENTS_DURING_CHECK, arrivals[:40]
    # Arrivals are in sequence order, and the stream went on after the check too.
    assert [seq for seq, _, _ in arrivals] == sorted(seq for seq, _, _ in arrivals)
    assert after and min(after) > max(during)
