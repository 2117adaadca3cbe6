"""A subtask's work is merged onto the user's branch once, whatever races to merge it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import Worktree, WorktreeManager

pytestmark = pytest.mark.timeout(60)


def merges_of(repo: Path, subtask: str) -> list[str]:
    log = git(repo, "log", "--merges", "--format=%H%x00%B%x1e", "HEAD")
    return [
        entry.strip().partition("\0")[0]
        for entry in log.split("\x1e")
        if f"Swarmd-Subtask: {subtask}\n" in entry.partition("\0")[2]
    ]


async def attempt(mgr: WorktreeManager, base: str, text: str) -> tuple[Worktree, str]:
    wt = await mgr.create("s", "t", base)
    (wt.path / "t.txt").write_text(text)
    sha = await mgr.commit(wt)
    assert sha is not None
    return wt, sha


async def test_a_late_merge_of_an_already_merged_subtask_is_not_merged_again(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    old, old_sha = await attempt(mgr, base, "the old attempt\n")
    new, new_sha = await attempt(mgr, base, "the re-dispatched attempt\n")  # beside the live one
    assert new.path != old.path
    first = await mgr.merge(new, new_sha)
    assert first.outcome == "merged"
    head = await mgr.head_commit()
    late = await mgr.merge(old, old_sha)
    assert late.outcome == "merged" and late.merge_commit == first.merge_commit
    assert "already merged" in late.summary and old.branch in late.summary
    # The work on the branch is the first attempt's: the report names that commit,
    # so dependents started from the late attempt's commit know theirs did not land.
    assert late.commit == new_sha
    assert await mgr.head_commit() == head
    assert merges_of(git_repo, "t") == [first.merge_commit]
    assert (git_repo / "t.txt").read_text() == "the re-dispatched attempt\n"
    # The late attempt's own commit is not lost: its branch stays.
    assert git(git_repo, "rev-parse", old.branch).strip() == old_sha


async def test_two_merges_of_one_subtask_in_one_batch_land_once(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    (a, a_sha), (b, b_sha) = await attempt(mgr, base, "a\n"), await attempt(mgr, base, "b\n")
    reports = await asyncio.gather(mgr.merge(a, a_sha), mgr.merge(b, b_sha))
    assert [r.outcome for r in reports] == ["merged", "merged"]
    assert reports[0].merge_commit == reports[1].merge_commit
    assert merges_of(git_repo, "t") == [reports[0].merge_commit]


async def test_a_subtask_merged_by_another_swarm_is_still_merged(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    wt, sha = await attempt(mgr, base, "s\n")
    assert (await mgr.merge(wt, sha)).outcome == "merged"
    other = await mgr.create("other", "t", base)
    (other.path / "u.txt").write_text("u\n")
    report = await mgr.merge(other, await mgr.commit(other))
    assert report.outcome == "merged" and "already" not in report.summary
    assert len(merges_of(git_repo, "t")) == 2


async def test_the_next_batch_knows_the_merges_of_the_last_without_asking_git(git_repo: Path) -> None:
    from swarmd.plugins.runtime.worktree.git import SPAWNED

    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    old, old_sha = await attempt(mgr, base, "the old attempt\n")
    new, new_sha = await attempt(mgr, base, "the re-dispatched attempt\n")
    first = await mgr.merge(new, new_sha)
    assert first.outcome == "merged"
    logs = SPAWNED["log"]
    late = await mgr.merge(old, old_sha)  # starts from the tip the first merge left
    assert late.merge_commit == first.merge_commit and "already merged" in late.summary
    assert SPAWNED["log"] == logs  # known from the landing, not walked again
    assert merges_of(git_repo, "t") == [first.merge_commit]


async def test_a_commit_of_the_user_between_batches_makes_the_next_batch_ask_again(git_repo: Path) -> None:
    from swarmd.plugins.runtime.worktree.git import SPAWNED

    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    wt, sha = await attempt(mgr, base, "t\n")
    assert (await mgr.merge(wt, sha)).outcome == "merged"
    (git_repo / "t.txt").write_text("the user's own line\n")  # the user edits the merged file
    git(git_repo, "commit", "-q", "-am", "user")
    logs = SPAWNED["log"]
    other = await mgr.create("s", "u", base)
    (other.path / "t.txt").write_text("u's version\n")  # same file: must not take the fast path
    report = await mgr.merge(other, await mgr.commit(other))
    assert SPAWNED["log"] > logs
    assert report.outcome == "conflicted"
    assert (git_repo / "t.txt").read_text() == "the user's own line\n"


async def test_an_attempt_learns_that_an_earlier_attempt_s_work_already_landed(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    old, old_sha = await attempt(mgr, base, "the first attempt, merged before its process died\n")
    assert await mgr.landed_work(old) is None  # nothing of subtask t on main yet
    assert (await mgr.merge(old, old_sha)).outcome == "merged"
    again, again_sha = await attempt(WorktreeManager(git_repo), base, "the same work done again\n")
    assert await WorktreeManager(git_repo).landed_work(again) == old_sha
    late = await mgr.merge(again, again_sha)
    assert late.commit == old_sha and "already merged" in late.summary
    other = await WorktreeManager(git_repo).create("s", "other", base)
    assert await mgr.landed_work(other) is None
