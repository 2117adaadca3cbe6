"""A new attempt continues in the worktree an interrupted attempt left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import dead_pid, git, relock

from swarmd.plugins.runtime.prompts import build_user_prompt
from swarmd.plugins.runtime.worktree import WorktreeManager
from swarmd.plugins.runtime.worktree.git import lock_is_live

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def mgr(git_repo: Path) -> WorktreeManager:
    return WorktreeManager(git_repo)


def lock_of(repo: Path, path: Path) -> str | None:
    for block in git(repo, "worktree", "list", "--porcelain").split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0] == f"worktree {path}":
            return next((line.removeprefix("locked ") for line in lines if line.startswith("locked")), None)
    return None


async def test_an_interrupted_attempt_is_continued_with_its_work(mgr: WorktreeManager, git_repo: Path) -> None:
    first = await mgr.create("s", "t")
    (first.path / "README.md").write_text("# demo\nhalf an edit\n")
    (first.path / "new.txt").write_text("half done\n")
    git(first.path, "add", "new.txt")
    git(first.path, "commit", "-q", "-m", "a step of the earlier attempt")
    (first.path / "draft.txt").write_text("not yet added\n")
    relock(git_repo, first.path, dead_pid())  # the executor running it was killed

    again = await mgr.create("s", "t")

    assert (again.path, again.branch, again.attempt) == (first.path, first.branch, 1)
    assert again.base_commit == first.base_commit
    assert (again.path / "README.md").read_text() == "# demo\nhalf an edit\n"
    assert (again.path / "draft.txt").read_text() == "not yet added\n"
    assert git(git_repo, "show", f"{again.branch}:new.txt") == "half done\n"
    assert lock_is_live(lock_of(git_repo, again.path))  # locked again, by this process
    assert "1 commit(s)" in again.carried_over
    assert " M README.md" in again.carried_over and "?? draft.txt" in again.carried_over
    assert "file" in again.carried_over  # the diffstat
    assert git(git_repo, "branch", "--list", "swarmd/s/t@2") == ""
    # The prompt says so.
    prompt = build_user_prompt("Do t.", carried_over=again.carried_over)
    assert "interrupted" in prompt and "?? draft.txt" in prompt
    assert "interrupted" not in build_user_prompt("Do t.")
    # The work is committed and merged as usual.
    report = await mgr.commit_and_merge(again)
    assert report.outcome == "merged"
    assert git(git_repo, "show", "HEAD:draft.txt") == "not yet added\n"


async def test_the_latest_earlier_attempt_is_the_one_continued(mgr: WorktreeManager, git_repo: Path) -> None:
    first = await mgr.create("s", "t")
    (first.path / "one.txt").write_text("kept apart\n")
    second = await mgr.create("s", "t")  # the first is live: a second worktree
    (second.path / "two.txt").write_text("latest\n")
    relock(git_repo, first.path, dead_pid())
    relock(git_repo, second.path, dead_pid())
    again = await mgr.create("s", "t")
    assert again.path == second.path and again.attempt == 2
    assert "two.txt" in again.carried_over and "one.txt" not in again.carried_over
    assert (first.path / "one.txt").read_text() == "kept apart\n"


async def test_a_clean_interrupted_worktree_is_continued_without_a_note(mgr: WorktreeManager, git_repo: Path) -> None:
    first = await mgr.create("s", "t")
    relock(git_repo, first.path, dead_pid())
    again = await mgr.create("s", "t")
    assert again.path == first.path and again.carried_over == ""


async def test_a_live_or_other_start_or_merged_worktree_is_not_continued(
    mgr: WorktreeManager, git_repo: Path
) -> None:
    # In use by a live process (this one): a new attempt beside it.
    live = await mgr.create("s", "live")
    (live.path / "wip.txt").write_text("wip\n")
    beside = await mgr.create("s", "live")
    assert beside.attempt == 2 and beside.carried_over == ""
    # Started from another commit: kept, a fresh worktree from the new start.
    old = await mgr.create("s", "moved")
    (old.path / "wip.txt").write_text("wip on the old start\n")
    relock(git_repo, old.path, dead_pid())
    (git_repo / "other.txt").write_text("x\n")
    git(git_repo, "add", "other.txt")
    git(git_repo, "commit", "-q", "-m", "the user moves on")
    moved = await mgr.create("s", "moved")
    assert moved.path != old.path and moved.carried_over == ""
    assert not (moved.path / "wip.txt").exists()
    assert (old.path / "wip.txt").read_text() == "wip on the old start\n"
    # Merged already: nothing to continue; a new attempt from the base.
    done = await mgr.create("s", "done", await mgr.head_commit())
    (done.path / "d.txt").write_text("d\n")
    sha = await mgr.commit(done)
    git(git_repo, "merge", "-q", "--no-ff", "-m", "user merge", done.branch)
    (done.path / "late.txt").write_text("after the merge\n")
    relock(git_repo, done.path, dead_pid())
    fresh = await mgr.create("s", "done", done.base_commit)
    assert fresh.path != done.path and fresh.carried_over == ""
    assert git(git_repo, "rev-parse", done.branch).strip() == sha
