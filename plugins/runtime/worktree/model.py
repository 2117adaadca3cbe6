"""The vocabulary of worktrees and merges: ids, outcomes, reports, errors.

Everything here is plain data with no git in it, so executors on other hosts
(and the CLI) can name a :class:`Worktree` or read a :class:`MergeReport`
without running anything.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from swarmd.v1 import common_pb2

BRANCH_PREFIX = "swarmd/"
BASE_REF_PREFIX = "refs/swarmd/bases/"
WORKTREES_DIR = Path(".swarmd") / "worktrees"
#: Where removed worktrees wait to be deleted (:mod:`.trash`).
TRASH_DIR = Path(".swarmd") / "trash"
EXCLUDE_PATTERN = "/.swarmd/"
MAX_CONFLICT_DIFF_BYTES = 64 * 1024
MAX_ID_LENGTH = 100
_ID_CHARS = re.compile(r"[A-Za-z0-9._-]+")


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
    #: What an interrupted earlier attempt left in this worktree, which this one
    #: continues in (``git status`` and a diffstat); "" for a fresh worktree.
    carried_over: str = ""
    #: Done once the worktree's files are all written, when they are written
    #: in the background (see :mod:`.deferred`); None when they already are.
    ready: asyncio.Future[None] | None = field(default=None, compare=False, repr=False)


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
    #: A lazy checkout: files not used yet are only in the index (see ``lazy``).
    lazy: bool = False


@dataclass
class PruneReport:
    """What ``prune`` removed and what it kept, with the reason for each."""

    removed_worktrees: list[Path] = field(default_factory=list)
    deleted_branches: list[str] = field(default_factory=list)
    #: ``(branch, reason)`` for everything kept.
    kept: list[tuple[str, str]] = field(default_factory=list)
