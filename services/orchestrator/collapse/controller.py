"""The collapse controller of one swarm: the sampling loop and its decisions.

Where it runs: the controller (state, scores, decisions, kills) lives in
the orchestrator, which owns the swarm and the cancel path; the checks run
where the worktrees are, in the executor service, through its
``SampleBranch`` RPC. Every ``interval_secs`` the controller asks for one
sample of each running branch that has a worktree and has not committed
its work yet -- at most one sample in flight per branch (a slow check is
simply not asked again until it answers) -- and evaluates what came back
with :class:`~.policy.CollapsePolicy`. Nothing here blocks the event loop:
the samples are RPCs, awaited concurrently with a bound.

Each tick with samples is a ``collapse_evaluated`` event (every branch's
score vector and the observation behind it, the kills, the promoted
branch). A kill cancels the subtask through the swarm's normal cancel path
with a reason starting ``collapse:``; the subtask ends CANCELLED (by the
controller, not failed by its agent) and its worktree and branch are kept.
A branch whose work is committed is never killed: finished work is kept.
Each kill and each change of the promoted branch is also an audit record
(``audit``), with the observations behind it.

The swarm hands the controller what it needs as callables (see
:class:`CollapseHost`); the controller knows nothing else of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmd.services.errors import InvalidArgument, SwarmdError
from swarmd.services.orchestrator.collapse.policy import (
    CollapsePolicy,
    CollapseSettings,
    Evaluation,
    Observation,
    Tick,
)
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["CollapseController", "CollapseHost", "judgeable"]

log = logging.getLogger(__name__)

#: Beyond the checks' own limits, what one SampleBranch call may take.
RPC_SLACK_SECS = 30.0


@dataclass(frozen=True)
class CollapseHost:
    """What the controller may see and do of its swarm."""

    swarm_id: str
    config: common_pb2.SwarmConfig
    base_commit: str
    #: The executor service's SampleBranch (request, timeout) -> response.
    sample: Callable[[executor_pb2.SampleBranchRequest, float], Awaitable[executor_pb2.SampleBranchResponse]]
    #: Running subtasks the controller may judge: with a worktree, not stopping, work not committed.
    candidates: Callable[[], list[str]]
    #: A subtask's current status (``SubTaskStatus``).
    status: Callable[[str], int]
    #: Branch name of a subtask.
    branch: Callable[[str], str]
    #: Emit an event (kind, message).
    emit: Callable[[str, Any], object]
    #: Cancel a subtask with a reason (the swarm's normal cancel path).
    cancel: Callable[[str, str], object]
    #: Store an audit record: (kind, subtask id, detail as a JSON-able dict).
    audit: Callable[[str, str, dict[str, Any]], Awaitable[object]] | None = None


def judgeable(
    config: common_pb2.SwarmConfig,
    states: Mapping[str, common_pb2.SubTaskState],
    stopping: Mapping[str, bool],
    committed: Callable[[str], object | None],
) -> list[str]:
    """Running subtasks the controller may judge: with a worktree, not stopping
    (``stopping``: the running ones, True when asked to stop), their work not
    committed yet (``committed``: None until it is), so finished work is never killed."""
    if not config.worktree_enabled:
        return []
    return [
        sid
        for sid, stop in stopping.items()
        # A speculative subtask has no branch of its own (its variants do).
        if not stop and not states[sid].subtask.read_only and not states[sid].variants and committed(sid) is None
    ]


def _evaluation_proto(ev: Evaluation, obs: common_pb2.BranchObservation) -> common_pb2.BranchEvaluation:
    return common_pb2.BranchEvaluation(
        observation=obs,
        compile_health=ev.compile_health,
        test_health=ev.test_health,
        contract_alignment=ev.contract_alignment,
        diff_conflict_risk=ev.diff_conflict_risk,
        velocity=ev.velocity,
        resource=ev.resource,
        score=ev.score,
        consecutive_failures=ev.consecutive_failures,
        invariant_breaks=ev.invariant_breaks,
        warming_up=ev.warming_up,
    )


class CollapseController:
    """Samples, scores and acts for one swarm; ``start``/``stop`` (idempotent)."""

    def __init__(
        self,
        host: CollapseHost,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.host = host
        self.settings = CollapseSettings.from_proto(host.config.collapse)
        self.policy = CollapsePolicy(self.settings)
        self.checks = list(host.config.collapse.checks)
        self.promoted: str | None = None
        self.ticks = 0
        self.kills: dict[str, str] = {}
        self.promotions = 0
        self._clock = clock
        self._sleep = sleep
        self._started_at: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Task[common_pb2.BranchObservation | None]] = {}
        self._last_health: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[object]] = set()
        self._warned: set[str] = set()

    def stats(self) -> common_pb2.CollapseStats:
        """What the controller did so far (for the swarm's statistics)."""
        return common_pb2.CollapseStats(
            evaluations=self.ticks,
            kills=len(self.kills),
            promotions=self.promotions,
            promoted_subtask_id=self.promoted or "",
        )

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"collapse-{self.host.swarm_id}")

    async def stop(self, flush_timeout_secs: float = 10.0) -> None:
        """Stop sampling; audit records already decided are written (within the timeout)."""
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        if self._writes:
            await asyncio.wait(self._writes, timeout=flush_timeout_secs)

    async def _loop(self) -> None:
        while True:
            await self._sleep(self.settings.interval_secs)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the swarm, only the controller's tick
                log.exception("swarm %s: collapse tick failed", self.host.swarm_id)

    # -- sampling -------------------------------------------------------------

    async def _sample(self, sid: str) -> common_pb2.BranchObservation | None:
        host = self.host
        request = executor_pb2.SampleBranchRequest(
            swarm_id=host.swarm_id,
            subtask_id=sid,
            repo_path=host.config.repo_path,
            branch=host.branch(sid),
            base_commit=host.base_commit,
            checks=self.checks,
            check_timeout_ms=int(self.settings.check_timeout_secs * 1000),
            promoted_subtask_id=self.promoted or "",
        )
        timeout = self.settings.check_timeout_secs * max(1, len(self.checks)) + RPC_SLACK_SECS
        try:
            response = await host.sample(request, timeout)
        except SwarmdError as exc:
            log.warning("swarm %s: no sample of %s: %s", host.swarm_id, sid, exc)
            if isinstance(exc, InvalidArgument):  # e.g. a check the executor does not know: say so once
                self._warn("collapse_sample_refused", f"the executor refused to sample branches: {exc}")
            return None
        return response.observation

    def _warn(self, code: str, message: str) -> None:
        if code not in self._warned:
            self._warned.add(code)
            self.host.emit("warning", common_pb2.SwarmWarning(code=code, message=message))

    def _collect(self, candidates: list[str]) -> list[common_pb2.BranchObservation]:
        observations = []
        for sid, task in list(self._inflight.items()):
            if not task.done():
                continue
            del self._inflight[sid]
            obs = None if task.cancelled() or task.exception() is not None else task.result()
            if obs is not None and sid in candidates:
                observations.append(obs)
        return observations

    # -- one tick -------------------------------------------------------------

    async def tick(self) -> Tick | None:
        """Sample the running branches (waiting at most one interval) and act."""
        candidates = self.host.candidates()
        now = self._clock()
        for sid in candidates:
            self._started_at.setdefault(sid, now)
            if sid not in self._inflight:
                self._inflight[sid] = asyncio.ensure_future(self._sample(sid))
        waiting = [self._inflight[sid] for sid in candidates]
        if waiting:
            await asyncio.wait(waiting, timeout=self.settings.interval_secs)
        candidates = self.host.candidates()  # some may have finished meanwhile
        samples = self._collect(candidates)
        if not samples:
            return None
        for obs in samples:
            self._last_health[obs.subtask_id] = obs.health
        completed_peers = sum(
            1
            for sid, health in self._last_health.items()
            if health == common_pb2.HEALTH_STATUS_PASS and self.host.status(sid) == common_pb2.SUB_TASK_STATUS_COMPLETED
        )
        tick = self.policy.evaluate(
            [Observation.from_proto(o, self._started_at[o.subtask_id]) for o in samples],
            self._clock(),
            running=set(candidates),
            completed_peers=completed_peers,
        )
        self._act(tick, {o.subtask_id: o for o in samples}, set(candidates))
        return tick

    def _act(self, tick: Tick, samples: dict[str, common_pb2.BranchObservation], candidates: set[str]) -> None:
        host = self.host
        self.ticks += 1
        event = common_pb2.CollapseEvaluated(tick=self.ticks, spared=tick.spared)
        for ev in tick.evaluations:
            event.evaluations.append(_evaluation_proto(ev, samples[ev.subtask_id]))
        for kill in tick.kills:
            # Finished work is never killed: the branch must still be a candidate.
            if kill.subtask_id not in candidates or kill.subtask_id not in host.candidates():
                continue
            branch = samples[kill.subtask_id].branch
            event.kills.add(subtask_id=kill.subtask_id, branch=branch, reason=kill.reason)
        changed = tick.promoted is not None and tick.promoted != self.promoted
        if changed:
            self.promoted = tick.promoted
            self.promotions += 1
        event.promoted_subtask_id = self.promoted or ""
        event.promotion_changed = changed
        host.emit("collapse_evaluated", event)
        evaluations = {e.observation.subtask_id: e for e in event.evaluations}
        for kill in event.kills:
            self.kills[kill.subtask_id] = kill.reason
            log.info("swarm %s: collapse kills %s: %s", host.swarm_id, kill.subtask_id, kill.reason)
            host.cancel(kill.subtask_id, kill.reason)
            self._audit("collapse_kill_branch", kill.subtask_id, evaluations, reason=kill.reason, branch=kill.branch)
        if changed and self.promoted is not None:
            self._audit("collapse_promote_branch", self.promoted, evaluations)

    def _audit(self, kind: str, sid: str, evaluations: dict[str, common_pb2.BranchEvaluation], **extra: str) -> None:
        if self.host.audit is None:
            return
        from google.protobuf.json_format import MessageToDict

        detail: dict[str, Any] = {
            "swarm_id": self.host.swarm_id,
            "subtask_id": sid,
            "tick": self.ticks,
            **extra,
            "evaluations": [MessageToDict(e) for e in evaluations.values()],
        }
        task = asyncio.ensure_future(self._write(self.host.audit, kind, sid, detail))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(
        self, audit: Callable[[str, str, dict[str, Any]], Awaitable[object]], kind: str, sid: str, detail: dict[str, Any]
    ) -> object:
        try:
            return await audit(kind, sid, detail)
        except Exception as exc:  # the store is down: the event log has the same facts
            log.warning("swarm %s: audit record %s of %s not stored: %s", self.host.swarm_id, kind, sid, exc)
            return None
