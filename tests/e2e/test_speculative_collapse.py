"""The collapse controller judges speculative variants like any other branch.

Three variants of one subtask write ``answer.py``; variant 1 writes a
syntax error and keeps working, so the controller's ``python-compile``
samples fail after the warm-up and it is killed (reason ``collapse``), while
the race goes on: variant 2 finishes once the kill is seen and wins (the
same check passes on its finished work), variant 3 is cancelled as a loser.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, agent_responder
from helpers import git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

TURN_DELAY = 0.05
MAX_TURNS = 400

COLLAPSE = common_pb2.CollapseConfig(
    enabled=True,
    checks=[common_pb2.HealthCheckSpec(name="python-compile")],
    interval_ms=150,
    warmup_ms=600,
    max_consecutive_failures=3,
    check_timeout_ms=20_000,
)


async def test_a_broken_variant_is_killed_and_the_race_goes_on(tmp_path: Path, git_repo: Path) -> None:
    killed = decided = False

    def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
        number = turn.subtask_id.rsplit("-", 1)[-1]
        if turn.turn == 1:
            code = "def f(:\n" if number == "1" else f"def f():\n    return {number}\n"
            return [("write", {"path": "answer.py", "content": code})]
        done = {"1": decided, "2": killed, "3": decided}[number]
        if done or turn.turn > MAX_TURNS:
            return None
        return [("list", {"path": "."})]

    respond = agent_responder(act)
    events: list[common_pb2.SwarmEvent] = []
    async with FakeOpenAIServer() as server:
        server.fallback = lambda body: dataclasses.replace(respond(body), delay=TURN_DELAY)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Answer",
                plan=common_pb2.Plan(
                    subtasks=[common_pb2.SubTask(id="feature", instruction="Write answer.py.", speculate=3)]
                ),
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(git_repo),
                    request_delay_ms=0,
                    cache_enabled=False,
                    max_retries=0,
                    max_steps_per_subagent=MAX_TURNS + 5,
                    collapse=COLLAPSE,
                ),
            )

            async def watch() -> None:
                nonlocal killed, decided
                async for event in client.watch(reply.swarm.id):
                    events.append(event)
                    kind = event.WhichOneof("kind")
                    killed = killed or (kind == "collapse_evaluated" and bool(event.collapse_evaluated.kills))
                    decided = decided or kind == "speculation_decided"

            await asyncio.wait_for(watch(), 110)
            swarm = await client.get(reply.swarm.id)

    feature = swarm.subtasks[0]
    assert feature.status == common_pb2.SUB_TASK_STATUS_COMPLETED, feature.status_reason
    broken, winner, loser = feature.variants
    branch = f"swarmd/{swarm.id}/feature.variant-1"
    kills = [k for e in events if e.WhichOneof("kind") == "collapse_evaluated" for k in e.collapse_evaluated.kills]
    assert [(k.subtask_id, k.branch) for k in kills] == [("feature.variant-1", branch)]
    assert broken.status == common_pb2.SUB_TASK_STATUS_CANCELLED and "collapse" in broken.reason, broken
    assert not broken.reason.startswith("speculative_loser")
    assert git(git_repo, "branch", "--list", branch).strip()
    assert winner.winner and winner.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert loser.status == common_pb2.SUB_TASK_STATUS_CANCELLED and loser.reason.startswith("speculative_loser")
    assert (git_repo / "answer.py").read_text() == "def f():\n    return 2\n"
    stats = swarm.stats.collapse
    assert (stats.kills, stats.speculative_wins, stats.speculative_losers) == (1, 1, 1)
    # The subtask itself was never a candidate: it has no branch of its own.
    judged = {ev.observation.subtask_id for e in events if e.WhichOneof("kind") == "collapse_evaluated" for ev in e.collapse_evaluated.evaluations}
    assert "feature" not in judged and "feature.variant-1" in judged
