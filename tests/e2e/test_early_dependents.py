"""A dependent starts from its parent's commit before the parent's merge lands.

A two-subtask DAG (``child`` depends on ``parent``), each writing its own
file, in a real repository through the embedded services. The test holds
the repository's cross-process lock (``.git/swarmd.lock``), so the parent's
merge cannot land: the child must still be dispatched, run and commit from
the parent's commit, and merge only after the parent's merge landed. In the
conflict case the user commits a clashing ``parent.txt`` meanwhile: the
parent's merge conflicts, the child (waiting to merge) is skipped, nothing
of either reaches the user's branch, and both branches keep their work.
Ordering is read from the events' sequence numbers, never from clocks.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, agent_responder
from helpers import git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(90)

PLAN = common_pb2.Plan(
    subtasks=[
        common_pb2.SubTask(id="parent", instruction="Write parent.txt."),
        common_pb2.SubTask(id="child", instruction="Write child.txt.", dependencies=["parent"]),
    ]
)


def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    if turn.turn == 1:
        return [("write", {"path": f"{turn.subtask_id}.txt", "content": f"work of {turn.subtask_id}\n"})]
    return None


@asynccontextmanager
async def repository_lock(repo: Path) -> AsyncIterator[None]:
    """Hold swarmd's cross-process repository lock: no merge can land meanwhile."""
    fd = os.open(repo / ".git" / "swarmd.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def of(event: common_pb2.SwarmEvent) -> tuple[str, str]:
    kind = event.WhichOneof("kind") or ""
    return kind, getattr(getattr(event, kind), "subtask_id", "")


async def run_holding_the_lock(
    tmp_path: Path, repo: Path, while_locked: Any = None
) -> tuple[common_pb2.Swarm, list[common_pb2.SwarmEvent]]:
    """Run the plan; release the lock once the child has committed (after ``while_locked``)."""
    async with FakeOpenAIServer() as server:
        server.fallback = agent_responder(act)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            events: list[common_pb2.SwarmEvent] = []
            async with repository_lock(repo):
                reply = await client.submit(
                    task="Two dependent writers",
                    plan=PLAN,
                    config=common_pb2.SwarmConfig(
                        model="openai/fake-model",
                        repo_path=str(repo),
                        request_delay_ms=0,
                        cache_enabled=False,
                    ),
                )
                stream = client.watch(reply.swarm.id)
                async for event in stream:
                    events.append(event)
                    if of(event) == ("work_committed", "child"):
                        break
                assert ("merge_completed", "parent") not in map(of, events)
                if while_locked is not None:
                    while_locked()
            async for event in stream:  # the lock is free: the merges land
                events.append(event)
            swarm = await client.get(reply.swarm.id)
    return swarm, events


async def test_dependent_runs_and_commits_before_its_parents_merge_then_merges_after_it(
    tmp_path: Path, git_repo: Path
) -> None:
    swarm, events = await asyncio.wait_for(run_holding_the_lock(tmp_path, git_repo), 80)

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    seq = {of(e): e.sequence for e in events}
    # The child began while the parent's merge had not landed ...
    assert seq[("work_committed", "parent")] < seq[("agent_started", "child")]
    assert seq[("agent_started", "child")] < seq[("merge_completed", "parent")]
    # ... and merged only after it.
    assert seq[("merge_completed", "parent")] < seq[("merge_completed", "child")]
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert states["child"].result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
    assert (git_repo / "parent.txt").read_text() == "work of parent\n"
    assert (git_repo / "child.txt").read_text() == "work of child\n"
    # The child's commit sits on the parent's: the parent's merge comes first on main.
    subjects = git(git_repo, "log", "--first-parent", "--format=%s", "-2", "main").splitlines()
    assert "child" in subjects[0] and "parent" in subjects[1], subjects
    parent_commit = states["parent"].result.merge.commit
    git(git_repo, "merge-base", "--is-ancestor", parent_commit, states["child"].result.merge.commit)


async def test_a_parent_whose_merge_conflicts_skips_the_dependent_started_from_it(
    tmp_path: Path, git_repo: Path
) -> None:
    def user_commits_a_clash() -> None:
        (git_repo / "parent.txt").write_text("the user's own parent.txt\n")
        git(git_repo, "add", "parent.txt")
        git(git_repo, "commit", "-q", "-m", "user: parent.txt")

    swarm, events = await asyncio.wait_for(run_holding_the_lock(tmp_path, git_repo, user_commits_a_clash), 80)

    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert states["parent"].result.merge.outcome == common_pb2.MERGE_OUTCOME_CONFLICTED
    assert states["child"].status == common_pb2.SUB_TASK_STATUS_SKIPPED
    assert "dependency 'parent'" in states["child"].status_reason
    # Nothing of the child was merged, and the user's commit is untouched.
    assert ("merge_completed", "child") not in map(of, events)
    assert (git_repo / "parent.txt").read_text() == "the user's own parent.txt\n"
    assert not (git_repo / "child.txt").exists()
    assert git(git_repo, "log", "-1", "--format=%s", "main").strip() == "user: parent.txt"
    # No work lost: both branches keep what their sub-agent wrote.
    assert git(git_repo, "show", f"swarmd/{swarm.id}/parent:parent.txt") == "work of parent\n"
    assert git(git_repo, "show", f"swarmd/{swarm.id}/child:child.txt") == "work of child\n"
