"""Listing and pruning: what swarmd left in a repository, and removing what holds no work.

A worktree with uncommitted changes is never removed; a branch is deleted
only once its work is reachable from a local branch or when it holds none.
Worktrees locked by a live swarmd process are in use and kept; locks of dead
processes on this host are recognised as stale.
"""

from __future__ import annotations

import builtins

from swarmd.plugins.runtime.worktree.git import lock_is_live, parse_branch
from swarmd.plugins.runtime.worktree.lazyfiles import is_lazy
from swarmd.plugins.runtime.worktree.model import (
    BASE_REF_PREFIX,
    BRANCH_PREFIX,
    PruneReport,
    WorktreeError,
    WorktreeStatus,
)
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["prune", "statuses"]


async def prune(repo: RepoBase) -> PruneReport:
    """Remove what holds no work: clean worktrees whose branch is merged or empty.

    Keeps, with the reason: worktrees in use, worktrees with uncommitted
    changes, and branches with unmerged commits. Runs ``git worktree prune``.
    """
    top = await repo.toplevel()
    report = PruneReport()
    async with repo._exclusive():
        await repo._git("worktree", "prune", cwd=top)
        for st in await statuses(repo):
            if st.in_use:
                report.kept.append((st.branch, f"in use ({st.locked_reason})"))
                continue
            if st.path is not None and not st.missing and not st.clean:
                report.kept.append((st.branch, f"uncommitted changes in {st.path}"))
                continue
            if st.has_own_work and not st.merged:
                why = f"unmerged commits: merge it with `git merge {st.branch}` or delete it"
                report.kept.append((st.branch, why))
                continue
            if st.path is not None:
                entry = next((e for e in await repo._worktree_entries() if e.path == st.path), None)
                if entry is not None and not await repo._drop_checkout(entry):
                    report.kept.append((st.branch, f"git refused to remove {st.path}"))
                    continue
                report.removed_worktrees.append(st.path)
            await repo._delete_branch(st.branch)
            report.deleted_branches.append(st.branch)
    return report


async def statuses(repo: RepoBase) -> builtins.list[WorktreeStatus]:
    """Every swarmd branch and worktree of the repository, sorted by branch."""
    top = await repo.toplevel()
    refs = await repo._git(
        "for-each-ref",
        "--format=%(refname)%00%(objectname)",
        f"refs/heads/{BRANCH_PREFIX}",
        BASE_REF_PREFIX,
        cwd=top,
    )
    tips: dict[str, str] = {}
    bases: dict[str, str] = {}
    for line in refs.out.decode().splitlines():
        ref, _, oid = line.partition("\0")
        if ref.startswith("refs/heads/"):
            tips[ref.removeprefix("refs/heads/")] = oid
        else:
            bases[BRANCH_PREFIX + ref.removeprefix(BASE_REF_PREFIX)] = oid
    entries = {
        e.branch.removeprefix("refs/heads/"): e for e in await repo._worktree_entries() if e.branch
    }
    result = []
    for branch, tip in sorted(tips.items()):
        parsed = parse_branch(branch)
        if parsed is None:
            continue
        entry = entries.get(branch)
        missing = entry is not None and (entry.prunable or not entry.path.exists())
        clean: bool | None = None
        if entry is not None and not missing:
            try:
                clean = await repo._is_clean(entry.path)
            except WorktreeError:
                clean = False  # unreadable: treat as holding work
        base = bases.get(branch)
        result.append(
            WorktreeStatus(
                swarm_id=parsed[0],
                subtask_id=parsed[1],
                attempt=parsed[2],
                branch=branch,
                head=tip,
                base_commit=base,
                path=entry.path if entry else None,
                missing=missing,
                clean=clean,
                merged=await repo._is_merged(tip),
                has_own_work=tip != base,
                locked_reason=entry.locked if entry else None,
                in_use=lock_is_live(entry.locked) if entry else False,
                lazy=entry is not None and not missing and is_lazy(entry.path),
            )
        )
    return result
