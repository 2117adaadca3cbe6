"""What the repository says about a swarm: the merges already on the branch.

Every merge a sub-agent's work lands with carries trailers naming it (see
:mod:`swarmd.plugins.runtime.worktree.ledger`), so the branch itself records
which subtasks finished, whatever the result store holds. When a swarm is resumed (its orchestrator crashed, or the store
was down and the orchestrator stopped before it could save), a subtask that
the store does not show finished but whose merge is on the branch is
*completed from the repository*: it is not run (and merged) a second time,
and it is never reported FAILED. Its result text was not recorded; the
result says so, with the merge commit.
"""

from __future__ import annotations

import asyncio
import logging
import os

from swarmd.plugins.runtime.worktree import ledger
from swarmd.plugins.runtime.worktree.ledger import MergedWork
from swarmd.services.orchestrator.speculation.variants import settle_by_merge, subtask_of
from swarmd.v1 import common_pb2

__all__ = [
    "MergedWork",
    "complete_from_merge",
    "merged_result",
    "merged_subtasks",
    "merges_expected",
]

log = logging.getLogger(__name__)

_TIMEOUT_SECS = 30.0


async def _git(repo: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    proc = await asyncio.create_subprocess_exec(
        "git", "-C", repo, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )
    try:
        async with asyncio.timeout(_TIMEOUT_SECS):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 1, ""
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def merged_subtasks(repo_path: str, swarm_id: str) -> dict[str, MergedWork]:
    """Subtask id -> its merge on the repository's current branch (the first
    one, oldest first, when there are several); {} when the repository cannot
    be read."""
    if not repo_path or not os.path.isdir(repo_path):
        return {}
    code, out = await _git(repo_path, *ledger.log_args([swarm_id], "HEAD"))
    if code != 0:
        return {}
    merged: dict[str, MergedWork] = {}
    for (_, sid), work in ledger.parse_log(out, [swarm_id]).items():
        merged[sid] = work
        merged.setdefault(subtask_of(sid), work)  # a speculative subtask landed as its winning variant
    return merged


def merged_result(
    sid: str, work: MergedWork, base: common_pb2.SubTaskResult | None = None
) -> common_pb2.SubTaskResult:
    """A COMPLETED result for subtask ``sid`` from its merge on the branch
    (keeping the figures of ``base``, the result that was reported, if any)."""
    result = common_pb2.SubTaskResult()
    if base is not None:
        result.CopyFrom(base)
    result.subtask_id = sid
    result.success = True
    result.status = common_pb2.SUB_TASK_STATUS_COMPLETED
    result.failure_kind = common_pb2.FAILURE_KIND_UNSPECIFIED
    result.error = ""
    result.result = result.result or (
        f"(its work is merge {work.merge_commit[:12]} on the branch, found there after "
        "the orchestrator lost track of it; the result text was not recorded)"
    )
    merge = result.merge
    merge.outcome = common_pb2.MERGE_OUTCOME_MERGED
    merge.merge_commit = work.merge_commit
    merge.commit = work.commit
    merge.branch = merge.branch or work.branch
    merge.summary = f"merged as {work.merge_commit[:12]} (found on the branch)"
    del merge.conflicts[:]
    return result


def complete_from_merge(state: common_pb2.SubTaskState, work: MergedWork) -> None:
    """Mark ``state`` COMPLETED from its merge on the branch."""
    state.result.CopyFrom(merged_result(state.subtask.id, work, state.result))
    state.result.subagent_id = state.result.subagent_id or state.agent_name
    state.status = common_pb2.SUB_TASK_STATUS_COMPLETED
    state.status_reason = "completed: its merge is on the branch"
    settle_by_merge(state, work.branch, work.commit)
    state.current_tool = ""
    if not state.HasField("finished_at"):
        state.finished_at.GetCurrentTime()


def merges_expected(config: common_pb2.SwarmConfig, subtask: common_pb2.SubTask) -> bool:
    """Whether this subtask's work lands as a merge commit at all."""
    return config.worktree_enabled and config.auto_merge and not subtask.read_only
