"""Dispatching one swarm's subtasks: the loop, the running tasks, cancellation.

:class:`SubtaskScheduler` turns the pure ordering of :mod:`.scheduler` into
running work: it dispatches each ready subtask (critical path first) while
fewer than ``max_concurrent`` are in flight, keeping the start stagger; runs
each as a :class:`~.dispatch.SubtaskDispatch` in its own task under a
``swarmd.subtask`` span; records each terminal result (events, saved state,
budget settlement) and resolves its dependents -- ready, or skipped with the
reason under the SKIP policy. A subtask is never started once the swarm's
budget is spent; it fails with the budget's reason instead.

A mutating subtask's ``WorkCommitted`` event (its work is committed on its
branch, its merge comes next) lets dependents start at once from that commit
instead of waiting for the merge (policy SKIP only: RUN_ANYWAY needs the
parent's final outcome). Such a dependent is told its parent's commit is
``merge_pending``, so its own merge waits until the parent's has landed; if
the parent then fails, the dependent is cancelled and skipped like any
dependent of a failed subtask; if the parent finishes with another commit
(a retry after the commit), the dependent is stopped and dispatched again
(:mod:`.committed` keeps that bookkeeping).

Cancelling a waiting subtask ends it at once; cancelling a running one asks
its dispatch to stop (which tells the executor). Cancelling the whole swarm
marks every waiting subtask CANCELLED (not SKIPPED) and stops the running
ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from opentelemetry import trace

from swarmd.services.errors import NotFound
from swarmd.services.orchestrator.attempts import AttemptReporter
from swarmd.services.orchestrator.committed import CommittedWork, EarlyCommit
from swarmd.services.orchestrator.context import TERMINAL
from swarmd.services.orchestrator.dispatch import DispatchHooks, DispatchLimits, SubtaskDispatch
from swarmd.services.orchestrator.live_run import LiveRun
from swarmd.services.orchestrator.reconcile import merged_result, merged_subtasks, merges_expected
from swarmd.services.orchestrator.retry import Backoff, resumed_first_attempt
from swarmd.services.orchestrator.scheduler import DependencyTracker, ReadyQueue, Stagger
from swarmd.services.orchestrator.speculation import Running, SpeculativeDispatch, variants_of
from swarmd.services.orchestrator.stats import count_outcomes
from swarmd.v1 import common_pb2

__all__ = ["SubtaskScheduler"]

log = logging.getLogger(__name__)


def _result(status: common_pb2.SubTaskStatus, kind: common_pb2.FailureKind, error: str) -> common_pb2.SubTaskResult:
    return common_pb2.SubTaskResult(success=False, status=status, failure_kind=kind, error=error)


class SubtaskScheduler:
    """The running side of one swarm: ready queue, in-flight tasks, spans."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run
        self.tracker: DependencyTracker | None = None
        self.ready: ReadyQueue | None = None
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.dispatches: dict[str, Running] = {}
        self.reporters: dict[str, AttemptReporter] = {}
        self._stage_left: dict[int, int] = {}
        self._stage_announced: set[int] = set()
        self._to_resolve: list[str] = []
        self._resolving = False
        self._wake = asyncio.Event()
        self._spans: dict[str, trace.Span] = {}
        self._span_end_ns: dict[str, int] = {}
        self.committed = CommittedWork()

    def is_terminal(self, sid: str) -> bool:
        return self.run.states[sid].status in TERMINAL

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -----------------------------------------------------------

    async def run_all(self) -> None:
        """Dispatch until every subtask is terminal (or the swarm is cancelled)."""
        run = self.run
        subtasks = [s.subtask for s in run.swarm.subtasks]
        self.tracker = DependencyTracker(subtasks, run.config.dependency_failure_policy)
        self.ready = ReadyQueue(subtasks)
        for state in run.swarm.subtasks:
            stage = state.subtask.stage
            self._stage_left[stage] = self._stage_left.get(stage, 0) + (
                state.status not in TERMINAL
            )
        for stage in [k for k, left in self._stage_left.items() if left == 0]:
            del self._stage_left[stage]  # finished in a previous life: announced then
            self._stage_announced.add(stage)
        for sid in self.tracker.roots():
            if not self.is_terminal(sid):
                self.ready.push(sid)
        # A resumed swarm: replay the effect of what had already finished.
        self._resolve_later([s.subtask.id for s in run.swarm.subtasks if s.status in TERMINAL])
        stagger = Stagger(run.config.request_delay_ms / 1000)
        limit = max(1, run.config.max_concurrent)
        while not all(self.is_terminal(sid) for sid in run.states):
            while self.ready and len(self.tasks) < limit and not run.cancelling:
                await stagger.wait()
                if not self.ready or run.cancelling:
                    break
                sid = self.ready.pop()
                if self.is_terminal(sid) or not self._still_ready(sid):
                    continue
                why = run.ledger.exhausted()
                if why:
                    self.finish(
                        sid,
                        _result(
                            common_pb2.SUB_TASK_STATUS_FAILED,
                            common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED,
                            f"not started: {why}",
                        ),
                    )
                    continue
                self._launch(sid)
            if all(self.is_terminal(sid) for sid in run.states):
                break
            self._wake.clear()
            await self._wake.wait()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    # -- starting dependents from committed work ------------------------------

    def committed_early(self, sid: str) -> EarlyCommit | None:
        """The commit a running ``sid`` reported before its merge, None once it is terminal."""
        return None if self.is_terminal(sid) else self.committed.get(sid)

    def forget_commit(self, sid: str) -> None:
        """A new attempt of ``sid`` began: its earlier commit is no base for dependents."""
        self.committed.forget(sid)

    def work_committed(self, sid: str, event: common_pb2.WorkCommitted) -> None:
        """``sid`` committed its work: dependents waiting only on committed work may start."""
        if self.tracker is None or self.tracker.run_anyway or self.run.cancelling or self.is_terminal(sid):
            return
        self.committed.record(sid, event)
        for dependent in self.tracker.dependents(sid):
            if self._early_ready(dependent):
                self._make_ready(dependent)
        self._wake.set()

    def _early_ready(self, sid: str) -> bool:
        assert self.tracker is not None and self.ready is not None
        if self.is_terminal(sid) or sid in self.tasks or sid in self.ready:
            return False
        return self.committed.covers(self.tracker.waiting_on(sid))

    def _still_ready(self, sid: str) -> bool:
        """False (and BLOCKED again) when a commit it was readied on is void (a new attempt)."""
        assert self.tracker is not None
        if self.committed.covers(self.tracker.waiting_on(sid)):
            return True
        state = self.run.states[sid]
        state.status = common_pb2.SUB_TASK_STATUS_BLOCKED
        self.run.emit_update(state)
        self.run.writer.save_subtask(state)
        return False

    def _requeue(self, sid: str, result: common_pb2.SubTaskResult) -> None:
        """An early-started subtask was stopped to run again on its parents' final commits."""
        assert self.tracker is not None and self.ready is not None
        run = self.run
        state = run.states[sid]
        reporter = self.reporters.get(sid)
        if reporter is not None:
            reporter.close_attempt(result, result.failure_kind)
        waiting = self.tracker.waiting_on(sid)
        del state.variants[:]  # a race run again on new commits starts its variants afresh
        state.status = (
            common_pb2.SUB_TASK_STATUS_BLOCKED
            if waiting and not self.committed.covers(waiting)
            else common_pb2.SUB_TASK_STATUS_PENDING
        )
        state.status_reason = "dispatched again: a dependency finished with another commit"
        run.emit_update(state)
        run.writer.save_subtask(state)
        if state.status == common_pb2.SUB_TASK_STATUS_PENDING:
            self.ready.push(sid)

    def _make_ready(self, sid: str) -> None:
        assert self.ready is not None
        run = self.run
        waiting = run.states[sid]
        if waiting.status == common_pb2.SUB_TASK_STATUS_BLOCKED:
            waiting.status = common_pb2.SUB_TASK_STATUS_PENDING
            run.emit_update(waiting)
            run.writer.save_subtask(waiting)
        self.ready.push(sid)

    def _launch(self, sid: str) -> None:
        run = self.run
        config = run.config
        assert self.tracker is not None
        self.committed.launched(sid, self.tracker.waiting_on(sid))
        reporter = AttemptReporter(run, sid)
        # A resumed subtask continues its attempt count within its retry budget.
        first_attempt, retries_used = resumed_first_attempt(
            run.states[sid].attempt, config.max_retries
        )

        def make(subtask_id: str, hooks: DispatchHooks) -> SubtaskDispatch:
            return SubtaskDispatch(
                run.ctx.executor,
                hooks,
                swarm_id=run.id,
                subtask_id=subtask_id,
                limits=DispatchLimits(
                    max_retries=config.max_retries,
                    subtask_timeout_secs=float(config.subtask_timeout_secs),
                    cancel_grace_secs=run.ctx.cancel_grace_secs,
                    rpc_timeout_secs=run.ctx.settings.rpc_timeout_secs,
                ),
                backoff=Backoff(config.base_delay_ms, config.max_delay_ms, run.ctx.rng),
                sleep=run.ctx.sleep,
                first_attempt=first_attempt,
                retries_used=retries_used,
            )

        variants = variants_of(config, run.states[sid].subtask)  # > 1: raced (see .speculation)
        dispatch = SpeculativeDispatch(run, reporter, sid, variants, make) if variants > 1 else make(sid, reporter)
        self.reporters[sid] = reporter
        self.dispatches[sid] = dispatch
        self.tasks[sid] = asyncio.get_running_loop().create_task(
            self._run_subtask(sid, dispatch), name=f"subtask-{sid}"
        )

    async def _run_subtask(self, sid: str, dispatch: Running) -> None:
        run = self.run
        sub = run.states[sid].subtask
        span = run.ctx.tracer.start_span(
            "swarmd.subtask",
            context=run.span_context(),
            attributes={
                "swarmd.swarm_id": run.id,
                "swarmd.subtask_id": sid,
                "swarmd.subtask_name": sub.name,
                "swarmd.stage": sub.stage,
                "swarmd.read_only": sub.read_only,
            },
        )
        self._spans[sid] = span
        try:
            # The client interceptor carries this span's context to the executor.
            with trace.use_span(span, end_on_exit=False):
                try:
                    result = await self._already_merged(sid, resumed_only=True)
                    if result is None:
                        result = await dispatch.run()
                        if not result.success and not dispatch.cancelling:
                            result = await self._already_merged(sid, result) or result
                except Exception as exc:  # a bug must end the subtask, not hang the swarm
                    log.exception("swarm %s: dispatch of subtask %s crashed", run.id, sid)
                    result = _result(
                        common_pb2.SUB_TASK_STATUS_FAILED,
                        common_pb2.FAILURE_KIND_PERMANENT,
                        f"internal error while dispatching: {type(exc).__name__}: {exc}",
                    )
            span.set_attribute("swarmd.status", common_pb2.SubTaskStatus.Name(result.status))
            span.set_attribute("swarmd.attempts", dispatch.attempts)
            span.set_attribute("swarmd.steps", result.steps)
            if not result.success:
                span.set_status(trace.Status(trace.StatusCode.ERROR, result.error[:500]))
            if self.committed.take_restart(sid):
                self._requeue(sid, result)
                return
            # The span ends when the swarm does, with this end time, so the
            # critical-path attribute can still be set on it.
            self._span_end_ns[sid] = time.time_ns()
            self.finish(sid, result)
        finally:
            self.tasks.pop(sid, None)
            self.dispatches.pop(sid, None)
            self._wake.set()

    async def _already_merged(
        self,
        sid: str,
        reported: common_pb2.SubTaskResult | None = None,
        *,
        resumed_only: bool = False,
    ) -> common_pb2.SubTaskResult | None:
        """A COMPLETED result when the subtask's merge is on the branch already:
        a resumed subtask is not run (and merged) twice, and a subtask whose
        work landed is never reported FAILED (see :mod:`.reconcile`)."""
        run = self.run
        state = run.states[sid]
        if not merges_expected(run.config, state.subtask) or (resumed_only and not state.attempt):
            return None
        work = (await merged_subtasks(run.config.repo_path, run.id)).get(sid)
        if work is None:
            return None
        log.warning("swarm %s: subtask %s is merged already (%s)", run.id, sid, work.merge_commit[:12])
        return merged_result(sid, work, reported)

    # -- terminal results ---------------------------------------------------

    def finish(self, sid: str, result: common_pb2.SubTaskResult) -> None:
        """Record a terminal result, emit its events, resolve its dependents."""
        run = self.run
        state = run.states[sid]
        if state.status in TERMINAL:
            return
        result.subtask_id = sid
        result.subagent_id = result.subagent_id or state.agent_name
        reporter = self.reporters.get(sid)
        if reporter is not None:
            reporter.close_attempt(result, result.failure_kind)
        run.ledger.settle(sid, result.tool_calls, result.usage.total_tokens, result.cost_usd)
        # A sub-agent that knows no prices reports cost 0; the orchestrator
        # priced each of its calls (ReportOutcome) from its own table, so the
        # ledger holds what the subtask really spent, every attempt included.
        result.cost_usd = run.ledger.spend[sid].cost_usd
        state.result.CopyFrom(result)
        state.status = result.status
        state.status_reason = result.error
        state.current_tool = ""
        state.steps = max(state.steps, result.steps)
        state.tool_calls = max(state.tool_calls, result.tool_calls)
        state.finished_at.GetCurrentTime()
        run.emit_update(state)
        run.writer.save_subtask(state)
        self._stage_done(state.subtask.stage)
        self._resolve_later([sid])
        self._wake.set()

    def _stage_done(self, stage: int) -> None:
        """Count a finished subtask; announce finished stages in stage order.

        A later stage can finish first (dispatch follows dependencies, not
        stages); its StageComplete waits until every earlier stage's is out.
        """
        self._stage_left[stage] = self._stage_left.get(stage, 1) - 1
        while self._stage_left and self._stage_left.get(min(self._stage_left), 0) <= 0:
            first = min(self._stage_left)
            del self._stage_left[first]
            if first in self._stage_announced:
                continue
            self._stage_announced.add(first)
            members = [s for s in self.run.swarm.subtasks if s.subtask.stage == first]
            counts = count_outcomes(members)
            self.run.log.emit(
                "stage_complete",
                common_pb2.StageComplete(
                    stage=first,
                    completed=counts.completed,
                    failed=counts.failed,
                    cancelled=counts.cancelled,
                    skipped=counts.skipped,
                ),
            )

    def _resolve_later(self, sids: list[str]) -> None:
        """Resolve finished subtasks' dependents iteratively (a skip that
        propagates down a long chain must not recurse once per level)."""
        self._to_resolve.extend(sids)
        if self._resolving:
            return
        self._resolving = True
        try:
            while self._to_resolve:
                self._resolve(self._to_resolve.pop(0))
        finally:
            self._resolving = False

    def _resolve(self, sid: str) -> None:
        assert self.tracker is not None and self.ready is not None
        run = self.run
        state = run.states[sid]
        # Only the dependents' states matter to the tracker: no scan of the whole swarm.
        finished = [d for d in self.tracker.dependents(sid) if self.is_terminal(d)]
        outcome = self.tracker.resolve(
            sid, state.status == common_pb2.SUB_TASK_STATUS_COMPLETED, finished
        )
        self.committed.forget(sid)
        for ready in outcome.ready:
            if ready in self.tasks:  # started early, from sid's commit
                dispatch = self.dispatches.get(ready)
                if dispatch is not None and self.committed.started_on_another(
                    ready, sid, state.result.merge.commit
                ):
                    self.committed.restart(ready)
                    dispatch.cancel(f"dependency {sid} finished with another commit; dispatched again")
                continue
            self._make_ready(ready)
        word = common_pb2.SubTaskStatus.Name(state.status).removeprefix("SUB_TASK_STATUS_").lower()
        for skipped in outcome.skip:
            if self.is_terminal(skipped):
                continue
            dispatch = self.dispatches.get(skipped)
            if dispatch is not None:  # started early from sid's commit, which did not land
                dispatch.cancel(f"dependency {sid} {word}")
            self.finish(
                skipped,
                _result(
                    common_pb2.SUB_TASK_STATUS_SKIPPED,
                    common_pb2.FAILURE_KIND_DEPENDENCY_FAILED,
                    f"skipped: dependency {state.subtask.name!r} ({sid}) {word}: {state.status_reason or word}",
                ),
            )

    # -- cancellation ---------------------------------------------------------

    def cancel_all(self, reason: str) -> None:
        """Stop everything: running subtasks are asked to stop, waiting ones
        become CANCELLED (dependents are not resolved: nothing more runs)."""
        for sid, state in self.run.states.items():
            if state.status in TERMINAL:
                continue
            dispatch = self.dispatches.get(sid)
            if dispatch is not None:
                dispatch.cancel(reason)
            else:
                self.cancel_waiting(sid, reason, resolve=False)
        self._wake.set()

    def cancel_one(
        self, sid: str, reason: str
    ) -> tuple[common_pb2.SubTaskStatus, bool, Running | None]:
        """Cancel one subtask; returns (status, already_finished, its running dispatch)."""
        run = self.run
        state = run.states.get(sid)
        if state is None:
            raise NotFound(f"swarm {run.id!r} has no subtask {sid!r}")
        if state.status in TERMINAL:
            return state.status, True, None
        dispatch = self.dispatches.get(sid)
        if dispatch is not None:
            dispatch.cancel(reason)
            return common_pb2.SUB_TASK_STATUS_CANCELLED, False, dispatch
        self.cancel_waiting(sid, reason)
        self._wake.set()
        return state.status, False, None

    def cancel_waiting(self, sid: str, reason: str, *, resolve: bool = True) -> None:
        """End a subtask that is not running as CANCELLED."""
        if self.ready is not None:
            self.ready.remove(sid)
        result = _result(
            common_pb2.SUB_TASK_STATUS_CANCELLED,
            common_pb2.FAILURE_KIND_CANCELLED,
            f"cancelled: {reason}",
        )
        if resolve and self.tracker is not None:
            self.finish(sid, result)
            return
        run = self.run
        state = run.states[sid]
        if state.status in TERMINAL:
            return
        result.subtask_id = sid
        result.subagent_id = state.agent_name
        state.result.CopyFrom(result)
        state.status = result.status
        state.status_reason = result.error
        state.finished_at.GetCurrentTime()
        if self.tracker is not None:  # dispatch had begun: the change is news
            run.emit_update(state)
            run.writer.save_subtask(state)
            self._stage_done(state.subtask.stage)

    async def wait_subtask(self, sid: str, timeout: float) -> common_pb2.SubTaskStatus:
        """Wait (up to ``timeout``) for a subtask's task to end; return its status."""
        task = self.tasks.get(sid)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(task)
        return self.run.states[sid].status

    def abort(self) -> list[asyncio.Task[None]]:
        """Cancel every running task at once (a crash or a shutdown), marking
        nothing: their streams are hung up, which stops the sub-agents."""
        tasks = [t for t in self.tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        return tasks

    # -- spans ----------------------------------------------------------------

    def end_spans(self, critical: set[str] | None = None) -> None:
        """End the subtask spans, marking those on the critical path."""
        for sid, span in self._spans.items():
            if not span.is_recording():
                continue
            span.set_attribute("swarmd.critical_path", critical is not None and sid in critical)
            span.end(end_time=self._span_end_ns.get(sid))
        self._spans.clear()
