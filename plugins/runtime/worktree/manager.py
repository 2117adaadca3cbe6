"""The worktree lifecycle: create, commit, patch, merge (delegated), remove, list, prune.

Deterministic bases
    A worktree starts from the commit the swarm started from plus the commits
    of the subtask's own dependencies, merged in the order given. Merges are
    computed in the object store (``git merge-tree --write-tree`` and
    ``git commit-tree`` with the newest parent's date), so the same inputs
    give the same tree, and the same commit, whatever order siblings finish
    in. A dependent therefore starts from its parents' commits, never waiting
    for them to reach the user's branch. Dependencies whose work conflicts
    make :meth:`WorktreeManager.create` fail with :class:`DependencyConflict`
    naming the files.

Creating in parallel
    Only claiming the slot (the branch and the folder) runs under the
    repository lock; the checkout itself (``git worktree add`` of an existing
    branch) runs outside it, so many worktrees are populated at once.

Never losing work
    The sub-agent's work is committed (``git add -A``) before any merge, by
    plumbing, so neither hooks nor commit signing can block it. Worktrees
    are locked (``git worktree lock``) while a sub-agent uses them, so
    ``prune`` never removes a live one.

Attempts
    A retried or resumed subtask goes on in the worktree of an interrupted
    earlier attempt (its process died; same start, not merged), keeping its
    work (:mod:`.carryover`). Otherwise it reuses its slot when the earlier
    worktree holds no work, or the earlier one is kept and the new worktree
    becomes ``swarmd/<swarm>/<subtask>@2`` (``@3``...). ``@`` never occurs in an
    id, so attempts cannot collide with other subtasks.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from swarmd.plugins.runtime.worktree import (
    carryover,
    deferred,
    fastmerge,
    integrate,
    inventory,
    landed,
    lazy,
    ledger,
)
from swarmd.plugins.runtime.worktree.fastmerge import Change, raw_and_patch
from swarmd.plugins.runtime.worktree.git import lock_is_live, lock_reason, names, slot_name
from swarmd.plugins.runtime.worktree.libgit import Engine
from swarmd.plugins.runtime.worktree.model import (
    BASE_REF_PREFIX,
    BRANCH_PREFIX,
    WORKTREES_DIR,
    DependencyConflict,
    MergeReport,
    PruneReport,
    Worktree,
    WorktreeError,
    WorktreeStatus,
    validate_id,
)
from swarmd.plugins.runtime.worktree.repo import RepoBase
from swarmd.plugins.runtime.worktree.spread import spread
from swarmd.plugins.runtime.worktree.timing import record

__all__ = ["WorktreeManager"]


# Slots claimed but not yet checked out, per (event loop, repository): skipped by claims.
_CLAIMED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, set[str]]] = (
    weakref.WeakKeyDictionary()
)


# (common git directory, base, dependency) -> the merged base commit: a function of its inputs.
_BASES: dict[tuple[str, str, str], str] = {}


class WorktreeManager(RepoBase):
    """Creates, commits, merges, lists and prunes sub-agent worktrees of one repository."""

    #: Full or lazy checkouts of new worktrees (see :mod:`.lazy`); set per manager.
    checkout_policy: lazy.CheckoutPolicy = lazy.CheckoutPolicy()
    #: Write a fresh full checkout's files in the background (see :mod:`.deferred`):
    #: :meth:`create` then returns before they are all written, and whoever
    #: uses the files awaits :attr:`Worktree.ready`. Sub-agent attempts turn it on.
    defer_checkout: bool = False

    # -- create --------------------------------------------------------------------

    async def create(
        self,
        swarm_id: str,
        subtask_id: str,
        base_commit: str | None = None,
        dependency_commits: Sequence[str] = (),
    ) -> Worktree:
        """Make a locked worktree on ``swarmd/<swarm>/<subtask>`` for one sub-agent.

        It starts from ``base_commit`` (default HEAD) with ``dependency_commits``
        merged in the order given. If an earlier worktree of the subtask still
        holds work (uncommitted changes, unmerged commits, or a live lock) it is
        kept and a new attempt ``<subtask>@2`` (``@3``...) is made; an earlier one
        without work is replaced. An interrupted earlier attempt's worktree (stale
        lock, not merged, same start) is continued in instead, its work kept
        (see :mod:`.carryover`).
        """
        validate_id("swarm", swarm_id)
        validate_id("subtask", subtask_id)
        started = time.monotonic()
        top = await self.toplevel()
        base = await self._resolve_commit(base_commit or await self.head_commit(), "base commit")
        deps = [await self._resolve_commit(c, "dependency commit") for c in dependency_commits]
        start = await self._merge_dependencies(base, deps, subtask_id)
        await self._ensure_excluded()
        claimed = _CLAIMED.setdefault(asyncio.get_running_loop(), {}).setdefault(str(top), set())
        waited = 0.0
        # A fresh slot (no branch, no folder) needs no lock: creating the branch is atomic.
        slot, attempt = subtask_id, 1
        branch = f"{BRANCH_PREFIX}{swarm_id}/{slot}"
        path = top / WORKTREES_DIR / swarm_id / slot
        fresh = branch not in claimed and not await asyncio.to_thread(os.path.lexists, path)
        if fresh and self.defer_checkout and await deferred.eligible(self, start, self.checkout_policy):
            claimed.add(branch)
            try:
                pending = await deferred.create_fresh(
                    self, self._register, policy=self.checkout_policy, branch=branch, path=path, start_commit=start,
                    base_line=f"update {BASE_REF_PREFIX}{swarm_id}/{slot} {start}", who=(swarm_id, subtask_id),
                )
            finally:
                claimed.discard(branch)
            if pending is not None:
                record("create", swarm_id, subtask_id, time.monotonic() - started)
                return Worktree(swarm_id, subtask_id, path, branch, start, attempt, ready=pending)
            fresh = False  # taken meanwhile: the slot is claimed under the lock below
        if fresh:
            claimed.add(branch)
            try:
                fresh = await self._check_out(branch, path, start, check=False)
            finally:
                claimed.discard(branch)
        if not fresh:
            async with self._exclusive() as waited:
                kept = await carryover.continue_interrupted(self, swarm_id, subtask_id, start)
                if kept is not None:
                    record("create", swarm_id, subtask_id, time.monotonic() - started, lock_wait=waited)
                    return kept
                for attempt in range(1, 1000):
                    slot = slot_name(subtask_id, attempt)
                    branch = f"{BRANCH_PREFIX}{swarm_id}/{slot}"
                    path = top / WORKTREES_DIR / swarm_id / slot
                    if branch in claimed or not await self._claim_slot(branch, path):
                        continue
                    claimed.add(branch)
                    break
                else:
                    raise WorktreeError(
                        f"too many worktrees kept for subtask {subtask_id}; "
                        "run swarmd worktrees prune"
                    )
            try:
                await self._check_out(branch, path, start)
            finally:
                claimed.discard(branch)
        based = await self._update_refs(f"update {BASE_REF_PREFIX}{swarm_id}/{slot} {start}")
        if based.rc != 0:
            raise WorktreeError(f"cannot record the base of {branch}: {based.error}")
        record("create", swarm_id, subtask_id, time.monotonic() - started, lock_wait=waited)
        return Worktree(swarm_id, subtask_id, path, branch, start, attempt)

    async def _check_out(self, branch: str, path: Path, start: str, *, check: bool = True) -> bool:
        """A locked worktree of the new ``branch`` at ``start`` in ``path``; False if taken.

        What ``git worktree add --lock -b`` does, made safe to run many at once:
        the branch is created atomically (refused when it exists), the
        worktree's administrative folder is written aside and renamed into
        ``worktrees/`` whole, lock included (so neither a concurrent ``git
        worktree list`` nor ``prune`` ever sees it half-made), and one
        ``read-tree -u`` writes the index and the files; or, for a lazy
        worktree (:attr:`checkout_policy`), the index alone (see :mod:`.lazy`).
        """
        created = await self._update_refs(f"create refs/heads/{branch} {start}")
        if created.rc != 0:
            if check:
                raise WorktreeError(f"cannot create branch {branch}: {created.error}")
            return False
        admin: Path | None = None
        try:
            admin = await asyncio.to_thread(self._register, branch, path)
            if admin is None:
                if check:
                    raise WorktreeError(f"{path} already exists")
                await self._update_refs(f"delete refs/heads/{branch} {start}")
                return False
            await lazy.populate(self, path, admin, start, self.checkout_policy)
        except BaseException:
            if admin is not None:
                await asyncio.to_thread(deferred.unregister, admin, path)
            await self._update_refs(f"delete refs/heads/{branch} {start}")
            raise
        return True

    def _register(self, branch: str, path: Path) -> Path | None:
        """Make ``path`` a worktree of ``branch`` (no files yet); its admin folder, None if taken."""
        assert self._common is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        spread(path.parent)  # each worktree's files in a block group of their own
        try:
            path.mkdir()
        except FileExistsError:
            return None
        root = self._common / "worktrees"
        scratch = self._common / "swarmd-new"
        root.mkdir(exist_ok=True)
        scratch.mkdir(exist_ok=True)
        spread(scratch)  # the admin folders are made there
        n = vanished = 0
        while n < 1000:
            name = path.name if n == 0 else f"{path.name}{n}"
            admin = root / name
            if os.path.lexists(admin):
                n += 1
                continue
            (path / ".git").write_text(f"gitdir: {admin}\n")
            tmp = Path(tempfile.mkdtemp(dir=scratch))
            (tmp / "gitdir").write_text(f"{path / '.git'}\n")
            (tmp / "commondir").write_text("../..\n")
            (tmp / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
            (tmp / "locked").write_text(lock_reason())
            try:
                os.rename(tmp, admin)
            except FileNotFoundError:
                # git removes an emptied worktrees/ folder (worktree remove, prune)
                # while another worktree of the repository is being made: make it again.
                shutil.rmtree(tmp, ignore_errors=True)
                vanished += 1
                if vanished > 100:
                    raise WorktreeError(f"{root} keeps disappearing") from None
                root.mkdir(exist_ok=True)
                continue
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                n += 1
                continue
            return admin
        raise WorktreeError(f"no free worktree name for {path} in {root}")

    async def _merge_dependencies(self, base: str, deps: Sequence[str], subtask_id: str) -> str:
        current = base
        for dep in deps:
            known = _BASES.get((str(self._common), current, dep))
            if known is not None:
                current = known
                continue
            text = f"swarmd: merge dependency {dep} into a subtask base"
            merged = await (await self._libgit()).merge_disjoint(current, dep, text)
            if merged is None:
                merged = await self._merge_dependency_with_git(current, dep, text, subtask_id)
            if merged in (current, dep):
                current = merged
                continue
            if len(_BASES) > 10_000:
                _BASES.clear()
            _BASES[(str(self._common), current, dep)] = merged
            current = merged
        return current

    async def _merge_dependency_with_git(self, current: str, dep: str, text: str, subtask_id: str) -> str:
        """:meth:`_merge_dependencies`' step through git's command line: ``current``,
        ``dep`` (one contains the other) or their merge; DependencyConflict."""
        # One merge-base answers both ancestry questions.
        between = await self._git("merge-base", current, dep, check=False)
        if between.rc == 0 and between.text in (current, dep):
            return current if between.text == dep else dep
        tree, conflicts, messages = await self._merge_tree(current, dep)
        if conflicts:
            raise DependencyConflict(
                f"the dependencies of subtask {subtask_id} conflict: merging {dep[:12]} "
                f"conflicts in {names(conflicts)}" + (f" ({messages[0]})" if messages else ""),
                conflicts,
            )
        # The newest parent's date and a message naming only the inputs make the
        # base commit itself (not only its tree) a function of the inputs.
        assert tree is not None  # check=True raised otherwise
        dates = await self._git("rev-list", "--no-walk", "--no-commit-header", "--format=%ct", current, dep)
        stamp = f"@{max(int(d) for d in dates.text.split())} +0000"
        # commit-tree -m ends the message with a newline; so does the message given on stdin here.
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        return await self._commit_tree(tree, [current, dep], text.rstrip("\n") + "\n", env=env)

    async def _claim_slot(self, branch: str, path: Path) -> bool:
        """Free ``branch``/``path`` for a new worktree, or return False if they hold work."""
        tip = await self._ref(f"refs/heads/{branch}")
        entry = next(
            (
                e
                for e in await self._worktree_entries()
                if e.path == path or e.branch == f"refs/heads/{branch}"
            ),
            None,
        )
        if tip is None and entry is None:
            return not await asyncio.to_thread(os.path.lexists, path)
        if entry is not None:
            if lock_is_live(entry.locked) or entry.path != path:
                return False
            if not entry.prunable and not await self._is_clean(entry.path):
                return False
        if tip is not None and await self._has_unmerged_work(branch, tip):
            return False
        if entry is not None:
            await self._drop_checkout(entry)
        if await asyncio.to_thread(os.path.lexists, path):
            return False
        if tip is not None:
            await self._delete_branch(branch)
        return True

    # -- commit --------------------------------------------------------------------

    async def commit(self, wt: Worktree, message: str = "") -> str | None:
        """Commit everything the sub-agent changed; return the branch tip, None if unchanged.

        Uses plumbing (``write-tree``/``commit-tree``) so hooks and commit
        signing cannot block or alter it. Commits the agent made itself count.
        """
        started = time.monotonic()
        await deferred.ready(wt.ready)
        engine = await self._libgit()
        body = message.strip() or f"swarmd: work of subtask {wt.subtask_id}"
        text = f"{body}\n\n{ledger.trailers(wt.swarm_id, wt.subtask_id)}"
        snap = await engine.commit_all(wt.path, text)
        if snap is not None:
            head, on, new = snap.head, snap.on, snap.commit or None
            if new is not None and snap.changes is not None:  # the merge need not compare trees
                fastmerge.known(self, head, new, [Change(c.path, c.mode, c.blob, c.deleted) for c in snap.changes])
        else:
            head, on, new = await self._commit_with_git(wt, engine, text)
        if new is not None:
            if on == f"refs/heads/{wt.branch}":
                moved = await self._update_refs(f"update {on} {new} {head}")
                if moved.rc != 0:
                    raise WorktreeError(f"cannot commit to {wt.branch}: {moved.error}")
            else:
                await self._git(
                    "update-ref",
                    "-m",
                    f"swarmd: commit subtask {wt.subtask_id}",
                    "HEAD",
                    new,
                    head,
                    cwd=wt.path,
                )
            head = new
        if on != f"refs/heads/{wt.branch}":  # the agent left its branch
            await self._sync_branch(wt, head)
        self._tips[wt.branch] = head
        self._known_commit(head)
        record("commit", wt.swarm_id, wt.subtask_id, time.monotonic() - started)
        return None if head == wt.base_commit else head

    async def _commit_with_git(self, wt: Worktree, engine: Engine, text: str) -> tuple[str, str, str | None]:
        """:meth:`commit`'s staging and commit object where libgit2 did not: (HEAD before, its ref, new commit)."""
        tree = None
        if not await asyncio.to_thread(lazy.is_lazy, wt.path):
            tree = await engine.add_and_write_tree(wt.path)
        if tree is None:
            await self._git("add", "-A", cwd=wt.path)
        head, head_tree, on = await self._worktree_head(wt.path)
        if tree is None:
            tree = (await self._git("write-tree", cwd=wt.path)).text
        if tree == head_tree:
            return head, on, None
        new = await engine.commit(wt.path, tree, head, text) or await self._commit_tree(tree, [head], text)
        return head, on, new

    async def _sync_branch(self, wt: Worktree, head: str) -> None:
        """Make sure the worktree's branch holds ``head`` even if the agent moved off it."""
        tip = await self._ref(f"refs/heads/{wt.branch}")
        if tip == head:
            return
        if tip is not None and await self._is_ancestor(tip, head):
            moved = await self._update_refs(f"update refs/heads/{wt.branch} {head} {tip}")
            if moved.rc != 0:
                raise WorktreeError(f"cannot move {wt.branch} to {head[:12]}: {moved.error}")
            return
        raise WorktreeError(
            f"the worktree {wt.path} is no longer on branch {wt.branch} and its HEAD "
            f"{head[:12]} does not extend it; nothing was changed"
        )

    # -- merge ---------------------------------------------------------------------

    async def commit_and_merge(
        self, wt: Worktree, message: str = "", *, auto_merge: bool = True
    ) -> MergeReport:
        """:meth:`commit` then :meth:`merge`: the usual end of a successful sub-agent."""
        return await self.merge(wt, await self.commit(wt, message), auto_merge=auto_merge)

    async def merge(
        self, wt: Worktree, commit: str | None, *, auto_merge: bool = True, message: str = ""
    ) -> MergeReport:
        """Bring ``commit`` (from :meth:`commit`) back into the user's current branch.

        See :func:`swarmd.plugins.runtime.worktree.integrate.merge_back`.
        """
        return await integrate.merge_back(self, wt, commit, auto_merge=auto_merge, message=message)

    async def landed_work(self, wt: Worktree) -> str | None:
        """An earlier attempt's commit of ``wt``'s subtask already merged on the user's branch, or None."""
        return await integrate.landed_work(self, wt)

    async def wait_landed(self, commits: Sequence[str]) -> None:
        """Wait until every commit of ``commits`` is on the user's branch.

        See :func:`swarmd.plugins.runtime.worktree.landed.wait_landed`.
        """
        await landed.wait_landed(self, commits)

    # -- patches ---------------------------------------------------------------------

    async def diff_against_base(self, wt: Worktree, commit: str | None = None) -> bytes:
        """Binary patch of the committed work (branch tip, or ``commit``) against its base.

        Pass ``commit`` once the branch may be gone (it is deleted after a merge).
        """
        if commit is not None:
            head: str | None = await self._resolve_commit(commit, "commit")
        else:
            head = await self._ref(f"refs/heads/{wt.branch}")
        if head is None:
            raise WorktreeError(f"branch {wt.branch} does not exist; pass the commit")
        return await raw_and_patch(self, wt.base_commit, head)

    async def apply_patch(self, wt: Worktree, patch: bytes) -> bool:
        """Apply a :meth:`diff_against_base` patch to the worktree's files.

        All or nothing: returns False (touching nothing) when it does not apply
        cleanly; an empty patch applies trivially.
        """
        if not patch.strip():
            return True
        await deferred.ready(wt.ready)
        await lazy.materialize_patch_paths(self, wt.path, patch)
        args = ("apply", "--binary", "--whitespace=nowarn")
        check = await self._git(*args, "--check", "-", cwd=wt.path, stdin=patch, check=False)
        if check.rc != 0:
            return False
        return (await self._git(*args, "-", cwd=wt.path, stdin=patch, check=False)).rc == 0

    # -- remove, list, prune -------------------------------------------------------------

    async def remove(self, wt: Worktree) -> bool:
        """Remove a worktree unless it has uncommitted changes; True when it is gone.

        Its branch is deleted too when that loses nothing (merged, or no
        commits beyond the base); otherwise the branch is kept.
        """
        await self.toplevel()
        try:
            await deferred.ready(wt.ready)
        except WorktreeError:
            return True  # the failed checkout removed the worktree and its branch
        async with self._exclusive():
            await self._unlock(wt.path)
            return await self._remove_checkout(wt)

    # -- list, prune ---------------------------------------------------------------
    async def list(self) -> builtins.list[WorktreeStatus]:
        """Every swarmd branch and worktree of the repository, sorted by branch."""
        await self.toplevel()
        return await inventory.statuses(self)

    async def prune(self) -> PruneReport:
        """Remove what holds no work: clean worktrees whose branch is merged or empty.

        Keeps, with the reason: worktrees in use, worktrees with uncommitted
        changes, and branches with unmerged commits. Runs ``git worktree prune``.
        """
        return await inventory.prune(self)
