"""Merging without touching the user's work, in batches, off the critical path.

``git merge`` needs a clean checkout, which is why naive merge-back code
stashes (and loses) the user's edits. swarmd never runs it. Instead, for a
batch of finished sub-agents (every merge queued while the previous batch
was landing, taken in the order of their swarm, subtask and attempt, so the
order they finished in does not decide the history):

1. ``git merge-tree --write-tree <tip> <commit>`` computes each merge in the
   object store, one onto the other, and ``git commit-tree -p <tip> -p
   <commit>`` makes each --no-ff merge commit. A conflict fails only that
   sub-agent: it is reported with each file's diff taken from the conflicted
   tree git wrote (conflict markers included), its branch and worktree are
   kept, and the batch goes on without it. None of this needs the lock.
2. Under the repository lock, only: HEAD is checked to be where step 1 began
   (if the user committed meanwhile, step 1 is redone), then
   ``git read-tree -m -u <old HEAD> <last merge>`` moves the index and
   working tree once for the whole batch, the way a branch switch does:
   staged, unstaged and untracked edits are carried along, and git refuses
   (changing nothing) when they overlap files the merges change. Ignored
   files, which read-tree would overwrite, are checked by swarmd first.
3. ``git update-ref <branch> <last merge> <old HEAD>`` moves the user's
   branch, guarded by its old value; if the branch moved meanwhile, step 2
   is undone and the batch reported as ``failed``.

A subtask whose merge (its trailers, see :mod:`.ledger`) is already on the
branch step 1 starts from is reported merged as that commit, never merged
again; a batch holds one merge per subtask.

When step 2 refuses a batch of several, each of its merges is landed on its
own, so only the sub-agents whose files overlap the user's edits fail, each
with the overlapping files named. Once taken into a batch, a merge runs to
completion even when its caller is cancelled (the cancellation is re-raised
afterwards). After landing, the worktrees are removed in parallel and the
batch's branches deleted in one transaction, outside the lock
(:mod:`.tidy`).

:func:`merge_back` is the one entry point.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from swarmd.plugins.runtime.worktree import ledger, priority
from swarmd.plugins.runtime.worktree.checkout import move_checkout, not_mergeable_now
from swarmd.plugins.runtime.worktree.fastmerge import Change, Claims, build_chain, changes_between
from swarmd.plugins.runtime.worktree.git import names, truncate
from swarmd.plugins.runtime.worktree.landed import notify_landed
from swarmd.plugins.runtime.worktree.model import (
    Conflict,
    MergeOutcome,
    MergeReport,
    Worktree,
    WorktreeError,
)
from swarmd.plugins.runtime.worktree.recall import Recall
from swarmd.plugins.runtime.worktree.repo import RepoBase
from swarmd.plugins.runtime.worktree.tidy import delete_merged_refs, remove_merged_tree, tidy
from swarmd.plugins.runtime.worktree.timing import record

__all__ = ["landed_work", "merge_back"]

# HEAD moved under a batch this many times in a row: give up on that batch.
_MAX_RETRIES = 5


async def merge_back(
    repo: RepoBase, wt: Worktree, commit: str | None, *, auto_merge: bool = True, message: str = ""
) -> MergeReport:
    """Bring ``commit`` (from ``commit()``) back into the user's current branch.

    ``commit`` None -> ``no_changes`` (worktree and branch removed);
    ``auto_merge`` False -> ``kept`` (branch kept, clean worktree removed);
    otherwise ``merged``, ``conflicted`` (branch and worktree kept, files and
    diffs listed) or ``failed`` (branch and worktree kept, nothing changed).
    """
    started = time.monotonic()
    report = MergeReport(
        MergeOutcome.NO_CHANGES, branch=wt.branch, commit=commit or "", worktree_path=wt.path
    )
    request: _Request | None = None
    try:
        await repo.toplevel()
        # The branch tip commit() left is known in this process: not asked again.
        known_tip = commit is not None and repo._tips.get(wt.branch) == commit
        _, tip, changed = await asyncio.gather(
            repo._unlock_quick(wt.path),
            asyncio.sleep(0, commit) if known_tip else repo._ref(f"refs/heads/{wt.branch}"),
            changes_between(repo, wt.base_commit, commit) if commit else asyncio.sleep(0, []),
        )
        if commit is None or not auto_merge:
            report.target_branch = await repo.current_branch() or ""
        if commit is None:
            report.summary = f"subtask {wt.subtask_id} changed nothing"
            # As a merged one: removed if clean, its branch deleted while still at its base.
            if await remove_merged_tree(repo, wt, report, "it has uncommitted changes"):
                await delete_merged_refs(repo, [(wt, wt.base_commit)])
            return report
        if tip is None or (tip != commit and not await repo._is_ancestor(commit, tip)):
            report.outcome = MergeOutcome.FAILED
            report.summary = f"commit {commit[:12]} is not on branch {wt.branch}; nothing merged"
            return report
        report.files_changed = len(changed)
        if not auto_merge:
            report.outcome = MergeOutcome.KEPT
            report.summary = (
                f"auto-merge is off: the work of subtask {wt.subtask_id} is on "
                f"branch {wt.branch} ({commit[:12]})"
            )
            async with repo._exclusive():
                await tidy(
                    repo, wt, report, "it has changes made after the commit", keep_branch=True
                )
            return report
        request = _Request(wt, commit, message, report, changed)
        return await _integrator(repo).submit(request)
    except WorktreeError as exc:
        # Raised only before anything moved: the user's checkout is untouched.
        report.outcome = MergeOutcome.FAILED
        report.summary = f"{exc}; branch {wt.branch} kept; nothing was merged"
        return report
    finally:
        record(
            "merge",
            wt.swarm_id,
            wt.subtask_id,
            time.monotonic() - started,
            lock_wait=request.lock_wait if request else 0.0,
            batch=request.batch_size if request else 0,
        )


async def landed_work(repo: RepoBase, wt: Worktree) -> str | None:
    """The commit of ``wt``'s subtask already merged on the user's branch (an earlier
    attempt's, whose process died before reporting it), None when there is none."""
    top = await repo.toplevel()
    target, old = await _where(repo, top)
    if not target:
        return None
    found = await _integrator(repo)._recall.merges_on(repo, old, {wt.swarm_id}, {wt.base_commit})
    work = found.get((wt.swarm_id, wt.subtask_id))
    return work.commit if work else None


@dataclass(eq=False)
class _Request:
    wt: Worktree
    commit: str
    message: str
    report: MergeReport
    #: What the commit changed against its base (for the fast path).
    changes: builtins.list[Change]
    future: asyncio.Future[MergeReport] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    #: Taken into a batch: from now on it runs to completion.
    taken: bool = False
    lock_wait: float = 0.0
    batch_size: int = 0
    #: The merge commit planned for it (``merged``), or "" when already merged.
    merge: str = ""
    #: The merge commit of the same (swarm, subtask) found on the target: not merged again;
    #: and the sub-agent commit it merged (what the report then names as the work).
    merged_as: str = ""
    merged_work: str = ""

    @property
    def kept(self) -> str:
        return f"branch {self.wt.branch} kept with the work ({self.commit[:12]})"

    def fail(self, why: str) -> None:
        self.report.outcome = MergeOutcome.FAILED
        self.report.summary = f"{why}; {self.kept}; nothing was changed"


# One integrator per (event loop, repository top level).
_INTEGRATORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Integrator]] = weakref.WeakKeyDictionary()


def _integrator(repo: RepoBase) -> _Integrator:
    assert repo._top is not None
    known = _INTEGRATORS.setdefault(asyncio.get_running_loop(), {})
    found = known.get(str(repo._top))
    if found is None:
        found = known[str(repo._top)] = _Integrator(repo)
    return found


class _Integrator:
    """Lands the merges queued for one repository, a batch at a time."""

    def __init__(self, repo: RepoBase) -> None:
        self.repo = repo
        self._queue: list[_Request] = []
        self._runner: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        self._recall = Recall()

    async def submit(self, request: _Request) -> MergeReport:
        self._queue.append(request)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._drain())
        try:
            return await asyncio.shield(request.future)
        except asyncio.CancelledError:
            if not request.taken:
                with contextlib.suppress(ValueError):
                    self._queue.remove(request)
                raise
            while not request.future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([request.future])
            raise

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = ledger.one_per_subtask(self._queue, lambda r: r.wt)
            for request in batch:
                request.taken = True
                request.batch_size = len(batch)
            try:
                await self._land(batch)
            except Exception as exc:
                for request in batch:
                    if request.report.outcome is MergeOutcome.NO_CHANGES:
                        request.report.outcome = MergeOutcome.FAILED
                        request.report.summary = (
                            f"{exc}; branch {request.wt.branch} kept; nothing was merged"
                        )
            except BaseException:
                for request in batch:
                    request.future.cancel()
                raise
            task = asyncio.get_running_loop().create_task(self._finish(batch))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _finish(self, batch: builtins.list[_Request]) -> None:
        """Tidy the landed merges' worktrees (in parallel) and refs (one transaction), then report."""
        try:
            for request in batch:
                if request.merged_as:  # keep its branch unless its commit is on the target
                    async with self.repo._exclusive():
                        await tidy(self.repo, request.wt, request.report, "it has changes made after the commit")
            merged = [r for r in batch if r.report.outcome is MergeOutcome.MERGED and not r.merged_as]
            removed = await asyncio.gather(
                *(remove_merged_tree(self.repo, r.wt, r.report) for r in merged),
                return_exceptions=True,
            )
            gone = [(r.wt, r.commit) for r, ok in zip(merged, removed, strict=True) if ok is True]
            if gone:
                await delete_merged_refs(self.repo, gone)
        finally:
            for request in batch:
                if not request.future.done():
                    request.future.set_result(request.report)

    async def _land(self, batch: builtins.list[_Request]) -> None:
        """Merge ``batch`` onto the user's branch; every request gets its outcome."""
        repo = self.repo
        top = await repo.toplevel()
        # Fixed order (not the finishing order); a swarm's promoted branch first.
        batch.sort(
            key=lambda r: (
                r.wt.swarm_id,
                r.wt.subtask_id != priority.promoted(r.wt.swarm_id),
                r.wt.subtask_id,
                r.wt.attempt,
                r.commit,
            )
        )
        for _ in range(_MAX_RETRIES):
            target, old = await _where(repo, top)
            for r in batch:
                r.report.target_branch = target or ""
            if not target:
                for r in batch:
                    r.fail(
                        f"HEAD is detached in {top}: check out a branch, then run "
                        f"`git merge {r.wt.branch}`"
                    )
                return
            final = await self._plan(top, target, old, batch)
            one_by_one = False
            async with repo._exclusive() as waited:
                for r in batch:
                    r.lock_wait += waited
                if await _where(repo, top) != (target, old):
                    continue  # the user committed (or switched) meanwhile: plan again
                landing = [r for r in batch if r.report.outcome is MergeOutcome.NO_CHANGES]
                why = await not_mergeable_now(repo, top)
                if why:
                    for r in landing:
                        r.fail(why.format(branch=r.wt.branch))
                    return
                if final == old:
                    _settle(landing, target)
                    notify_landed(repo, old, old, _reachable(landing))
                    return
                refused = await move_checkout(repo, top, old, final, landing[0].wt.branch)
                if refused and len(landing) > 1:
                    one_by_one = True
                elif refused:
                    landing[0].fail(refused)
                    return
                else:
                    ref = f"refs/heads/{target}"
                    moved = await _move_branch(repo, top, ref, old, final, landing)
                    if moved:
                        _settle(landing, target)
                        self._recall.landed(old, final, _landed_merges(landing))
                        notify_landed(repo, old, final, _reachable(landing))
                    return
            if one_by_one:  # each merge alone: only those that overlap the user's edits fail
                for r in batch:
                    await self._land([r])
                return
        for r in batch:
            if r.report.outcome is MergeOutcome.NO_CHANGES:
                r.fail("the user's branch kept moving while the merge was computed; merge again")

    async def _plan(self, top: Path, target: str, old: str, batch: builtins.list[_Request]) -> str:
        """Merge the batch onto ``old`` in the object store; return the last merge commit.

        Conflicting or unmergeable requests get their outcome here; the
        others keep ``NO_CHANGES`` until they land, with ``merge`` set.
        """
        repo = self.repo
        for r in batch:
            r.report.outcome, r.report.conflicts, r.merge = MergeOutcome.NO_CHANGES, [], ""
        found = await self._recall.merges_on(repo, old, {r.wt.swarm_id for r in batch}, {r.wt.base_commit for r in batch})
        for r in batch:
            known = found.get((r.wt.swarm_id, r.wt.subtask_id))
            r.merged_as, r.merged_work = (known.merge_commit, known.commit) if known else ("", "")
        fast, slow = await self._disjoint(old, [r for r in batch if not r.merged_as])
        current = old
        if fast:
            chain = [(r.commit, r.changes, ledger.merge_message(r.wt, target, r.message)) for r in fast]
            merges = await build_chain(repo, top, old, chain)
            for r, merge in zip(fast, merges, strict=True):
                r.merge = merge
            current = merges[-1]
        current_tree = await repo.tree_hash(current) if slow else ""
        for r in slow:
            tree, conflicts, messages = await repo._merge_tree(current, r.commit, check=False)
            # An unchanged tree is the one case where ancestry needs asking.
            if tree == current_tree and await repo._is_ancestor(r.commit, current):
                continue
            if tree is None:
                r.fail(f"git could not merge {r.wt.branch} into {target}: {messages[0]}")
                continue
            if conflicts:
                await _report_conflicts(repo, r, target, current, tree, conflicts)
                continue
            merge = await repo._commit_tree(tree, [current, r.commit], ledger.merge_message(r.wt, target, r.message))
            r.merge = current = merge
            current_tree = tree
        return current

    async def _disjoint(
        self, old: str, batch: builtins.list[_Request]
    ) -> tuple[builtins.list[_Request], builtins.list[_Request]]:
        """Split the batch: merges that touch files nobody else touched, and the rest.

        A merge is on the fast path when its base is an ancestor of ``old``,
        none of its files changed on the user's branch since that base, and
        no earlier merge of the batch touched them.
        """
        repo = self.repo
        since: dict[str, Claims | None] = {}
        taken = Claims()
        fast: list[_Request] = []
        slow: list[_Request] = []
        for r in batch:
            base = r.wt.base_commit
            if base not in since:
                since[base] = await self._recall.changed_since(repo, base, old)
            paths = [c.path for c in r.changes]
            moved = since[base]
            if not paths or moved is None or moved.collides(paths) or taken.collides(paths):
                slow.append(r)
            else:
                fast.append(r)
            taken.add(paths)
        return fast, slow


def _landed_merges(
    landed: builtins.list[_Request],
) -> builtins.list[tuple[str, str, ledger.MergedWork, builtins.list[str]]]:
    return [
        (r.wt.swarm_id, r.wt.subtask_id, ledger.MergedWork(r.merge, r.commit, r.wt.branch), [c.path for c in r.changes])
        for r in landed
        if r.merge and not r.merged_as
    ]


def _reachable(landed: builtins.list[_Request]) -> builtins.list[str]:
    """The sub-agent commits the user's branch holds once ``landed`` is settled."""
    return [
        r.merged_work if r.merged_as else r.commit
        for r in landed
        if r.report.outcome is MergeOutcome.MERGED and (r.merged_work or not r.merged_as)
    ]


def _settle(landed: builtins.list[_Request], target: str) -> None:
    for r in landed:
        r.report.outcome = MergeOutcome.MERGED
        if r.merged_as:
            # The work on the target is the earlier attempt's commit: name it, so whoever
            # started from this attempt's commit knows it did not land (and starts again).
            r.report.merge_commit = r.merged_as
            r.report.commit = r.merged_work or r.report.commit
            r.report.summary = (
                f"subtask {r.wt.subtask_id} was already merged into {target} as {r.merged_as[:12]}; "
                f"not merged again ({r.kept})"
            )
        elif r.merge:
            r.report.merge_commit = r.merge
            r.report.summary = (
                f"merged {r.wt.branch} into {target} ({r.report.files_changed} files)"
            )
        else:
            r.report.summary = f"{r.wt.branch} was already merged into {target}"


async def _where(repo: RepoBase, top: Path) -> tuple[str | None, str]:
    """The user's branch (None when HEAD is detached) and HEAD's commit."""
    head, _tree, ref = await repo._worktree_head(top)
    return (ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None), head


async def _report_conflicts(
    repo: RepoBase,
    r: _Request,
    target: str,
    current: str,
    tree: str,
    conflicts: builtins.list[str],
) -> None:
    for path in conflicts:
        diff = await repo._git(
            "--literal-pathspecs",
            "diff-tree",
            "-p",
            "--no-ext-diff",
            "--no-textconv",
            current,
            tree,
            "--",
            path,
        )
        r.report.conflicts.append(Conflict(path, truncate(diff.out)))
    r.report.outcome = MergeOutcome.CONFLICTED
    r.report.summary = (
        f"merging {r.wt.branch} into {target} conflicts in "
        f"{names(conflicts)}; {r.kept}; resolve with `git merge {r.wt.branch}`"
    )


async def _move_branch(
    repo: RepoBase, top: Path, ref: str, old: str, final: str, landing: builtins.list[_Request]
) -> bool:
    """Move ``ref`` from ``old`` to ``final``; on refusal restore the checkout and fail all."""
    target = ref.removeprefix("refs/heads/")
    try:
        guard = await repo._git(
            "update-ref",
            "-m",
            f"swarmd: merge {len(landing)} branches",
            ref,
            final,
            old,
            check=False,
        )
        landed = guard.rc == 0
    except WorktreeError:  # timed out: the ref itself says whether it moved
        landed = await repo._ref(ref) == final
    if landed:
        return True
    back = await repo._git("read-tree", "-m", "-u", final, old, cwd=top, check=False)
    for r in landing:
        if back.rc != 0:
            r.report.outcome = MergeOutcome.FAILED
            r.report.summary = (
                f"{target} moved during the merge and restoring the checkout "
                f"failed ({back.error}); run `git read-tree -m -u {final} "
                f"{old}` to restore it; {r.kept}"
            )
        else:
            r.fail(f"{target} moved while {r.wt.branch} was being merged; merge again")
    return False
