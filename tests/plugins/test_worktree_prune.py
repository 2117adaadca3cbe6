"""Pruning what a crashed executor left: stale locks, half-made checkouts, work merged by a later attempt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import dead_pid, git, relock

from swarmd.plugins.runtime.worktree import Worktree, WorktreeManager

pytestmark = pytest.mark.timeout(60)


def half_made(wt: Worktree) -> None:
    """What a process killed between registering a worktree and checking it out leaves."""
    gitdir = Path((wt.path / ".git").read_text().strip().removeprefix("gitdir: "))
    (gitdir / "index").unlink()
    for child in wt.path.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


async def test_prune_after_an_executor_crash(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    # Five worktrees the killed executor was using, all locked by its dead pid.
    broken = await mgr.create("s", "broken", base)
    half_made(broken)
    redone = await mgr.create("s", "redone", base)
    (redone.path / "bench").mkdir()
    (redone.path / "bench" / "step1.txt").write_text("same as merged\n")
    clean = await mgr.create("s", "clean", base)
    wip = await mgr.create("s", "wip", base)
    (wip.path / "README.md").write_text("# demo\nnot merged anywhere\n")
    (wip.path / "draft.txt").write_text("draft\n")
    committed = await mgr.create("s", "committed", base)
    (committed.path / "c.txt").write_text("c\n")
    await mgr.commit(committed)
    for wt in (broken, redone, clean, wip, committed):
        relock(git_repo, wt.path, dead_pid())
    # A later attempt of "redone" landed the same files (under another slot).
    later = await mgr.create("s", "redone-again", base)
    (later.path / "bench").mkdir()
    (later.path / "bench" / "step1.txt").write_text("same as merged\n")
    assert (await mgr.commit_and_merge(later)).outcome == "merged"
    await mgr.create("s", "live", base)  # this process runs it

    report = await mgr.prune()

    removed = {p.name for p in report.removed_worktrees}
    assert removed == {"broken", "redone", "clean"}
    kept = dict(report.kept)
    assert set(kept) == {"swarmd/s/wip", "swarmd/s/committed", "swarmd/s/live"}
    why = kept["swarmd/s/wip"]
    assert "not on HEAD" in why and "2 file(s)" in why and "README.md" in why and "draft.txt" in why
    assert "stale" in why and "no longer running" in why
    assert kept["swarmd/s/committed"].startswith("unmerged commits")
    assert kept["swarmd/s/live"] == f"in use by pid {os.getpid()}, which is running"
    # Nothing of value went: the kept work is intact, the merged files are on HEAD.
    assert (wip.path / "draft.txt").read_text() == "draft\n"
    assert git(git_repo, "show", "HEAD:bench/step1.txt") == "same as merged\n"
    assert git(git_repo, "branch", "--list", "swarmd/s/broken", "swarmd/s/redone", "swarmd/s/clean") == ""


async def test_a_lock_from_another_host_is_kept_and_said_so(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    wt = await mgr.create("s", "far")
    git(git_repo, "worktree", "unlock", str(wt.path))
    git(git_repo, "worktree", "lock", "--reason", "swarmd: in use by pid 1 on elsewhere", str(wt.path))
    report = await mgr.prune()
    (branch, why), = report.kept
    assert branch == "swarmd/s/far" and "another host, elsewhere" in why and "git worktree unlock" in why


async def test_an_interrupted_checkout_is_finished_when_continued(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    first = await mgr.create("s", "t")
    half_made(first)
    relock(git_repo, first.path, dead_pid())
    again = await mgr.create("s", "t")
    assert again.path == first.path and again.carried_over == ""
    assert (again.path / "README.md").read_text() == "# demo\n"
    assert git(again.path, "status", "--porcelain") == ""
