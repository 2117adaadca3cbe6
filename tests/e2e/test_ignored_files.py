"""A sub-agent whose only output is a file git ignores.

Its work must not vanish: by default the result and an event say which
files were left, and the worktree holding them is kept (and survives
``prune``); with ``worktree.commit_ignored=true`` they are committed and
merged like any other work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, agent_responder
from helpers import git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.plugins.runtime.worktree import WorktreeManager
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)


def write_ignored(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    if turn.turn == 1:
        return [("write", {"path": "build/out.txt", "content": "built\n"})]
    return None


async def run_one(tmp_path: Path, repo: Path, **options: str) -> tuple[common_pb2.Swarm, list[common_pb2.SwarmEvent]]:
    async with FakeOpenAIServer() as server:
        server.fallback = agent_responder(write_ignored)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Build it",
                plan=common_pb2.Plan(subtasks=[common_pb2.SubTask(id="build", instruction="Build the output.")]),
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(repo),
                    request_delay_ms=0,
                    cache_enabled=False,
                    executor_options=options,
                ),
            )
            events = [e async for e in client.watch(reply.swarm.id)]
            swarm = await client.get(reply.swarm.id)
    return swarm, events


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / ".gitignore").write_text("build/\n")
    git(git_repo, "add", ".gitignore")
    git(git_repo, "commit", "-q", "-m", "ignore build/")
    return git_repo


async def test_ignored_only_output_is_kept_and_reported(tmp_path: Path, repo: Path) -> None:
    start = git(repo, "rev-parse", "HEAD").strip()
    swarm, events = await run_one(tmp_path, repo)

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    (state,) = swarm.subtasks
    result = state.result
    assert result.merge.outcome == common_pb2.MERGE_OUTCOME_NO_CHANGES
    assert "build/" in result.merge.summary and "git ignores" in result.merge.summary
    assert "worktree.commit_ignored" in result.merge.summary
    # The worktree is kept, with the file in it, and a prune leaves it alone.
    kept = Path(result.worktree_path)
    assert (kept / "build" / "out.txt").read_text() == "built\n"
    report = await WorktreeManager(repo).prune()
    assert kept.is_dir() and (kept / "build" / "out.txt").exists(), report
    # A warning event names the file; nothing reached the user's branch.
    warnings = [e.warning for e in events if e.WhichOneof("kind") == "warning" and e.warning.code == "ignored_files_only"]
    assert len(warnings) == 1 and warnings[0].subtask_id == "build" and "build/" in warnings[0].message
    assert git(repo, "rev-parse", "HEAD").strip() == start
    assert not (repo / "build").exists()


async def test_ignored_output_is_committed_when_asked(tmp_path: Path, repo: Path) -> None:
    swarm, events = await run_one(tmp_path, repo, **{"worktree.commit_ignored": "true"})

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    (state,) = swarm.subtasks
    assert state.result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED, state.result.merge.summary
    assert "build/out.txt" in git(repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert (repo / "build" / "out.txt").read_text() == "built\n"
    assert not [e for e in events if e.WhichOneof("kind") == "warning" and e.warning.code == "ignored_files_only"]
    assert not state.result.worktree_path


async def test_a_bad_commit_ignored_value_is_refused(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(SwarmdClientError, match="worktree.commit_ignored"):
        await run_one(tmp_path, repo, **{"worktree.commit_ignored": "perhaps"})
