"""The collapse controller in a real swarm: embedded services, a real git
repository, the fake model server, the ``python-compile`` check.

The sub-agents keep working (one slow listing per model call) until the
test has seen what it waits for in the events, so nothing here depends on
how fast the machine is: a branch that broke the build is killed once it
failed three samples in a row after the warm-up, while its healthy peers
go on and merge; when every branch is broken, none is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, Reply, agent_responder
from helpers import git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

#: Seconds each model call takes: sub-agents that keep working stay running.
TURN_DELAY = 0.05
#: A sub-agent that is never released still ends (the test then fails on its asserts).
MAX_TURNS = 400

COLLAPSE = common_pb2.CollapseConfig(
    enabled=True,
    checks=[common_pb2.HealthCheckSpec(name="python-compile")],
    interval_ms=150,
    warmup_ms=600,
    max_consecutive_failures=3,
    check_timeout_ms=20_000,
)


def plan(*ids: str) -> common_pb2.Plan:
    return common_pb2.Plan(subtasks=[common_pb2.SubTask(id=i, instruction=f"Write {i}.py.") for i in ids])


def writer(broken: set[str], released: Callable[[], bool]) -> Callable[[Any], Reply]:
    """Turn 1 writes ``<id>.py`` (a syntax error for ``broken`` ids); later turns
    list the folder, slowly, until ``released()``; then the agent finishes."""

    def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
        if turn.turn == 1:
            code = "def f(:\n" if turn.subtask_id in broken else "def f():\n    return 1\n"
            return [("write", {"path": f"{turn.subtask_id}.py", "content": code})]
        if released() or turn.turn > MAX_TURNS:
            return None
        return [("list", {"path": "."})]

    respond = agent_responder(act)
    return lambda body: dataclasses.replace(respond(body), delay=TURN_DELAY)


async def run_swarm(
    tmp_path: Path, repo: Path, subtasks: common_pb2.Plan, broken: set[str], release_when: Callable[[common_pb2.SwarmEvent], bool]
) -> tuple[common_pb2.Swarm, list[common_pb2.SwarmEvent], list[Any]]:
    released = False
    async with FakeOpenAIServer() as server:
        server.fallback = writer(broken, lambda: released)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Write modules",
                plan=subtasks,
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(repo),
                    request_delay_ms=0,
                    cache_enabled=False,
                    max_steps_per_subagent=MAX_TURNS + 5,
                    collapse=COLLAPSE,
                ),
            )
            events: list[common_pb2.SwarmEvent] = []
            async for event in client.watch(reply.swarm.id):
                events.append(event)
                if not released and release_when(event):
                    released = True
            swarm = await client.get(reply.swarm.id)
            async with grpc.aio.insecure_channel(emb.result_store_address) as channel:
                audit = await StoreClient(channel, 10).list_audit(reply.swarm.id)
    return swarm, events, audit


def evaluations(events: list[common_pb2.SwarmEvent]) -> list[common_pb2.CollapseEvaluated]:
    return [e.collapse_evaluated for e in events if e.WhichOneof("kind") == "collapse_evaluated"]


async def test_a_branch_that_keeps_breaking_the_build_is_killed_and_the_others_merge(
    tmp_path: Path, git_repo: Path
) -> None:
    swarm, events, audit = await asyncio.wait_for(
        run_swarm(
            tmp_path,
            git_repo,
            plan("bad", "good1", "good2"),
            {"bad"},
            lambda e: e.WhichOneof("kind") == "collapse_evaluated" and bool(e.collapse_evaluated.kills),
        ),
        110,
    )
    states = {s.subtask.id: s for s in swarm.subtasks}
    bad = states["bad"]
    assert bad.status == common_pb2.SUB_TASK_STATUS_CANCELLED, bad.status_reason
    assert "collapse" in bad.status_reason
    assert bad.result.failure_kind == common_pb2.FAILURE_KIND_CANCELLED
    for good in ("good1", "good2"):
        assert states[good].status == common_pb2.SUB_TASK_STATUS_COMPLETED, states[good].status_reason
        assert (git_repo / f"{good}.py").exists()
    assert not (git_repo / "bad.py").exists()
    # The killed branch and its worktree are kept, its broken file in it.
    branch = f"swarmd/{swarm.id}/bad"
    assert git(git_repo, "branch", "--list", branch).strip()
    worktrees = git(git_repo, "worktree", "list", "--porcelain")
    path = next(line.split(" ", 1)[1] for line in worktrees.splitlines() if line.startswith("worktree ") and line.endswith("/bad"))
    assert (Path(path) / "bad.py").read_text() == "def f(:\n"

    ticks = evaluations(events)
    kill_ticks = [t for t in ticks if t.kills]
    assert [(k.subtask_id, k.branch) for t in kill_ticks for k in t.kills] == [("bad", branch)]
    # Before the kill: the bad branch failed after its warm-up, 3 times in a row.
    history = [
        ev for t in ticks if t.tick <= kill_ticks[0].tick for ev in t.evaluations if ev.observation.subtask_id == "bad"
    ]
    assert history[0].warming_up
    assert history[-1].consecutive_failures >= 3 and not history[-1].warming_up
    assert all(ev.observation.health == common_pb2.HEALTH_STATUS_FAIL for ev in history if not ev.warming_up)
    assert "bad.py:1" in history[-1].observation.detail
    assert history[-1].observation.changed_files == ["bad.py"]
    # Good branches passed and one of them is promoted.
    assert kill_ticks[0].promoted_subtask_id in {"good1", "good2"}
    stats = swarm.stats.collapse
    assert stats.kills == 1 and stats.evaluations == len(ticks) and stats.promotions >= 1
    # The store keeps the kill and the promotions, with the observations behind them.
    kills = [r for r in audit if r.kind == "collapse_kill_branch"]
    assert [r.subtask_id for r in kills] == ["bad"]
    detail = kills[0].detail
    assert "collapse" in detail["reason"] and detail["branch"] == branch
    seen = {e["observation"]["subtaskId"]: e for e in detail["evaluations"]}
    assert seen["bad"]["observation"]["health"] == "HEALTH_STATUS_FAIL"
    promotions = [r.subtask_id for r in audit if r.kind == "collapse_promote_branch"]
    assert promotions and set(promotions) <= {"good1", "good2", "bad"}


async def test_when_every_branch_fails_none_is_killed(tmp_path: Path, git_repo: Path) -> None:
    ids = ("a", "b", "c")

    def all_spared(e: common_pb2.SwarmEvent) -> bool:
        return e.WhichOneof("kind") == "collapse_evaluated" and set(e.collapse_evaluated.spared) == set(ids)

    swarm, events, audit = await asyncio.wait_for(run_swarm(tmp_path, git_repo, plan(*ids), set(ids), all_spared), 110)
    assert not [r for r in audit if r.kind == "collapse_kill_branch"]
    assert swarm.stats.collapse.kills == 0 and swarm.stats.collapse.evaluations == len(evaluations(events))
    ticks = evaluations(events)
    assert ticks and not any(t.kills for t in ticks)
    assert any(set(t.spared) == set(ids) for t in ticks)
    assert all(s.status == common_pb2.SUB_TASK_STATUS_COMPLETED for s in swarm.subtasks), [
        (s.subtask.id, s.status_reason) for s in swarm.subtasks
    ]
