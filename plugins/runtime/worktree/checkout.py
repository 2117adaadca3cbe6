"""The user's checkout: whether swarmd may move it, and moving it without losing an edit.

``git read-tree -m -u <old> <new>`` moves the index and working tree the way
a branch switch does: staged, unstaged and untracked edits are carried along,
and git refuses (changing nothing) when they overlap files the move changes.
Ignored files, which read-tree would overwrite, are checked here first.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from pathlib import Path

from swarmd.plugins.runtime.worktree.git import names, split_z
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["move_checkout", "not_mergeable_now"]

_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or am",
    "BISECT_LOG": "a bisect",
}


async def not_mergeable_now(repo: RepoBase, top: Path) -> str:
    """Why nothing can be merged into the checkout now ("" when it can); ``{branch}`` to fill."""
    paths = repo._in_progress_paths
    if paths is None:  # where git keeps them does not change: asked once
        args = [a for name in _IN_PROGRESS for a in ("--git-path", name)]
        paths = repo._in_progress_paths = (await repo._git("rev-parse", *args, cwd=top)).text.splitlines()
    for name, rel in zip(_IN_PROGRESS, paths, strict=True):
        if await asyncio.to_thread(os.path.lexists, top / rel):
            return (
                f"{_IN_PROGRESS[name]} is in progress in {top}: finish or abort it, then run "
                "`git merge {branch}`"
            )
    if (await repo._git("ls-files", "-u", "-z", cwd=top)).out:
        return f"{top} has unresolved conflicts in its index"
    return ""


async def move_checkout(repo: RepoBase, top: Path, old: str, final: str, branch: str) -> str:
    """Carry the user's index and tree from ``old`` to ``final``; "" or why git refused.

    ``branch`` is the one named in the advice (the first of the batch).
    """
    blocked = await _ignored_files_in_the_way(repo, top, old, final)
    if blocked:
        return (
            f"files the merge adds already exist untracked or ignored in {top}: "
            f"{names(blocked)}; move them away, then merge again"
        )
    moved = await repo._git("read-tree", "-m", "-u", old, final, cwd=top, check=False)
    if moved.rc != 0:
        # read-tree also refuses a file whose stat data is stale (touched, not changed); a
        # refresh (a stat of every file, on a large checkout the longer step) is made only then.
        await repo._git("update-index", "-q", "--refresh", cwd=top, check=False)
        moved = await repo._git("read-tree", "-m", "-u", old, final, cwd=top, check=False)
    if moved.rc == 0:
        return ""
    overlap = await _local_changes_overlapping(repo, top, old, final)
    detail = names(overlap) if overlap else moved.error
    return (
        f"your uncommitted changes in {top} overlap files the merge of "
        f"{branch} changes ({detail}); commit or stash them, then run "
        f"`git merge {branch}`"
    )


async def _ignored_files_in_the_way(
    repo: RepoBase, top: Path, old: str, merge: str
) -> builtins.list[str]:
    """Paths the merge adds where an untracked (or ignored) file or folder sits.

    read-tree protects untracked files but overwrites ignored ones.
    """
    added = split_z(
        (
            await repo._git(
                "diff-tree", "-r", "--name-only", "-z", "--diff-filter=A", old, merge, cwd=top
            )
        ).out
    )

    def on_disk() -> builtins.list[str]:
        found: set[str] = set()
        for rel in added:
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                parent = top.joinpath(*parts[:depth])
                if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                    found.add("/".join(parts[:depth]))
            if os.path.lexists(top / rel):
                found.add(rel)
        return sorted(found)

    candidates = await asyncio.to_thread(on_disk)
    if not candidates:
        return []
    listed = await repo._git("--literal-pathspecs", "ls-files", "-z", "--", *candidates)
    tracked = set(split_z(listed.out))
    return [c for c in candidates if c not in tracked]


async def _local_changes_overlapping(
    repo: RepoBase, top: Path, old: str, merge: str
) -> builtins.list[str]:
    changed: set[str] = set(await repo._changed_files(old, merge))
    local = await repo._git("diff-index", "--name-only", "-z", old, check=False)
    untracked = await repo._git("ls-files", "-o", "-z", "--exclude-standard", check=False)
    return sorted(changed & set(split_z(local.out) + split_z(untracked.out)))
