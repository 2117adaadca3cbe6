"""Git worktree isolation and loss-free merge-back for mutating sub-agents.

Every mutating sub-agent works in its own ``git worktree`` on the branch
``swarmd/<swarm>/<subtask>`` under ``<repo>/.swarmd/worktrees/``. The
``.swarmd/`` folder is hidden from git through ``.git/info/exclude`` so the
user's tracked ``.gitignore`` is never edited.

The package, by concern:

=============  ===============================================================
``model``      ids, outcomes, reports and errors (plain data, no git)
``git``        running git: one isolated subprocess per call; text helpers
``repo``       one repository: queries, worktree bookkeeping, the lock
``refbatch``   refs read by one long-lived git, written in combined transactions
``libgit``     checkout, commit, change lists and clean checks in process (libgit2)
``manager``    :class:`WorktreeManager`: create, commit, patch, merge, remove
``carryover``  continuing in the worktree of an interrupted attempt
``integrate``  merging in memory, a batch at a time, onto the user's branch
``tidy``       removing merged worktrees and their refs without losing work
``trash``      removed worktrees' files, deleted later by a reaper thread
``priority``   the promoted branch of a swarm merges first in its batch
``landed``     waiting until a dependency's commit is on the user's branch
``checkout``   whether and how the user's checkout may be moved
``inventory``  listing and pruning what swarmd left behind
``lazy``       lazy worktrees: when, creating one, writing it whole
``lazyfiles``  a lazy worktree's files as the tools see them
``timing``     per-operation timings for profiling
=============  ===============================================================

The guarantees: the user's uncommitted edits are never touched (merges are
computed in the object store and the checkout is moved the way a branch
switch moves it); a conflict fails only the sub-agent that conflicts and keeps
its branch and worktree; a worktree with uncommitted changes is never removed
and a branch is deleted only once its work is reachable from a local branch or
when it holds none; the tree a swarm ends with does not depend on the order in
which its sub-agents finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swarmd.plugins.runtime.worktree.git import run_git as _git
from swarmd.plugins.runtime.worktree.git import truncate as _truncate
from swarmd.plugins.runtime.worktree.model import (
    BRANCH_PREFIX,
    MAX_CONFLICT_DIFF_BYTES,
    WORKTREES_DIR,
    Conflict,
    DependencyConflict,
    InvalidIdError,
    MergeOutcome,
    MergeReport,
    NotAGitRepository,
    PruneReport,
    Worktree,
    WorktreeError,
    WorktreeStatus,
    validate_id,
)

__all__ = [
    "BRANCH_PREFIX",
    "MAX_CONFLICT_DIFF_BYTES",
    "WORKTREES_DIR",
    "CheckoutPolicy",
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
    "_git",
    "_truncate",
    "is_lazy",
    "materialize_all",
    "validate_id",
]

if TYPE_CHECKING:
    from swarmd.plugins.runtime.worktree.lazy import CheckoutPolicy, is_lazy, materialize_all
    from swarmd.plugins.runtime.worktree.manager import WorktreeManager

#: Loaded on first use: a process that only reads merge ledgers (the
#: orchestrator) or names a worktree never loads the worktree machinery.
_LAZY = {
    "WorktreeManager": "manager",
    "CheckoutPolicy": "lazy",
    "is_lazy": "lazy",
    "materialize_all": "lazy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
