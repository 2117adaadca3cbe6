"""Listing and pruning: what swarmd left in a repository, and removing what holds no work.

A worktree with uncommitted changes HEAD lacks is never removed; a branch is
deleted only once its work is reachable from a local branch or when it holds
none. Worktrees locked by a live swarmd process are in use and kept; locks of
dead processes on this host are recognised as stale. Every kept branch comes
with the reason, in words.
"""

from __future__ import annotations

import asyncio
import builtins
import shutil
import tempfile
from pathlib import Path

from swarmd.plugins.runtime.worktree import trash
from swarmd.plugins.runtime.worktree.git import (
    describe_lock,
    lock_is_live,
    names,
    parse_branch,
    split_z,
)
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
    """Remove what holds no work: worktrees whose changes are all on HEAD, and branches merged or empty.

    Locks of processes that are gone are ignored. A worktree's uncommitted
    changes count as work unless applying them to HEAD changes nothing (a
    later attempt merged the same files), and a worktree whose checkout never
    happened (no index, no files) holds none. Keeps, with the precise reason:
    worktrees in use, worktrees with changes HEAD lacks, and branches with
    unmerged commits. Runs ``git worktree prune``, and deletes what the
    trash holds (:mod:`.trash`: removed worktrees not yet deleted).
    """
    top = await repo.toplevel()
    report = PruneReport()
    trash.sweep(top)
    async with repo._exclusive():
        await repo._git("worktree", "prune", cwd=top)
        for st in await statuses(repo):
            stale = "" if st.locked_reason is None else f"; {describe_lock(st.locked_reason)}"
            if st.in_use:
                assert st.locked_reason is not None
                report.kept.append((st.branch, describe_lock(st.locked_reason)))
                continue
            force = False
            if st.path is not None and not st.missing and not st.clean:
                if not repo._never_checked_out(st.path):
                    missing = await _changes_not_on_head(repo, st.path)
                    if missing:
                        what = f"{len(missing)} file(s): {names(missing, 5)}"
                        report.kept.append((st.branch, f"uncommitted changes in {st.path} not on HEAD, {what}{stale}"))
                        continue
                force = True  # its changes are all on HEAD already, or it has none
            if st.has_own_work and not st.merged:
                why = f"unmerged commits: merge it with `git merge {st.branch}` or delete it"
                report.kept.append((st.branch, why + stale))
                continue
            if st.path is not None:
                entry = next((e for e in await repo._worktree_entries() if e.path == st.path), None)
                if entry is not None and not await repo._drop_checkout(entry, force=force):
                    report.kept.append((st.branch, f"git refused to remove {st.path}"))
                    continue
                report.removed_worktrees.append(st.path)
            await repo._delete_branch(st.branch)
            report.deleted_branches.append(st.branch)
    return report


async def _changes_not_on_head(repo: RepoBase, path: Path) -> builtins.list[str]:
    """Files whose uncommitted state in ``path`` HEAD lacks ([] when HEAD has it all).

    The worktree's files are written as a tree (through a scratch index: the
    worktree's own is not touched) and merged onto HEAD in the object store;
    a merge that leaves HEAD's tree as it is loses nothing by removing them.
    """
    env = {"GIT_OPTIONAL_LOCKS": "0"}
    status = await repo._git("status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=path, env=env)
    changed = [entry[3:] for entry in split_z(status.out) if len(entry) > 3 and entry[2] == " "]
    own = Path(path, (await repo._git("rev-parse", "--git-path", "index", cwd=path)).text)
    with tempfile.TemporaryDirectory() as scratch:
        index = {**env, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        try:  # a copy of its own index spares hashing every file again
            await asyncio.to_thread(shutil.copyfile, own, Path(scratch) / "index")
        except OSError:
            await repo._git("read-tree", "HEAD", cwd=path, env=index)
        await repo._git("add", "-A", cwd=path, env=index)
        tree = (await repo._git("write-tree", cwd=path, env=index)).text
    parent = (await repo._git("rev-parse", "HEAD", cwd=path)).text
    files = (await repo._git("commit-tree", "--no-gpg-sign", tree, "-p", parent, "-m", "swarmd: prune check")).text
    merged, conflicts, _ = await repo._merge_tree("HEAD", files, check=False)
    if merged is not None and not conflicts and merged == await repo.tree_hash("HEAD"):
        return []
    return changed or ["(unreadable changes)"]


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
