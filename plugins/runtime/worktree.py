"""Git worktree isolation and loss-free merge-back for mutating sub-agents.

Every mutating sub-agent works in its own ``git worktree`` on the branch
``swarmd/<swarm>/<subtask>`` under ``<repo>/.swarmd/worktrees/``. The
``.swarmd/`` folder is hidden from git through ``.git/info/exclude`` so the
user's tracked ``.gitignore`` is never edited.

Deterministic bases
    A worktree starts from the commit the swarm started from plus the commits
    of the subtask's own dependencies, merged in the order given. Merges are
    computed in the object store (``git merge-tree --write-tree`` and
    ``git commit-tree`` with the newest parent's date), so the same inputs
    give the same tree, and the same commit, whatever order siblings finish
    in. Dependencies whose work conflicts make :meth:`WorktreeManager.create`
    fail with :class:`DependencyConflict` naming the files.

Merging without touching the user's work
    ``git merge`` needs a clean checkout, which is why naive merge-back code
    stashes (and loses) the user's edits. swarmd never runs it. Instead:

    1. ``git merge-tree --write-tree HEAD <commit>`` computes the merge in the
       object store. A conflict is reported with each file's diff taken from
       the conflicted tree git wrote (conflict markers included); the user's
       checkout, the branch and the worktree are left exactly as they were.
    2. ``git commit-tree -p HEAD -p <commit>`` makes the --no-ff merge commit.
    3. ``git read-tree -m -u <old HEAD> <merge>`` moves the index and working
       tree the way a branch switch does: staged, unstaged and untracked
       edits are carried along, and git refuses (changing nothing) when they
       overlap files the merge changes. Ignored files, which read-tree would
       overwrite, are checked by swarmd first. A refusal is reported as
       ``failed`` with the overlapping files named.
    4. ``git update-ref <branch> <merge> <old HEAD>`` moves the user's branch,
       guarded by its old value; if the branch moved meanwhile, step 3 is
       undone and the merge reported as ``failed``.

    Once under way, a merge runs to completion even when the caller is
    cancelled (the cancellation is re-raised afterwards). Merges
    (and every other change to the repository's worktree bookkeeping) are
    serialised per repository by an asyncio lock and, across processes on one
    host, by an ``fcntl`` lock on ``.git/swarmd.lock``.

Never losing work
    The sub-agent's work is committed (``git add -A``) before any merge, by
    plumbing, so neither hooks nor commit signing can block it. A worktree
    with uncommitted changes is never removed; a branch is deleted only once
    its work is reachable from a local branch or when it holds none. Worktrees
    are locked (``git worktree lock``) while a sub-agent uses them, so
    ``prune`` never removes a live one; locks of dead processes on this host
    are recognised as stale. Ignored files inside a worktree are not work
    (they are build output by the repository's own rules) and go with it.

Attempts
    A retried or resumed subtask reuses its slot when the earlier worktree holds
    no work; otherwise the earlier one is kept and the new worktree becomes
    ``swarmd/<swarm>/<subtask>@2`` (``@3``...). ``@`` never occurs in an id, so
    attempts cannot collide with other subtasks.

Every git call is an ``asyncio`` subprocess with no shell, its own process
group (killed whole on timeout or cancellation), a timeout,
``GIT_TERMINAL_PROMPT=0`` and ``LC_ALL=C``. Plumbing commands are preferred so
the user's git configuration (diff prefixes, signatures, hooks) cannot change
the results.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import os
import re
import signal
import socket
import time
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from swarmd.v1 import common_pb2

__all__ = [
    "BRANCH_PREFIX",
    "MAX_CONFLICT_DIFF_BYTES",
    "WORKTREES_DIR",
    "Conflict",
    "DependencyConflict",
    "InvalidIdError",
    "MergeOutcome",
    "MergeReport",
    "NotAGitRepository",
    "PruneReport",
    "Worktree",
    "WorktreeError",
    "WorktreeManager",
    "WorktreeStatus",
    "validate_id",
]

BRANCH_PREFIX = "swarmd/"
BASE_REF_PREFIX = "refs/swarmd/bases/"
WORKTREES_DIR = Path(".swarmd") / "worktrees"
EXCLUDE_PATTERN = "/.swarmd/"
MAX_CONFLICT_DIFF_BYTES = 64 * 1024
MAX_ID_LENGTH = 100
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "swarmd",
    "GIT_AUTHOR_EMAIL": "swarmd@localhost",
    "GIT_COMMITTER_NAME": "swarmd",
    "GIT_COMMITTER_EMAIL": "swarmd@localhost",
}
# Variables that would point git at another repository, index or tree.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
)
_ID_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_LOCK_REASON = re.compile(r"swarmd: in use by pid (\d+) on (\S+)")
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or am",
    "BISECT_LOG": "a bisect",
}
_T = TypeVar("_T")


class WorktreeError(Exception):
    """A worktree operation could not be done; the message says why and what to do."""


class InvalidIdError(WorktreeError, ValueError):
    """A swarm or subtask id is not safe to use in a branch name or path."""


class NotAGitRepository(WorktreeError):
    """The path is not inside a git working tree (or the repository has no commit)."""


class DependencyConflict(WorktreeError):
    """The work of a subtask's dependencies conflicts; no base can be built."""

    def __init__(self, message: str, files: Sequence[str]) -> None:
        super().__init__(message)
        self.files = list(files)


def validate_id(kind: str, value: str) -> str:
    """Return ``value`` if it is usable as a ``kind`` id in branch names, else raise.

    Allowed: 1-100 ASCII letters, digits, ``-``, ``_`` and ``.``; no ``..``;
    and, because git ref names forbid them, no leading ``.`` or ``-``, no
    trailing ``.`` and no ``.lock`` suffix.
    """
    if not isinstance(value, str) or not value:
        raise InvalidIdError(f"{kind} id must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(
            f"{kind} id {value[:20]!r}... is longer than {MAX_ID_LENGTH} characters"
        )
    if not _ID_CHARS.fullmatch(value):
        raise InvalidIdError(
            f"{kind} id {value!r} may only contain ASCII letters, digits, '-', '_' and '.'"
        )
    if ".." in value or value[0] in ".-" or value.endswith(".") or value.endswith(".lock"):
        raise InvalidIdError(
            f"{kind} id {value!r} is not a valid git branch component "
            "(no '..', no leading '.' or '-', no trailing '.' or '.lock')"
        )
    return value


class MergeOutcome(StrEnum):
    """What happened to a sub-agent's work; mirrors ``swarmd.v1.MergeOutcome``."""

    NOT_APPLICABLE = "not_applicable"
    NO_CHANGES = "no_changes"
    MERGED = "merged"
    CONFLICTED = "conflicted"
    FAILED = "failed"
    KEPT = "kept"


_OUTCOME_PROTO = {
    MergeOutcome.NOT_APPLICABLE: common_pb2.MERGE_OUTCOME_NOT_APPLICABLE,
    MergeOutcome.NO_CHANGES: common_pb2.MERGE_OUTCOME_NO_CHANGES,
    MergeOutcome.MERGED: common_pb2.MERGE_OUTCOME_MERGED,
    MergeOutcome.CONFLICTED: common_pb2.MERGE_OUTCOME_CONFLICTED,
    MergeOutcome.FAILED: common_pb2.MERGE_OUTCOME_FAILED,
    MergeOutcome.KEPT: common_pb2.MERGE_OUTCOME_KEPT,
}


@dataclass(frozen=True)
class Worktree:
    """A sub-agent's isolated checkout."""

    swarm_id: str
    subtask_id: str
    #: Absolute path of the checkout.
    path: Path
    #: ``swarmd/<swarm>/<subtask>`` (``<subtask>@<attempt>`` from the second attempt on).
    branch: str
    #: The commit the worktree started from: swarm base plus merged dependencies.
    base_commit: str
    #: 1 for the first worktree of a subtask; higher when an earlier one still held work.
    attempt: int = 1


class Conflict(NamedTuple):
    """One conflicting file: its path and its diff (with conflict markers), ≤ 64 KiB."""

    path: str
    diff: str


@dataclass
class MergeReport:
    """The result of bringing a worktree's work back (see ``swarmd.v1.MergeResult``)."""

    outcome: MergeOutcome
    branch: str = ""
    #: Commit on ``branch`` holding everything the sub-agent changed.
    commit: str = ""
    #: Merge commit on the user's branch (``merged`` only).
    merge_commit: str = ""
    conflicts: list[Conflict] = field(default_factory=list)
    #: Files the sub-agent's commit changed relative to its base.
    files_changed: int = 0
    summary: str = ""
    #: The user's branch the work was (to be) merged into.
    target_branch: str = ""
    #: The worktree when it still exists, None once removed.
    worktree_path: Path | None = None

    @classmethod
    def not_applicable(cls, summary: str = "read-only subtask: nothing to merge") -> MergeReport:
        return cls(outcome=MergeOutcome.NOT_APPLICABLE, summary=summary)

    def to_proto(self) -> common_pb2.MergeResult:
        return common_pb2.MergeResult(
            outcome=_OUTCOME_PROTO[self.outcome],
            branch=self.branch,
            commit=self.commit,
            merge_commit=self.merge_commit,
            conflicts=[
                common_pb2.ConflictingFile(path=c.path, diff=c.diff) for c in self.conflicts
            ],
            files_changed=self.files_changed,
            summary=self.summary,
            target_branch=self.target_branch,
        )


@dataclass(frozen=True)
class WorktreeStatus:
    """One swarmd branch and its worktree, as ``swarmd worktrees list`` shows it."""

    swarm_id: str
    subtask_id: str
    attempt: int
    branch: str
    #: Tip of the branch.
    head: str
    #: Recorded base commit, None when unknown.
    base_commit: str | None
    #: The checkout, None when only the branch is left.
    path: Path | None
    #: The checkout is registered but its directory is gone.
    missing: bool
    #: No uncommitted changes (None without a checkout).
    clean: bool | None
    #: The branch tip is reachable from HEAD or from a non-swarmd local branch.
    merged: bool
    #: The branch has commits beyond its base (or its base is unknown).
    has_own_work: bool
    #: ``git worktree lock`` reason, if locked.
    locked_reason: str | None
    #: Locked by a live swarmd process (or by something that is not swarmd).
    in_use: bool


@dataclass
class PruneReport:
    """What ``prune`` removed and what it kept, with the reason for each."""

    removed_worktrees: list[Path] = field(default_factory=list)
    deleted_branches: list[str] = field(default_factory=list)
    #: ``(branch, reason)`` for everything kept.
    kept: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    rc: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace").strip()

    @property
    def error(self) -> str:
        return (self.err or self.out).decode("utf-8", "replace").strip()


@dataclass
class _WtEntry:
    path: Path
    head: str | None
    branch: str | None
    locked: str | None
    prunable: bool


def _git_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env.update(GIT_IDENTITY)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_EDITOR": "true"})
    if extra:
        env.update(extra)
    return env


async def _git(
    cwd: Path,
    *args: str,
    timeout: float,
    check: bool = True,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> _Run:
    """Run one git command; raise :class:`WorktreeError` on failure when ``check``."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=_git_env(env),
            start_new_session=True,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise WorktreeError(f"cannot run git in {cwd}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException as exc:
        # Kill the whole group: hooks and helpers git started must not outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, TimeoutError):
            raise WorktreeError(f"git {args[0]} timed out after {timeout:g}s in {cwd}") from None
        raise
    result = _Run(proc.returncode or 0, out, err)
    if check and result.rc != 0:
        raise WorktreeError(f"git {' '.join(args[:3])} failed in {cwd}: {result.error}")
    return result


async def _finish_even_if_cancelled(coro: Coroutine[Any, Any, _T]) -> _T:
    """Await ``coro`` to its end; a cancellation is re-raised only afterwards.

    Used for the few steps that move the user's index, tree and branch: a
    half-done update is worse than a late cancellation.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


def _split_z(data: bytes) -> list[str]:
    return [os.fsdecode(p) for p in data.split(b"\0") if p]


def _truncate(data: bytes, limit: int = MAX_CONFLICT_DIFF_BYTES) -> str:
    text = data.decode("utf-8", "replace")
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    marker = f"\n[... diff truncated at {limit // 1024} KiB ...]\n"
    return raw[: limit - len(marker.encode())].decode("utf-8", "ignore") + marker


def _names(paths: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _lock_reason() -> str:
    return f"swarmd: in use by pid {os.getpid()} on {socket.gethostname()}"


def _lock_is_live(reason: str | None) -> bool:
    """True when a worktree lock belongs to a running process (or is not ours to judge)."""
    if reason is None:
        return False
    match = _LOCK_REASON.fullmatch(reason.strip())
    if match is None or match.group(2) != socket.gethostname():
        return True
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse_branch(branch: str) -> tuple[str, str, int] | None:
    """``swarmd/<swarm>/<subtask>[@<n>]`` -> (swarm, subtask, attempt)."""
    parts = branch.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != BRANCH_PREFIX:
        return None
    subtask, _, attempt = parts[2].partition("@")
    return parts[1], subtask, int(attempt) if attempt.isdigit() else 1


def _slot(subtask_id: str, attempt: int) -> str:
    return subtask_id if attempt == 1 else f"{subtask_id}@{attempt}"


# One asyncio lock per (event loop, repository): asyncio locks are loop-bound.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


class WorktreeManager:
    """Creates, commits, merges, lists and prunes sub-agent worktrees of one repository."""

    def __init__(
        self, repo: Path | str, *, git_timeout: float = 120.0, lock_timeout: float = 600.0
    ) -> None:
        self.repo = Path(repo)
        self.git_timeout = git_timeout
        self.lock_timeout = lock_timeout
        self._top: Path | None = None
        self._common: Path | None = None

    # -- basics ------------------------------------------------------------------

    @staticmethod
    async def is_git_repo(path: Path | str, *, timeout: float = 30.0) -> bool:
        """True when ``path`` is inside a git working tree."""
        path = Path(path)
        if not path.is_dir():
            return False
        run = await _git(path, "rev-parse", "--is-inside-work-tree", timeout=timeout, check=False)
        return run.rc == 0 and run.text == "true"

    async def toplevel(self) -> Path:
        """The repository's top-level directory (resolved once)."""
        if self._top is None:
            if not self.repo.is_dir():
                raise NotAGitRepository(f"{self.repo} does not exist or is not a directory")
            run = await self._git(
                "rev-parse", "--show-toplevel", "--git-common-dir", cwd=self.repo, check=False
            )
            if run.rc != 0:
                raise NotAGitRepository(
                    f"{self.repo} is not inside a git working tree: {run.error}"
                )
            top, common = run.text.splitlines()
            self._top = Path(top)
            self._common = (self.repo / common).resolve()
        return self._top

    @property
    def worktrees_root(self) -> Path:
        """``<toplevel>/.swarmd/worktrees`` (call :meth:`toplevel` first)."""
        if self._top is None:
            raise WorktreeError("toplevel() has not been awaited yet")
        return self._top / WORKTREES_DIR

    async def head_commit(self) -> str:
        """The commit HEAD points at; the swarm's base when a swarm starts."""
        top = await self.toplevel()
        run = await self._git("rev-parse", "--verify", "-q", "HEAD^{commit}", cwd=top, check=False)
        if run.rc != 0:
            raise NotAGitRepository(f"{top} has no commit yet; make an initial commit first")
        return run.text

    async def tree_hash(self, commit: str) -> str:
        """The git tree id of ``commit`` (the cache keys on the base's tree)."""
        run = await self._git(
            "rev-parse", "--verify", "-q", "--end-of-options", f"{commit}^{{tree}}", check=False
        )
        if run.rc != 0:
            raise WorktreeError(f"{commit!r} is not a commit in {self.repo}")
        return run.text

    async def current_branch(self) -> str | None:
        """The branch checked out in the user's checkout, None when HEAD is detached."""
        run = await self._git("symbolic-ref", "-q", "--short", "HEAD", check=False)
        return run.text if run.rc == 0 else None

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
        without work is replaced.
        """
        validate_id("swarm", swarm_id)
        validate_id("subtask", subtask_id)
        top = await self.toplevel()
        base = await self._resolve_commit(base_commit or await self.head_commit(), "base commit")
        deps = [await self._resolve_commit(c, "dependency commit") for c in dependency_commits]
        async with self._exclusive():
            start = await self._merge_dependencies(base, deps, subtask_id)
            await self._ensure_excluded()
            for attempt in range(1, 1000):
                slot = _slot(subtask_id, attempt)
                branch = f"{BRANCH_PREFIX}{swarm_id}/{slot}"
                path = top / WORKTREES_DIR / swarm_id / slot
                if not await self._claim_slot(branch, path):
                    continue
                await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
                await self._git(
                    "worktree",
                    "add",
                    "-q",
                    "--lock",
                    "--reason",
                    _lock_reason(),
                    "-b",
                    branch,
                    str(path),
                    start,
                )
                await self._git("update-ref", f"{BASE_REF_PREFIX}{swarm_id}/{slot}", start)
                return Worktree(swarm_id, subtask_id, path, branch, start, attempt)
        raise WorktreeError(
            f"too many worktrees kept for subtask {subtask_id}; run swarmd worktrees prune"
        )

    async def _resolve_commit(self, rev: str, what: str) -> str:
        run = await self._git(
            "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        if run.rc != 0:
            raise WorktreeError(f"{what} {rev!r} is not a commit in {self.repo}")
        return run.text

    async def _is_ancestor(self, a: str, b: str) -> bool:
        run = await self._git("merge-base", "--is-ancestor", a, b, check=False)
        if run.rc > 1:
            raise WorktreeError(f"git merge-base failed: {run.error}")
        return run.rc == 0

    async def _merge_dependencies(self, base: str, deps: Sequence[str], subtask_id: str) -> str:
        current = base
        for dep in deps:
            if await self._is_ancestor(dep, current):
                continue
            if await self._is_ancestor(current, dep):
                current = dep
                continue
            tree, conflicts, messages = await self._merge_tree(current, dep)
            if conflicts:
                raise DependencyConflict(
                    f"the dependencies of subtask {subtask_id} conflict: merging {dep[:12]} "
                    f"conflicts in {_names(conflicts)}" + (f" ({messages[0]})" if messages else ""),
                    conflicts,
                )
            # The newest parent's date and a message naming only the inputs make the
            # base commit itself (not only its tree) a function of the inputs.
            assert tree is not None  # check=True raised otherwise
            dates = await self._git(
                "rev-list", "--no-walk", "--no-commit-header", "--format=%ct", current, dep
            )
            stamp = f"@{max(int(d) for d in dates.text.split())} +0000"
            current = (
                await self._git(
                    "commit-tree",
                    "--no-gpg-sign",
                    tree,
                    "-p",
                    current,
                    "-p",
                    dep,
                    "-m",
                    f"swarmd: merge dependency {dep} into a subtask base",
                    env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
                )
            ).text
        return current

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
            if _lock_is_live(entry.locked) or entry.path != path:
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
        await self._git("add", "-A", cwd=wt.path)
        head = (await self._git("rev-parse", "--verify", "HEAD", cwd=wt.path)).text
        staged = await self._git(
            "diff-index", "--cached", "--quiet", "HEAD", cwd=wt.path, check=False
        )
        if staged.rc not in (0, 1):
            raise WorktreeError(f"cannot inspect {wt.path}: {staged.error}")
        if staged.rc == 1:
            tree = (await self._git("write-tree", cwd=wt.path)).text
            body = message.strip() or f"swarmd: work of subtask {wt.subtask_id}"
            text = f"{body}\n\nSwarmd-Swarm: {wt.swarm_id}\nSwarmd-Subtask: {wt.subtask_id}\n"
            new = (
                await self._git(
                    "commit-tree",
                    "--no-gpg-sign",
                    tree,
                    "-p",
                    head,
                    stdin=text.encode(),
                    cwd=wt.path,
                )
            ).text
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
        await self._sync_branch(wt, head)
        return None if head == wt.base_commit else head

    async def _sync_branch(self, wt: Worktree, head: str) -> None:
        """Make sure the worktree's branch holds ``head`` even if the agent moved off it."""
        tip = await self._ref(f"refs/heads/{wt.branch}")
        if tip == head:
            return
        if tip is not None and await self._is_ancestor(tip, head):
            await self._git("update-ref", f"refs/heads/{wt.branch}", head, tip)
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

        ``commit`` None -> ``no_changes`` (worktree and branch removed);
        ``auto_merge`` False -> ``kept`` (branch kept, clean worktree removed);
        otherwise ``merged``, ``conflicted`` (branch and worktree kept, files and
        diffs listed) or ``failed`` (branch and worktree kept, nothing changed).
        """
        top = await self.toplevel()
        report = MergeReport(
            MergeOutcome.NO_CHANGES, branch=wt.branch, commit=commit or "", worktree_path=wt.path
        )
        async with self._exclusive():
            try:
                return await self._merge_prepared(top, wt, commit, report, auto_merge, message)
            except WorktreeError as exc:
                # Raised only before anything moved: the user's checkout is untouched.
                report.outcome = MergeOutcome.FAILED
                report.summary = f"{exc}; branch {wt.branch} kept; nothing was merged"
                return report

    async def _merge_prepared(
        self,
        top: Path,
        wt: Worktree,
        commit: str | None,
        report: MergeReport,
        auto_merge: bool,
        message: str,
    ) -> MergeReport:
        report.target_branch = await self.current_branch() or ""
        await self._unlock(wt.path)
        if commit is None:
            report.summary = f"subtask {wt.subtask_id} changed nothing"
            await self._tidy(wt, report, "it has uncommitted changes")
            return report
        tip = await self._ref(f"refs/heads/{wt.branch}")
        if tip is None or not await self._is_ancestor(commit, tip):
            report.outcome = MergeOutcome.FAILED
            report.summary = f"commit {commit[:12]} is not on branch {wt.branch}; nothing merged"
            return report
        report.files_changed = len(await self._changed_files(wt.base_commit, commit))
        if not auto_merge:
            report.outcome = MergeOutcome.KEPT
            report.summary = (
                f"auto-merge is off: the work of subtask {wt.subtask_id} is on "
                f"branch {wt.branch} ({commit[:12]})"
            )
            await self._tidy(wt, report, "it has changes made after the commit", keep_branch=True)
            return report
        return await _finish_even_if_cancelled(self._merge_locked(top, wt, commit, report, message))

    async def _merge_locked(
        self, top: Path, wt: Worktree, commit: str, report: MergeReport, message: str
    ) -> MergeReport:
        kept = f"branch {wt.branch} kept with the work ({commit[:12]})"

        def failed(why: str) -> MergeReport:
            report.outcome = MergeOutcome.FAILED
            report.summary = f"{why}; {kept}; nothing was changed"
            return report

        target = report.target_branch
        if not target:
            return failed(
                f"HEAD is detached in {top}: check out a branch, then run `git merge {wt.branch}`"
            )
        busy = await self._operation_in_progress(top)
        if busy:
            return failed(
                f"{busy} is in progress in {top}: finish or abort it, then run "
                f"`git merge {wt.branch}`"
            )
        if (await self._git("ls-files", "-u", "-z", cwd=top)).out:
            return failed(f"{top} has unresolved conflicts in its index")
        old = (await self._git("rev-parse", "--verify", "HEAD^{commit}", cwd=top)).text
        if await self._is_ancestor(commit, old):
            report.outcome = MergeOutcome.MERGED
            report.summary = f"{wt.branch} was already merged into {target}"
            await self._tidy(wt, report, "it has changes made after the commit")
            return report
        tree, conflicts, messages = await self._merge_tree(old, commit, check=False)
        if tree is None:
            return failed(f"git could not merge {wt.branch} into {target}: {messages[0]}")
        if conflicts:
            for path in conflicts:
                diff = await self._git(
                    "--literal-pathspecs",
                    "diff-tree",
                    "-p",
                    "--no-ext-diff",
                    "--no-textconv",
                    old,
                    tree,
                    "--",
                    path,
                )
                report.conflicts.append(Conflict(path, _truncate(diff.out)))
            report.outcome = MergeOutcome.CONFLICTED
            report.summary = (
                f"merging {wt.branch} into {target} conflicts in "
                f"{_names(conflicts)}; {kept}; resolve with `git merge {wt.branch}`"
            )
            return report
        body = (
            f"Merge {wt.branch} into {target}\n\n"
            f"Work of subtask {wt.subtask_id} in swarm {wt.swarm_id}.\n"
        )
        if message.strip():
            body += f"\n{message.strip()}\n"
        body += f"\nSwarmd-Swarm: {wt.swarm_id}\nSwarmd-Subtask: {wt.subtask_id}\n"
        merge = (
            await self._git(
                "commit-tree",
                "--no-gpg-sign",
                tree,
                "-p",
                old,
                "-p",
                commit,
                stdin=body.encode(),
                cwd=top,
            )
        ).text
        blocked = await self._ignored_files_in_the_way(top, old, merge)
        if blocked:
            return failed(
                f"files the merge adds already exist untracked or ignored in {top}: "
                f"{_names(blocked)}; move them away, then merge again"
            )
        await self._git("update-index", "-q", "--refresh", cwd=top, check=False)
        moved = await self._git("read-tree", "-m", "-u", old, merge, cwd=top, check=False)
        if moved.rc != 0:
            overlap = await self._local_changes_overlapping(top, old, merge)
            detail = _names(overlap) if overlap else moved.error
            return failed(
                f"your uncommitted changes in {top} overlap files the merge of "
                f"{wt.branch} changes ({detail}); commit or stash them, then run "
                f"`git merge {wt.branch}`"
            )
        ref = f"refs/heads/{target}"
        try:
            guard = await self._git(
                "update-ref", "-m", f"swarmd: merge {wt.branch}", ref, merge, old, check=False
            )
            landed = guard.rc == 0
        except WorktreeError:  # timed out: the ref itself says whether it moved
            landed = await self._ref(ref) == merge
        if not landed:
            back = await self._git("read-tree", "-m", "-u", merge, old, cwd=top, check=False)
            if back.rc != 0:
                report.outcome = MergeOutcome.FAILED
                report.summary = (
                    f"{target} moved during the merge and restoring the checkout "
                    f"failed ({back.error}); run `git read-tree -m -u {merge} "
                    f"{old}` to restore it; {kept}"
                )
                return report
            return failed(f"{target} moved while {wt.branch} was being merged; merge again")
        report.outcome = MergeOutcome.MERGED
        report.merge_commit = merge
        report.summary = f"merged {wt.branch} into {target} ({report.files_changed} files)"
        await self._tidy(wt, report, "it has changes made after the commit")
        return report

    async def _tidy(
        self, wt: Worktree, report: MergeReport, why_kept: str, *, keep_branch: bool = False
    ) -> None:
        """Remove the worktree once its work is safe; a failure here only adds to the summary."""
        try:
            removed = await self._remove_checkout(wt, keep_branch=keep_branch)
        except WorktreeError as exc:
            report.summary += f"; worktree {wt.path} kept: {exc}"
            return
        if removed:
            report.worktree_path = None
        else:
            report.summary += f"; worktree {wt.path} kept: {why_kept}"

    async def _merge_tree(
        self, ours: str, theirs: str, *, check: bool = True
    ) -> tuple[str | None, builtins.list[str], builtins.list[str]]:
        """Merge two commits in the object store: (tree, conflicted paths, messages).

        The tree is None when git could not merge at all (messages hold why).
        """
        run = await self._git(
            "merge-tree", "--write-tree", "-z", "--name-only", ours, theirs, check=False
        )
        if run.rc not in (0, 1):
            if check:
                raise WorktreeError(f"git merge-tree failed: {run.error}")
            return None, [], [run.error]
        fields = run.out.split(b"\0")
        tree, conflicts, messages, i = fields[0].decode(), [], [], 1
        while run.rc == 1 and i < len(fields) and fields[i]:
            conflicts.append(os.fsdecode(fields[i]))
            i += 1
        i += 1
        # Messages: <path count> NUL <paths> NUL... <type> NUL <message> NUL
        while i < len(fields) and fields[i].isdigit():
            n = int(fields[i])
            if i + n + 2 < len(fields):
                messages.append(fields[i + n + 2].decode("utf-8", "replace").strip())
            i += n + 3
        return tree, conflicts, [m for m in messages if m.startswith("CONFLICT")] or messages

    async def _operation_in_progress(self, top: Path) -> str | None:
        args = [a for name in _IN_PROGRESS for a in ("--git-path", name)]
        paths = (await self._git("rev-parse", *args, cwd=top)).text.splitlines()
        for name, rel in zip(_IN_PROGRESS, paths, strict=True):
            if await asyncio.to_thread(os.path.lexists, top / rel):
                return _IN_PROGRESS[name]
        return None

    async def _ignored_files_in_the_way(
        self, top: Path, old: str, merge: str
    ) -> builtins.list[str]:
        """Paths the merge adds where an untracked (or ignored) file or folder sits.

        read-tree protects untracked files but overwrites ignored ones.
        """
        added = _split_z(
            (
                await self._git(
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
        listed = await self._git("--literal-pathspecs", "ls-files", "-z", "--", *candidates)
        tracked = set(_split_z(listed.out))
        return [c for c in candidates if c not in tracked]

    async def _local_changes_overlapping(
        self, top: Path, old: str, merge: str
    ) -> builtins.list[str]:
        changed: set[str] = set(await self._changed_files(old, merge))
        local = await self._git("diff-index", "--name-only", "-z", old, check=False)
        untracked = await self._git("ls-files", "-o", "-z", "--exclude-standard", check=False)
        return sorted(changed & set(_split_z(local.out) + _split_z(untracked.out)))

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
        run = await self._git(
            "diff-tree",
            "-p",
            "--binary",
            "--full-index",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            wt.base_commit,
            head,
        )
        return run.out

    async def apply_patch(self, wt: Worktree, patch: bytes) -> bool:
        """Apply a :meth:`diff_against_base` patch to the worktree's files.

        All or nothing: returns False (touching nothing) when it does not apply
        cleanly; an empty patch applies trivially.
        """
        if not patch.strip():
            return True
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
        async with self._exclusive():
            await self._unlock(wt.path)
            return await self._remove_checkout(wt)

    async def list(self) -> builtins.list[WorktreeStatus]:
        """Every swarmd branch and worktree of the repository, sorted by branch."""
        await self.toplevel()
        return await self._statuses()

    async def prune(self) -> PruneReport:
        """Remove what holds no work: clean worktrees whose branch is merged or empty.

        Keeps, with the reason: worktrees in use, worktrees with uncommitted
        changes, and branches with unmerged commits. Runs ``git worktree prune``.
        """
        top = await self.toplevel()
        report = PruneReport()
        async with self._exclusive():
            await self._git("worktree", "prune", cwd=top)
            for st in await self._statuses():
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
                    entry = next(
                        (e for e in await self._worktree_entries() if e.path == st.path), None
                    )
                    if entry is not None and not await self._drop_checkout(entry):
                        report.kept.append((st.branch, f"git refused to remove {st.path}"))
                        continue
                    report.removed_worktrees.append(st.path)
                await self._delete_branch(st.branch)
                report.deleted_branches.append(st.branch)
        return report

    async def _statuses(self) -> builtins.list[WorktreeStatus]:
        top = await self.toplevel()
        refs = await self._git(
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
            e.branch.removeprefix("refs/heads/"): e
            for e in await self._worktree_entries()
            if e.branch
        }
        result = []
        for branch, tip in sorted(tips.items()):
            parsed = _parse_branch(branch)
            if parsed is None:
                continue
            entry = entries.get(branch)
            missing = entry is not None and (entry.prunable or not entry.path.exists())
            clean: bool | None = None
            if entry is not None and not missing:
                try:
                    clean = await self._is_clean(entry.path)
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
                    merged=await self._is_merged(tip),
                    has_own_work=tip != base,
                    locked_reason=entry.locked if entry else None,
                    in_use=_lock_is_live(entry.locked) if entry else False,
                )
            )
        return result

    # -- helpers -------------------------------------------------------------------

    async def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> _Run:
        where = cwd or self._top or self.repo
        return await _git(where, *args, timeout=self.git_timeout, check=check, stdin=stdin, env=env)

    async def _ref(self, ref: str) -> str | None:
        run = await self._git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return run.text if run.rc == 0 else None

    async def _changed_files(self, a: str, b: str) -> builtins.list[str]:
        return _split_z(
            (await self._git("diff-tree", "-r", "--name-only", "-z", "--no-renames", a, b)).out
        )

    async def _is_clean(self, path: Path) -> bool:
        run = await self._git(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
            cwd=path,
            check=False,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
        if run.rc != 0:
            raise WorktreeError(f"cannot tell whether {path} is clean: {run.error}")
        return not run.out

    async def _is_merged(self, tip: str) -> bool:
        """True when ``tip`` is reachable from HEAD or a local branch outside swarmd/."""
        if await self._ref("HEAD") and await self._is_ancestor(tip, "HEAD"):
            return True
        run = await self._git(
            "for-each-ref", f"--contains={tip}", "--format=%(refname)", "refs/heads/"
        )
        return any(not r.startswith(f"refs/heads/{BRANCH_PREFIX}") for r in run.text.split())

    async def _has_unmerged_work(self, branch: str, tip: str) -> bool:
        base = await self._ref(f"{BASE_REF_PREFIX}{branch.removeprefix(BRANCH_PREFIX)}")
        return tip != base and not await self._is_merged(tip)

    async def _worktree_entries(self) -> builtins.list[_WtEntry]:
        run = await self._git("worktree", "list", "--porcelain", "-z")
        entries: list[_WtEntry] = []
        for block in run.out.split(b"\0\0"):
            attrs: dict[str, str] = {}
            for item in block.split(b"\0"):
                key, _, value = os.fsdecode(item).partition(" ")
                if key:
                    attrs[key] = value
            if "worktree" in attrs:
                entries.append(
                    _WtEntry(
                        Path(attrs["worktree"]),
                        attrs.get("HEAD"),
                        attrs.get("branch"),
                        attrs.get("locked"),
                        "prunable" in attrs,
                    )
                )
        return entries

    async def _unlock(self, path: Path) -> None:
        entry = next((e for e in await self._worktree_entries() if e.path == path), None)
        if entry is not None and entry.locked is not None:
            await self._git("worktree", "unlock", str(path), check=False)

    async def _drop_checkout(self, entry: _WtEntry) -> bool:
        """Remove a registered checkout (unlocking it); git itself refuses a dirty one."""
        if entry.locked is not None:
            await self._git("worktree", "unlock", str(entry.path), check=False)
        if entry.prunable or not entry.path.exists():
            await self._git("worktree", "prune")
            return True
        run = await self._git("worktree", "remove", str(entry.path), check=False)
        if run.rc != 0:
            return False
        with contextlib.suppress(OSError):
            await asyncio.to_thread(entry.path.parent.rmdir)  # the swarm folder, once empty
        return True

    async def _remove_checkout(self, wt: Worktree, *, keep_branch: bool = False) -> bool:
        """Remove ``wt`` if clean; then delete its branch if that loses nothing."""
        entry = next((e for e in await self._worktree_entries() if e.path == wt.path), None)
        if entry is not None:
            if not entry.prunable and entry.path.exists() and not await self._is_clean(wt.path):
                return False
            if not await self._drop_checkout(entry):
                return False
        tip = await self._ref(f"refs/heads/{wt.branch}")
        if (
            not keep_branch
            and tip is not None
            and not await self._has_unmerged_work(wt.branch, tip)
        ):
            await self._delete_branch(wt.branch)
        return True

    async def _delete_branch(self, branch: str) -> None:
        await self._git("branch", "-q", "-D", branch, check=False)
        await self._git(
            "update-ref",
            "-d",
            f"{BASE_REF_PREFIX}{branch.removeprefix(BRANCH_PREFIX)}",
            check=False,
        )

    async def exclude_swarmd_dir(self) -> None:
        """Hide ``.swarmd/`` (worktrees, the embedded database) from ``git status``."""
        await self.toplevel()
        await self._ensure_excluded()

    async def _ensure_excluded(self) -> None:
        """Hide ``.swarmd/`` from git via ``info/exclude`` (never the tracked .gitignore)."""
        assert self._common is not None
        exclude = self._common / "info" / "exclude"

        def update() -> None:
            exclude.parent.mkdir(parents=True, exist_ok=True)
            text = exclude.read_text() if exclude.exists() else ""
            if EXCLUDE_PATTERN not in text.split("\n"):
                sep = "" if not text or text.endswith("\n") else "\n"
                with exclude.open("a") as fh:
                    fh.write(f"{sep}# swarmd worktrees\n{EXCLUDE_PATTERN}\n")

        await asyncio.to_thread(update)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Serialise changes to this repository: in this process, then across processes."""
        top = await self.toplevel()
        assert self._common is not None
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(str(top), asyncio.Lock()):
            fd = await asyncio.to_thread(
                os.open, self._common / "swarmd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            try:
                deadline = time.monotonic() + self.lock_timeout
                delay = 0.01
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise WorktreeError(
                                f"another swarmd process has held {self._common / 'swarmd.lock'} "
                                f"for over {self.lock_timeout:g}s"
                            ) from None
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 0.25)
                yield
            finally:
                os.close(fd)  # closing releases the flock
