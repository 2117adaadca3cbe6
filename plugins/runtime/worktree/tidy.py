"""After a merge: removing worktrees and refs without losing work.

A landed merge's worktree is removed once ``git status`` finds nothing
uncommitted in it, as ``git worktree remove`` does but with one git process
instead of two and its files moved to the trash rather than deleted there and
then (:mod:`.trash`) (anything unusual goes to ``git worktree remove``, which
refuses a worktree with changes made after the commit; those go the careful
way, under the lock); the branches and base refs of a whole batch are then
deleted together (combined into ``update-ref`` transactions), each guarded
by the merged commit, so a branch that moved on is never deleted with work
on it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import shutil
from pathlib import Path

from swarmd.plugins.runtime.worktree import trash
from swarmd.plugins.runtime.worktree.libgit import Engine
from swarmd.plugins.runtime.worktree.model import (
    BASE_REF_PREFIX,
    BRANCH_PREFIX,
    MergeReport,
    Worktree,
    WorktreeError,
)
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["delete_merged_refs", "remove_merged_tree", "tidy"]


def _remove_files(top: Path | None, admin: Path, path: Path) -> bool:
    """What ``git worktree remove`` does once the worktree is known clean: its folder, then its admin folder.

    Both go to the trash (:mod:`.trash`, deleted later) where they can; in place otherwise.
    """
    if top is not None and trash.discard(top, path, admin):
        return True
    try:
        shutil.rmtree(path)
    except OSError:
        return False
    shutil.rmtree(admin, ignore_errors=True)
    return True


def _remove_if_clean_now(repo: RepoBase, engine: Engine, path: Path) -> bool | None:
    """:func:`_remove_clean` in one step on a worker thread with libgit2; None: not that way."""
    admin = repo._admin_dir(path)
    if admin is None or os.path.lexists(admin / "locked"):
        return False
    clean = engine.is_clean_now(path)
    if clean is None:
        return None
    if not clean or not _remove_files(repo._top, admin, path):
        return False
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the swarm folder, once empty
    return True


async def _remove_clean(repo: RepoBase, wt: Worktree) -> bool:
    """Remove ``wt`` if ``git status`` finds nothing uncommitted in it (one git process)."""
    engine = await repo._libgit()
    if engine.usable():
        done = await asyncio.to_thread(_remove_if_clean_now, repo, engine, wt.path)
        if done is not None:
            return done
    admin = await asyncio.to_thread(repo._admin_dir, wt.path)
    if admin is None or os.path.lexists(admin / "locked"):
        return False
    try:
        if not await repo._is_clean(wt.path):
            return False
    except WorktreeError:
        return False
    if not await asyncio.to_thread(_remove_files, repo._top, admin, wt.path):
        return False
    with contextlib.suppress(OSError):
        await asyncio.to_thread(wt.path.parent.rmdir)  # the swarm folder, once empty
    return True


async def remove_merged_tree(
    repo: RepoBase, wt: Worktree, report: MergeReport, why_kept: str = "it has changes made after the commit"
) -> bool:
    """After a merge landed (or when there was nothing to merge): remove the
    worktree; True when its refs are left to delete."""
    if await _remove_clean(repo, wt):
        report.worktree_path = None
        return True
    gone = await repo._git("worktree", "remove", str(wt.path), check=False)
    if gone.rc != 0:
        async with repo._exclusive():  # missing or odd checkout: the careful path
            await tidy(repo, wt, report, why_kept)
        return False
    report.worktree_path = None
    with contextlib.suppress(OSError):
        await asyncio.to_thread(wt.path.parent.rmdir)  # the swarm folder, once empty
    return True


def _ref_deletions(wt: Worktree, commit: str) -> str:
    base_ref = f"{BASE_REF_PREFIX}{wt.branch.removeprefix(BRANCH_PREFIX)}"
    return f"delete refs/heads/{wt.branch} {commit}\ndelete {base_ref}\n"


async def delete_merged_refs(repo: RepoBase, landed: builtins.list[tuple[Worktree, str]]) -> None:
    """Delete the branches and base refs of merged work, in as few transactions as hold.

    Each branch is deleted only while it still points at the merged commit
    (:class:`.refbatch.RefWriter` combines the deletions and isolates a
    refusal); one that moved on is then deleted only if that loses nothing.
    """
    results = await asyncio.gather(
        *(repo._update_refs(_ref_deletions(wt, commit)) for wt, commit in landed)
    )
    for (wt, _commit), one in zip(landed, results, strict=True):
        if one.rc != 0:  # the branch moved on after the commit: delete only what loses nothing
            tip = await repo._ref(f"refs/heads/{wt.branch}")
            if tip is not None and not await repo._has_unmerged_work(wt.branch, tip):
                await repo._delete_branch(wt.branch)


async def tidy(
    repo: RepoBase, wt: Worktree, report: MergeReport, why_kept: str, *, keep_branch: bool = False
) -> None:
    """Remove the worktree once its work is safe; a failure here only adds to the summary."""
    try:
        removed = await repo._remove_checkout(wt, keep_branch=keep_branch)
    except WorktreeError as exc:
        report.summary += f"; worktree {wt.path} kept: {exc}"
        return
    if removed:
        report.worktree_path = None
    else:
        report.summary += f"; worktree {wt.path} kept: {why_kept}"
