"""SampleBranch: health checks and change counts of a running branch's worktree.

The executor service owns the worktrees, so the collapse controller (in the
orchestrator, which decides) asks it for samples. A sample runs the
configured checks one after the other in the branch's worktree -- each
through :meth:`~swarmd.plugins.HealthCheck.run`, in its own process group,
under its timeout, never on the event loop -- and counts what the branch
changed since it started (staged, unstaged and untracked files). A branch
whose subtask runs a later attempt on ``<branch>@<n>`` (the earlier
worktree held work, so it was kept) is sampled there: the latest attempt's
worktree, named in the observation's ``branch``.

Combined health: FAIL when a check failed, PASS when one passed and none
failed, UNKNOWN otherwise. A branch this host has no worktree for (a pod of
the Kubernetes executor, a remote executor's machine) is UNKNOWN: it is
never killed on a guess about its code.

Resource health: when the branch's attempt runs on this executor service,
its plugin's :meth:`~swarmd.plugins.Executor.resource_health` gives the
score and the infrastructure signals (the Kubernetes executor scores the
pod's status: OOMKilled, image pull errors, CrashLoopBackOff, restarts,
readiness); otherwise, and for local sub-agents, it is 1.0 with no signals.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from swarmd.plugins import Executor, HealthCheck, HealthResult, HealthStatus
from swarmd.plugins.checks import diff_stat
from swarmd.plugins.manager import Plugins
from swarmd.plugins.registry import UnknownPlugin
from swarmd.plugins.runtime.worktree import priority
from swarmd.plugins.runtime.worktree.repo import RepoBase
from swarmd.services.errors import InvalidArgument
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["DEFAULT_CHECK_TIMEOUT_MS", "combine", "sample_branch"]

log = logging.getLogger(__name__)

DEFAULT_CHECK_TIMEOUT_MS = 120_000

_STATUS = {
    HealthStatus.PASS: common_pb2.HEALTH_STATUS_PASS,
    HealthStatus.FAIL: common_pb2.HEALTH_STATUS_FAIL,
    HealthStatus.UNKNOWN: common_pb2.HEALTH_STATUS_UNKNOWN,
}


def combine(results: list[tuple[str, HealthResult]]) -> tuple[HealthStatus, str]:
    """One status and detail for several checks' results."""
    statuses = {r.status for _, r in results}
    if HealthStatus.FAIL in statuses:
        status = HealthStatus.FAIL
    elif HealthStatus.PASS in statuses:
        status = HealthStatus.PASS
    else:
        status = HealthStatus.UNKNOWN
    detail = "\n".join(f"[{name}: {r.status.value}] {r.detail}".rstrip() for name, r in results)
    return status, detail


def _checks(plugins: Plugins, request: executor_pb2.SampleBranchRequest) -> list[HealthCheck]:
    timeout = (request.check_timeout_ms or DEFAULT_CHECK_TIMEOUT_MS) / 1000
    checks: list[HealthCheck] = []
    for spec in request.checks or [common_pb2.HealthCheckSpec(name="none")]:
        try:
            cls = plugins.health_checks.get(spec.name)
        except UnknownPlugin as exc:
            raise InvalidArgument(str(exc)) from None
        checks.append(cls(dict(spec.options), timeout_secs=timeout))
    return checks


async def sample_branch(
    plugins: Plugins, request: executor_pb2.SampleBranchRequest, executor: Executor | None = None
) -> executor_pb2.SampleBranchResponse:
    """Run the request's checks in its branch's worktree and count its changes;
    ``executor`` (the plugin running the branch's attempt, if one runs here)
    gives its resource health."""
    response = await _sample(plugins, request)
    if executor is None:
        return response
    try:
        health = await executor.resource_health(request.swarm_id, request.subtask_id)
    except Exception:  # the plugin's bug: no resource health, the sample still counts
        log.exception("resource health of %s/%s failed", request.swarm_id, request.subtask_id)
        return response
    if health is not None:
        obs = response.observation
        obs.resource_health_score = min(1.0, max(0.0, health.score))
        obs.infra_unhealthy_signals = max(0, health.signals)
        if health.detail:
            obs.detail = "\n".join(part for part in (obs.detail, f"[resources: {obs.resource_health_score:.2f}] {health.detail}") if part)
    return response


async def _sample(plugins: Plugins, request: executor_pb2.SampleBranchRequest) -> executor_pb2.SampleBranchResponse:
    if not request.repo_path or not request.branch:
        raise InvalidArgument("SampleBranch needs repo_path and branch")
    if request.swarm_id:
        priority.promote(request.swarm_id, request.promoted_subtask_id)
    checks = _checks(plugins, request)
    obs = common_pb2.BranchObservation(
        subtask_id=request.subtask_id, branch=request.branch, resource_health_score=1.0
    )
    try:
        present = Path(request.repo_path).is_dir()
    except OSError:  # a path the filesystem refuses (too long, ...): not here either
        present = False
    if not present:
        obs.health = common_pb2.HEALTH_STATUS_UNKNOWN
        obs.detail = f"repository {request.repo_path} is not on this executor's host"
        return executor_pb2.SampleBranchResponse(observation=obs)
    repo = RepoBase(request.repo_path)
    # A retried or resumed attempt that could not reuse the earlier worktree runs on <branch>@<n>.
    obs.branch = await repo.latest_attempt(request.branch)
    worktree, start = await repo.branch_worktree(obs.branch)
    if worktree is None or not worktree.is_dir():
        obs.health = common_pb2.HEALTH_STATUS_UNKNOWN
        obs.detail = f"no worktree of {obs.branch} on this executor's host"
        return executor_pb2.SampleBranchResponse(observation=obs)
    base = start or request.base_commit
    began = time.monotonic()
    results = [(check.name, await check.run(worktree, base)) for check in checks]
    status, detail = combine(results)
    obs.health = _STATUS[status]
    obs.detail = detail
    obs.check_duration_ms = int((time.monotonic() - began) * 1000)
    try:
        stat = await diff_stat(worktree, base)
    except OSError as exc:  # the worktree went away mid-sample (the branch finished)
        log.info("no diff for %s: %s", request.branch, exc)
    else:
        obs.changed_files.extend(sorted(stat.files))
        obs.changed_lines = stat.lines
    return executor_pb2.SampleBranchResponse(observation=obs)
