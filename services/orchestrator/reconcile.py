"""What the repository says about a swarm: the merges already on the branch.

Every merge a sub-agent's work lands with carries trailers naming it::

    Swarmd-Swarm: <swarm id>
    Swarmd-Subtask: <subtask id>

so the branch itself records which subtasks finished, whatever the result
store holds. When a swarm is resumed (its orchestrator crashed, or the store
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

from swarmd.v1 import common_pb2

__all__ = [
    "MergedWork",
    "complete_from_merge",
    "merged_result",
    "merged_subtasks",
    "merges_expected",
]

log = logging.getLogger(__name__)

_SWARM_TRAILER = "Swarmd-Swarm:"
_SUBTASK_TRAILER = "Swarmd-Subtask:"
_TIMEOUT_SECS = 30.0


class MergedWork:
    """One merge of a subtask's work found on the branch."""

    def __init__(self, merge_commit: str, commit: str, branch: str) -> None:
        self.merge_commit = merge_commit
        self.commit = commit
        self.branch = branch


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
    code, out = await _git(
        repo_path, "log", "--merges", "--reverse", "--fixed-strings",
        f"--grep={_SWARM_TRAILER} {swarm_id}", "--format=%H %P%x00%B%x1e", "HEAD",
    )
    if code != 0:
        return {}
    found: dict[str, MergedWork] = {}
    for record in out.split("\x1e"):
        head, _, body = record.strip().partition("\x00")
        parents = head.split()
        if len(parents) < 3:
            continue
        trailers = dict(
            line.split(":", 1) for line in body.splitlines() if line.startswith("Swarmd-")
        )
        if trailers.get(_SWARM_TRAILER[:-1], "").strip() != swarm_id:
            continue
        sid = trailers.get(_SUBTASK_TRAILER[:-1], "").strip()
        if sid and sid not in found:
            branch = body.splitlines()[0].removeprefix("Merge ").split(" into ")[0]
            found[sid] = MergedWork(parents[0], parents[2], branch)
    return found


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
    state.current_tool = ""
    if not state.HasField("finished_at"):
        state.finished_at.GetCurrentTime()


def merges_expected(config: common_pb2.SwarmConfig, subtask: common_pb2.SubTask) -> bool:
    """Whether this subtask's work lands as a merge commit at all."""
    return config.worktree_enabled and config.auto_merge and not subtask.read_only
