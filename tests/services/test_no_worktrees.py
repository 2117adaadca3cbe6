"""Without worktrees, sub-agents work in the user's tree: a dirty tree is refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal
from helpers import git

from swarmd.v1 import common_pb2


@pytest.mark.parametrize("change", ["modified", "untracked", "staged"])
async def test_a_dirty_tree_is_refused_without_worktrees(tmp_path: Path, git_repo: Path, change: str) -> None:

    if change == "modified":
        (git_repo / "README.md").write_text("# mine, not committed\n")
    elif change == "untracked":
        (git_repo / "notes.txt").write_text("my notes\n")
    else:
        (git_repo / "staged.txt").write_text("staged\n")
        git(git_repo, "add", "staged.txt")
    before = git(git_repo, "status", "--porcelain")
    async with serve_swarm_services(tmp_path) as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=fast_config(repo_path=str(git_repo)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could overwrite them" in (info.value.details() or "")
    assert JOURNAL.for_subtask("a") == []
    assert git(git_repo, "status", "--porcelain") == before


async def test_a_clean_tree_runs_without_worktrees(tmp_path: Path, git_repo: Path) -> None:
    async with serve_swarm_services(tmp_path) as services:
        reply = await services.submit(plan=plan(subtask("a")), config=fast_config(repo_path=str(git_repo)))
        swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
