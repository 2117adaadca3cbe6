"""Dependents wait for their parents' merges without walking history at every landing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import committed_work, git

from swarmd.plugins.runtime.worktree import WorktreeManager
from swarmd.plugins.runtime.worktree.libgit import Engine

pytestmark = pytest.mark.timeout(60)


async def test_waiters_learn_of_their_parents_landing_from_the_batch(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten dependents wait on ten parents merged one batch at a time: each waiter asks
    git once, when it starts, not at every landing (each woke them all and each asked)."""
    mgr = WorktreeManager(git_repo)
    parents = [await committed_work(mgr, f"p{i}") for i in range(10)]
    walks = 0
    real = Engine.is_ancestor

    async def counted(self: Engine, a: str, b: str) -> bool | None:
        nonlocal walks
        walks += 1
        return await real(self, a, b)

    monkeypatch.setattr(Engine, "is_ancestor", counted)
    waiting = [asyncio.ensure_future(mgr.wait_landed([sha])) for _, sha in parents]
    await asyncio.sleep(0.2)
    assert walks == 10 and not any(w.done() for w in waiting)
    walks = 0
    for n, (wt, sha) in enumerate(parents):
        assert (await mgr.merge(wt, sha)).outcome == "merged"
        await asyncio.wait_for(waiting[n], 10)
        assert not any(w.done() for w in waiting[n + 1 :]), "only the landed parent's dependent wakes"
    # The merges themselves may ask (one each at most); no waiter asks again.
    assert walks <= len(parents), walks


async def test_a_landing_made_elsewhere_is_noticed_by_looking_again(git_repo: Path) -> None:
    """The user (or another process) merged the parent: the waiter sees it on its next look."""
    mgr = WorktreeManager(git_repo)
    _wt, sha = await committed_work(mgr, "p")
    waiting = asyncio.ensure_future(mgr.wait_landed([sha]))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    git(git_repo, "merge", "-q", "--no-edit", sha)
    await asyncio.wait_for(waiting, 10)  # within the one-second poll
    # Known reachable now: a second wait returns at once.
    await asyncio.wait_for(mgr.wait_landed([sha]), 1)


async def test_a_commit_that_lands_as_the_ancestor_of_a_merged_one_is_noticed(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    wt = await mgr.create("s", "p")
    (wt.path / "one.txt").write_text("1\n")
    first = await mgr.commit(wt, "first")
    (wt.path / "two.txt").write_text("2\n")
    second = await mgr.commit(wt, "second")
    assert first and second and first != second
    waiting = asyncio.ensure_future(mgr.wait_landed([first]))
    await asyncio.sleep(0.1)
    assert (await mgr.merge(wt, second)).outcome == "merged"
    await asyncio.wait_for(waiting, 10)
    assert git(git_repo, "merge-base", "--is-ancestor", first, "HEAD") == ""
