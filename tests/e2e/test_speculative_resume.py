"""A speculative race whose orchestrator is stopped while its variants run,
then resumed (``ResumeSwarm``): embedded services, a real git repository,
the fake model server, a ``command`` health check.

Three variants of ``feature`` write ``answer.txt``. Variant 1 finishes at
once and fails the check (41); the others keep working (one slow listing
per model call). The orchestrator is stopped once variant 1 has ended and
the others have made a few steps, while the executor and the result store
stay up. A new orchestrator resumes the swarm: the variant whose answer
passes the check (42) may finish only then, variant 3 keeps working until
the race is decided. Exactly one variant merges, variant 1 keeps its
outcome and is not run again, variant 3 ends cancelled as the loser with
its branch kept, the dependent starts from the winner, and the race is
counted once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, Reply, agent_responder
from helpers import git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd, build_service
from swarmd.plugins.manager import load_plugins
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(150)

TURN_DELAY = 0.05
MAX_TURNS = 400
ANSWERS = {"1": "41", "2": "42", "3": "43"}
VARIANTS = [f"feature.variant-{n}" for n in (1, 2, 3)]
_ID = re.compile(r"\(ID: ([^)\s]+)\)")

#: Passes only in a worktree whose answer.txt has a line "42".
CHECK = common_pb2.CollapseConfig(
    enabled=True,
    checks=[common_pb2.HealthCheckSpec(name="command", options={"command": "grep -qx 42 answer.txt"})],
    interval_ms=200,
    warmup_ms=600_000,  # the controller never kills here
    check_timeout_ms=20_000,
)


@dataclasses.dataclass
class Phase:
    """What the fake sub-agents may do: finish (the passing one) once resumed,
    finish (the others) once the race is decided."""

    resumed: bool = False
    decided: bool = False


def agents(phase: Phase) -> Callable[[Any], Reply]:
    def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
        if turn.subtask_id == "after":
            if turn.turn == 1:
                return [("read", {"path": "answer.txt"})]
            if turn.turn == 2:
                seen = "42" if "42" in turn.tool_results[0] else "not 42"
                return [("write", {"path": "after.txt", "content": f"{seen}\n"})]
            return None
        answer = ANSWERS[turn.subtask_id.rsplit("-", 1)[-1]]
        if turn.turn == 1:
            return [("write", {"path": "answer.txt", "content": f"{answer}\n"})]
        if turn.turn > MAX_TURNS or answer == "41":
            return None
        if answer == "42" and phase.resumed and turn.turn > 2:
            return None
        if answer != "42" and phase.decided:
            return None
        return [("list", {"path": "."})]

    respond = agent_responder(act)
    return lambda body: dataclasses.replace(respond(body), delay=TURN_DELAY)


async def watch_until(
    client: SwarmdClient, swarm_id: str, events: list[common_pb2.SwarmEvent], stop: Callable[[], bool]
) -> None:
    """Collect the swarm's events (from after the last one held) until
    ``stop()`` or the swarm's end."""
    after = events[-1].sequence if events else 0
    async for event in client.watch(swarm_id, after_sequence=after):
        events.append(event)
        if stop():
            return


def steps_of(events: list[common_pb2.SwarmEvent]) -> Counter[str]:
    return Counter(e.agent_step.subtask_id for e in events if e.WhichOneof("kind") == "agent_step")


async def test_a_race_interrupted_by_its_orchestrator_resumes_with_one_winner(tmp_path: Path, git_repo: Path) -> None:
    phase = Phase()
    plan = common_pb2.Plan(
        subtasks=[
            common_pb2.SubTask(id="feature", instruction="Write the answer to answer.txt.", speculate=3),
            common_pb2.SubTask(id="after", instruction="Copy the answer to after.txt.", dependencies=["feature"]),
        ]
    )
    async with FakeOpenAIServer() as server:
        server.fallback = agents(phase)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        plugins = load_plugins()
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite", plugins=plugins) as emb:
            async with SwarmdClient(emb.orchestrator_address) as client:
                reply = await client.submit(
                    task="Answer",
                    plan=plan,
                    config=common_pb2.SwarmConfig(
                        model="openai/fake-model",
                        repo_path=str(git_repo),
                        request_delay_ms=0,
                        cache_enabled=False,
                        max_retries=1,
                        max_steps_per_subagent=MAX_TURNS + 5,
                        collapse=CHECK,
                    ),
                )
                swarm_id = reply.swarm.id
                events: list[common_pb2.SwarmEvent] = []
                def midway() -> bool:
                    ended = {e.agent_complete.subtask_id for e in events if e.WhichOneof("kind") == "agent_complete"}
                    return VARIANTS[0] in ended and min(steps_of(events)[v] for v in VARIANTS[1:]) >= 3

                await asyncio.wait_for(watch_until(client, swarm_id, events, midway), 60)
            # The orchestrator goes away mid-race; the executor and the store stay.
            await emb.hosts["orchestrator"].stop(0)
            before = events[-1].sequence
            committed_before = {
                e.work_committed.subtask_id for e in events if e.WhichOneof("kind") == "work_committed"
            }
            # Nothing was merged or decided yet: the race is mid-way.
            assert not committed_before
            assert not [e for e in events if e.WhichOneof("kind") == "speculation_decided"]
            host, _ = await build_service("orchestrator", emb.settings, plugins, embedded=True)
            await host.start()
            try:
                async with SwarmdClient(host.address) as client:
                    stored = await client.get(swarm_id)
                    assert stored.state == common_pb2.SWARM_STATE_INTERRUPTED, stored.error
                    phase.resumed = True
                    asked_before = len(server.requests)
                    resumed = await client.resume(swarm_id)
                    assert not resumed.already_running

                    def decided() -> bool:
                        phase.decided = phase.decided or events[-1].WhichOneof("kind") == "speculation_decided"
                        return False

                    await asyncio.wait_for(watch_until(client, swarm_id, events, decided), 100)
                    swarm = await client.get(swarm_id)
                    asked_after = {_ID.search(r.json["messages"][0]["content"]).group(1) for r in server.requests[asked_before:]}  # type: ignore[union-attr]
            finally:
                await host.stop(0)

    states = {s.subtask.id: s for s in swarm.subtasks}
    feature = states["feature"]
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, [(s.subtask.id, s.status_reason) for s in swarm.subtasks]
    assert feature.status == common_pb2.SUB_TASK_STATUS_COMPLETED, feature.status_reason
    assert [v.subtask_id for v in feature.variants] == VARIANTS
    variants = {v.variant: v for v in feature.variants}
    assert [v.variant for v in feature.variants if v.winner] == [2], feature.variants
    winner, first, loser = variants[2], variants[1], variants[3]
    assert winner.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    # Variant 1 had ended before the stop: it keeps its outcome and its
    # committed work, and was not run again.
    assert first.status == common_pb2.SUB_TASK_STATUS_FAILED and "health checks failed" in first.reason, first
    assert git(git_repo, "show", f"{first.branch}:answer.txt") == "41\n"
    assert "feature.variant-1" not in asked_after and {"feature.variant-2", "feature.variant-3"} <= asked_after
    assert loser.status == common_pb2.SUB_TASK_STATUS_CANCELLED, loser
    assert loser.reason.startswith("speculative_loser"), loser.reason
    assert git(git_repo, "branch", "--list", loser.branch).strip(), loser.branch
    # Exactly one variant merged, once; the user's branch holds its answer.
    assert (git_repo / "answer.txt").read_text() == "42\n"
    log = git(git_repo, "log", "--format=%B", "main")
    assert "feature.variant-1" not in log and "feature.variant-3" not in log
    assert feature.result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
    # The winner's new attempt ran on a branch of its own; its claim named
    # it, so the checks ran on the work that merged, and the variant says so.
    assert f"Merge {winner.branch} into" in git(git_repo, "log", "--merges", "--format=%s", "main")
    assert winner.commit == feature.result.merge.commit
    merges = git(git_repo, "log", "--merges", "--format=%H", "main").split()
    assert len(merges) == 2, merges  # the winner and the dependent
    # The dependent started from the winner's work.
    assert states["after"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert (git_repo / "after.txt").read_text() == "42\n"
    # One decision, taken by the resumed orchestrator, counted once.
    decided = [e for e in events if e.WhichOneof("kind") == "speculation_decided"]
    assert [(d.sequence > before, d.speculation_decided.winner_subtask_id) for d in decided] == [
        (True, "feature.variant-2")
    ]
    assert list(decided[0].speculation_decided.loser_subtask_ids) == ["feature.variant-3"]
    stats = swarm.stats.collapse
    assert (stats.speculative_wins, stats.speculative_losers) == (1, 1), stats
    assert swarm.stats.subagents_spawned == 4, swarm.stats  # three variants and the dependent, once each
    # Every sequence once, continuing the interrupted log.
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    warnings = [e.warning.code for e in events if e.WhichOneof("kind") == "warning"]
    assert warnings.count("swarm_interrupted") == 1 and warnings.count("swarm_resumed") == 1, warnings
    # The losers are reported cancelled, never failed.
    updates = [e.subtask_update for e in events if e.WhichOneof("kind") == "subtask_update"]
    assert not [u for u in updates if u.status == common_pb2.SUB_TASK_STATUS_FAILED], updates
