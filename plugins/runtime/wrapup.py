"""Bringing a sub-agent's work back, or leaving it safely in place.

After the agent loop (or a cache hit), :func:`wrap_up` decides what happens
to the worktree: a completed attempt is committed (announced at once with a
``WorkCommitted`` event, so dependents may start from the commit), its patch
attached and merged back (a conflicted or failed merge makes the result
unsuccessful); a failed one is unlocked for a retry to reuse (kept when it
holds work); a completed one that changed no tracked file but wrote files git
ignores is kept, with a warning naming them (or, with
``worktree.commit_ignored``, those files are committed and merged like any
other work); a cancelled one is kept as it is. A subtask started from
dependencies whose merges had not landed (``merge_pending``) waits for them
before merging; a cancel during that wait stops it with the work committed
on its branch. A speculative variant merges only when the orchestrator says
it won its race (:mod:`.speculative`); otherwise its work stays committed on
its branch. A cancel arriving during the merge itself does not undo it. :class:`Finish` collects the pieces of the
result as the attempt goes; :class:`CancelToken` tells a cancel made on
purpose (a CANCELLED result) from the host shutting down (propagated).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmd.plugins.runtime import ignored
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.loop import LoopOutcome, OutcomeKind
from swarmd.plugins.runtime.speculative import VariantClaim, keep_unmerged
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["MAX_PATCH_BYTES", "STATUS", "CancelToken", "Finish", "cancelled_outcome", "uncancel", "wrap_up"]

log = logging.getLogger(__name__)

MAX_PATCH_BYTES = 8 * 1024 * 1024


class CancelToken:
    """Set by whoever cancels an attempt on purpose, before cancelling its task.

    Only a cancellation with the token set becomes a CANCELLED result;
    any other (the host shutting down) propagates.
    """

    def __init__(self) -> None:
        self.reason = ""
        self.requested = False

    def request(self, reason: str = "") -> None:
        self.requested = True
        self.reason = reason or "cancelled"


@dataclass
class Finish:
    """The pieces of a result assembled as the attempt goes."""

    outcome: LoopOutcome
    status: common_pb2.SubTaskStatus = common_pb2.SUB_TASK_STATUS_FAILED
    merge: common_pb2.MergeResult = field(default_factory=common_pb2.MergeResult)
    worktree_path: str = ""
    artifacts: list[common_pb2.SwarmArtifact] = field(default_factory=list)
    cache_key: str = ""
    base_tree: str = ""
    cached: bool = False
    warnings: list[common_pb2.SwarmWarning] = field(default_factory=list)


STATUS = {
    OutcomeKind.COMPLETED: common_pb2.SUB_TASK_STATUS_COMPLETED,
    OutcomeKind.MAX_STEPS: common_pb2.SUB_TASK_STATUS_FAILED,
    OutcomeKind.TIMED_OUT: common_pb2.SUB_TASK_STATUS_TIMED_OUT,
    OutcomeKind.FAILED: common_pb2.SUB_TASK_STATUS_FAILED,
    OutcomeKind.BUDGET_EXHAUSTED: common_pb2.SUB_TASK_STATUS_FAILED,
    OutcomeKind.CANCELLED: common_pb2.SUB_TASK_STATUS_CANCELLED,
}


def uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def cancelled_outcome(cancel: CancelToken) -> LoopOutcome:
    return LoopOutcome(
        OutcomeKind.CANCELLED, error=f"Sub-agent cancelled: {cancel.reason}", failure_kind=common_pb2.FAILURE_KIND_CANCELLED
    )


async def wrap_up(
    request: executor_pb2.ExecuteSubTaskRequest,
    manager: Any,
    worktree: Any,
    outcome: LoopOutcome,
    cancel: CancelToken,
    events: EventEmitter | None = None,
    *,
    commit_ignored: bool = False,
    claim: VariantClaim | None = None,
) -> Finish:
    """Bring the work back (success) or leave it safely in place (anything else).

    ``commit_ignored``: commit files git ignores when they are all the
    sub-agent wrote (otherwise they are kept in the worktree, with a warning).
    ``claim``: a speculative variant's, asked once the work is committed;
    only a variant that won merges (see :mod:`.speculative`).
    """
    finish = Finish(outcome, status=STATUS[outcome.kind])
    landing = _Landing()
    if worktree is None:
        finish.merge = common_pb2.MergeResult(
            outcome=common_pb2.MERGE_OUTCOME_NOT_APPLICABLE,
            summary="read-only subtask: nothing to merge"
            if request.subtask.read_only
            else "worktrees are off: changes were made in the repository directly",
        )
        return finish
    finish.worktree_path = str(worktree.path)
    try:
        if outcome.kind is OutcomeKind.COMPLETED:
            # The agent finished: a cancel arriving now does not undo the work,
            # so the merge is allowed to complete and its result reported.
            merging = asyncio.ensure_future(
                merge_back(request, manager, worktree, finish, events, landing, commit_ignored, claim)
            )
            try:
                await asyncio.shield(merging)
            except asyncio.CancelledError:
                if not cancel.requested:
                    merging.cancel()
                    raise
                uncancel()
                # Before the merge began (waiting for its dependencies' merges)
                # a cancel stops it: the work stays committed on its branch.
                landing.cancelled = True
                if landing.waiting:
                    merging.cancel()
                await merging
        elif outcome.kind is not OutcomeKind.CANCELLED:
            # Not merged: unlock it so a retry can reuse it; it stays when it holds work.
            # (A cancelled attempt's worktree is kept as it is.)
            removed = await manager.remove(worktree)
            finish.worktree_path = "" if removed else str(worktree.path)
    except asyncio.CancelledError:
        if not cancel.requested:
            raise
        uncancel()
        if finish.outcome.kind is not OutcomeKind.CANCELLED:
            finish.outcome.kind = OutcomeKind.CANCELLED
            finish.outcome.error = f"Sub-agent cancelled: {cancel.reason}"
            finish.outcome.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
            finish.status = common_pb2.SUB_TASK_STATUS_CANCELLED
    except Exception as exc:
        log.exception("bringing back the work of %s failed", request.subtask.id)
        finish.outcome.kind = OutcomeKind.FAILED
        finish.outcome.error = f"Bringing back the work failed: {exc}; worktree {worktree.path} kept"
        finish.outcome.failure_kind = common_pb2.FAILURE_KIND_PERMANENT
        finish.status = common_pb2.SUB_TASK_STATUS_FAILED
        finish.worktree_path = str(worktree.path)
    return finish


@dataclass
class _Landing:
    """A cancel made on purpose stops the merge only while it waits for its dependencies."""

    cancelled: bool = False
    waiting: bool = False


async def merge_back(
    request: executor_pb2.ExecuteSubTaskRequest,
    manager: Any,
    worktree: Any,
    finish: Finish,
    events: EventEmitter | None = None,
    landing: _Landing | None = None,
    commit_ignored: bool = False,
    claim: VariantClaim | None = None,
) -> None:
    subtask = request.subtask
    title = (subtask.instruction.strip().splitlines() or [""])[0]
    if len(title) > 72:
        title = title[:72].rsplit(" ", 1)[0] + "..."
    message = f"{subtask.name or subtask.id}: {title}".strip()
    # Whether an earlier attempt's work already landed is looked up while the commit is made:
    # both stand between the agent's last answer and its dependents' start.
    looking = (
        asyncio.ensure_future(manager.landed_work(worktree))
        if events is not None and hasattr(manager, "landed_work")
        else None
    )
    try:
        commit = await manager.commit(worktree, message)
        if commit is None:
            timeout = float(getattr(manager, "git_timeout", 60.0))
            left = await ignored.ignored_paths(Path(worktree.path), timeout=timeout)
            if left and commit_ignored:
                await ignored.force_add(Path(worktree.path), left, timeout=timeout)
                commit = await manager.commit(worktree, message)
            elif left:
                await _keep_ignored(request, worktree, finish, left, timeout)
                return
        if claim is not None:
            verdict = await claim(commit or "", str(worktree.branch))
            if not verdict.won:  # another variant won, or this one's checks failed
                keep_unmerged(finish, worktree, commit, verdict)
                return
        if events is not None:
            # Dependents may start from this commit now, before the merge lands; or from
            # the earlier attempt's, when that one landed before its process died (this
            # attempt's merge then finds it and is not merged again).
            landed = await looking if commit and looking is not None else None
            events.work_committed(
                commit=landed or commit or "", branch=worktree.branch, output=finish.outcome.output, attempt=request.attempt or 1
            )
    finally:
        if looking is not None and not looking.done():
            looking.cancel()
        elif looking is not None and not looking.cancelled():
            looking.exception()  # retrieved here when it was not awaited

    # The patch (an artifact) is written while the merge runs, not before it.
    patching = asyncio.ensure_future(manager.diff_against_base(worktree, commit)) if commit else None
    try:
        await _land(request, manager, worktree, commit, finish, landing)
    finally:
        if patching is not None:
            await _attach_patch(patching, finish, subtask.id)


async def _attach_patch(patching: asyncio.Future[bytes], finish: Finish, subtask_id: str) -> None:
    """Add the committed work's patch to the artifacts (when it fits); a failure only loses the artifact."""
    try:
        patch = await patching
    except asyncio.CancelledError:
        patching.cancel()
        raise
    except Exception:
        log.exception("cannot compute the patch of %s", subtask_id)
        return
    if patch and len(patch) <= MAX_PATCH_BYTES:
        finish.artifacts.append(
            common_pb2.SwarmArtifact(
                artifact_type="patch",
                name=f"{subtask_id}.patch",
                content=patch,
                source_subagent=subtask_id,
                mime_type="text/x-diff",
            )
        )


async def _land(
    request: executor_pb2.ExecuteSubTaskRequest,
    manager: Any,
    worktree: Any,
    commit: str | None,
    finish: Finish,
    landing: _Landing | None,
) -> None:
    """Merge the committed work (after the dependencies it started from landed)."""
    pending = [d.commit for d in request.dependencies if d.merge_pending and d.commit]
    if pending and request.workspace.auto_merge and hasattr(manager, "wait_landed"):
        # Started from dependencies not merged yet: merge only on top of them.
        if landing is not None:
            if landing.cancelled:
                raise asyncio.CancelledError
            landing.waiting = True
        await manager.wait_landed(pending)
        if landing is not None:
            landing.waiting = False
    report = await manager.merge(worktree, commit, auto_merge=request.workspace.auto_merge)
    finish.merge = report.to_proto()
    path = getattr(report, "worktree_path", worktree.path)
    finish.worktree_path = str(path) if path else ""
    outcome = str(getattr(report.outcome, "value", report.outcome))
    if outcome in ("conflicted", "failed"):
        files = ", ".join(c.path for c in report.conflicts)
        what = f"Merge conflicted in {files}" if outcome == "conflicted" else "Merge failed"
        finish.outcome.kind = OutcomeKind.FAILED
        finish.outcome.error = f"{what}: {report.summary}"
        finish.outcome.failure_kind = common_pb2.FAILURE_KIND_PERMANENT
        finish.status = common_pb2.SUB_TASK_STATUS_FAILED


async def _keep_ignored(
    request: executor_pb2.ExecuteSubTaskRequest, worktree: Any, finish: Finish, paths: list[str], timeout: float
) -> None:
    """Nothing to commit but ignored files: keep the worktree and say so, merge nothing."""
    path = Path(worktree.path)
    text = ignored.describe(request.subtask.id, paths, path)
    await ignored.keep_worktree(path, request.subtask.id, timeout=timeout)
    finish.merge = common_pb2.MergeResult(
        outcome=common_pb2.MERGE_OUTCOME_NO_CHANGES, branch=str(worktree.branch), summary=text
    )
    finish.worktree_path = str(path)
    finish.warnings.append(common_pb2.SwarmWarning(code=ignored.IGNORED_CODE, message=text, subtask_id=request.subtask.id))
