"""Bringing a pod's commits back into the user's repository.

The pod built its worktree with the same :class:`~swarmd.plugins.runtime.worktree.WorktreeManager`
from the same inputs (the swarm's base commit and the dependencies' commits),
so its base commit is the very commit the executor's own worktree starts
from. The executor fetches the returned bundle, fast-forwards a local
worktree to the pod's commit and hands it to the same
:meth:`~swarmd.plugins.runtime.worktree.WorktreeManager.merge` as local
sub-agents: nothing lost, conflicts reported with their files, the user's
uncommitted work untouched.
"""

from __future__ import annotations

from pathlib import Path

from swarmd.plugins.executors.kubernetes.transfer import bundle_commits, git, unbundle
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["base_commits", "merge_pod_work", "ship_base"]


def base_commits(request: executor_pb2.ExecuteSubTaskRequest) -> list[str]:
    return [request.workspace.base_commit, *[d.commit for d in request.dependencies if d.commit]]


async def ship_base(request: executor_pb2.ExecuteSubTaskRequest, repo: Path, out: Path, tag: str) -> None:
    """Write the bundle a pod starts from (base commit plus dependency commits)."""
    await bundle_commits(repo, base_commits(request), out, tag=tag)


async def merge_pod_work(
    request: executor_pb2.ExecuteSubTaskRequest, repo: Path, bundle: Path, commit: str, pod: str
) -> tuple[common_pb2.MergeResult, bytes, str]:
    """Merge the pod's ``commit`` (in ``bundle``); returns the merge, the patch and the worktree path."""
    # Loaded where pods' work is merged, not by every process that loads the plugin.
    from swarmd.plugins.runtime.worktree import WorktreeManager

    manager = WorktreeManager(repo)
    worktree = await manager.create(
        request.swarm_id,
        request.subtask.id,
        request.workspace.base_commit or None,
        [d.commit for d in request.dependencies if d.commit],
    )
    ref_prefix = f"refs/swarmd/pods/{pod}"
    try:
        await unbundle(repo, bundle, ref_prefix)
        await git(worktree.path, "merge", "--ff-only", "-q", commit)
    finally:
        refs = await git(repo, "for-each-ref", "--format=%(refname)", ref_prefix)
        for ref in refs.split():
            await git(repo, "update-ref", "-d", ref)
    patch = await manager.diff_against_base(worktree, commit)
    pending = [d.commit for d in request.dependencies if d.merge_pending and d.commit]
    if pending and request.workspace.auto_merge:
        await manager.wait_landed(pending)  # never merged ahead of its dependencies
    report = await manager.merge(worktree, commit, auto_merge=request.workspace.auto_merge)
    path = report.worktree_path
    return report.to_proto(), patch, str(path) if path else ""
