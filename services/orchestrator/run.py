"""One swarm from plan to final result.

A :class:`SwarmRun` owns the live ``Swarm`` message (the single source of
truth for GetSwarm while it runs), its event log, its budget ledger and its
state writer. Its main task:

1. plans, when the swarm was submitted as task text: the model decomposes,
   the plan is repaired, every repair becomes a warning event;
2. emits Started and Decomposed and saves the swarm as RUNNING;
3. dispatches each subtask as soon as its own dependencies are resolved
   (:mod:`.scheduling`);
4. finalises: statistics, the critical path (marked on the subtask states
   and spans), the aggregated text, SwarmComplete, the final save.

Stopping the host cancels the main task without marking anything cancelled:
the stored swarm becomes INTERRUPTED (its running subtasks keep their
status) and is resumed on purpose, or by a restarted standalone
orchestrator (:mod:`.resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from opentelemetry import context as otel_context
from opentelemetry import trace

from swarmd.plugins import ModelProvider, parse_model_string
from swarmd.services.errors import ResourceExhausted
from swarmd.services.orchestrator.attempts import branch_name
from swarmd.services.orchestrator.budgets import BudgetLedger, find_price
from swarmd.services.orchestrator.collapse import CollapseController, CollapseHost
from swarmd.services.orchestrator.context import TERMINAL_SWARM, RunContext
from swarmd.services.orchestrator.decomposer import decompose, decomposition_settings
from swarmd.services.orchestrator.events import SwarmEventLog
from swarmd.services.orchestrator.persistence import StateWriter
from swarmd.services.orchestrator.planning import PlanWarning
from swarmd.services.orchestrator.retry import Backoff
from swarmd.services.orchestrator.scheduling import SubtaskScheduler
from swarmd.services.orchestrator.speculation import Running, SwarmBranches, count_speculation
from swarmd.services.orchestrator.stats import aggregate_result, compute_stats, swarm_rate_limits
from swarmd.services.orchestrator.validation import repair_model_plan
from swarmd.v1 import common_pb2

__all__ = ["SwarmRun", "mark_interrupted"]

log = logging.getLogger(__name__)


def mark_interrupted(swarm: common_pb2.Swarm, why: str) -> None:
    """Mark a swarm INTERRUPTED (its subtasks keep their statuses)."""
    swarm.state = common_pb2.SWARM_STATE_INTERRUPTED
    swarm.error = (
        f"interrupted: {why}; `swarmd resume {swarm.id}` continues it, "
        f"`swarmd cancel {swarm.id}` ends it"
    )
    for state in swarm.subtasks:
        state.current_tool = ""


class SwarmRun:
    """A swarm while it is live in this orchestrator."""

    def __init__(
        self,
        ctx: RunContext,
        swarm: common_pb2.Swarm,
        *,
        provider: ModelProvider | None = None,
        warnings: list[PlanWarning] | None = None,
        last_sequence: int = 0,
        preflight: common_pb2.PreflightReport | None = None,
    ) -> None:
        self.ctx = ctx
        self.swarm = swarm
        self.config = swarm.config
        self.preflight = preflight or common_pb2.PreflightReport()
        self.log = SwarmEventLog(
            swarm.id, ctx.store, last_sequence=last_sequence, journal=ctx.journal
        )
        self.writer = StateWriter(ctx.store, swarm.id, self.snapshot, journal=ctx.journal)
        self.ledger = BudgetLedger.for_config(self.config)
        self.states: dict[str, common_pb2.SubTaskState] = {s.subtask.id: s for s in swarm.subtasks}
        self.scheduler = SubtaskScheduler(self)
        self.orchestrator_steps = swarm.stats.orchestrator_steps
        self.orchestrator_usage = common_pb2.TokenUsage()
        self.orchestrator_cost = 0.0
        # The governors' figures when this run began: the swarm's own are the difference.
        self._rate_base = list(ctx.governor.stats()) if ctx.governor is not None else []
        #: Started and Decomposed were emitted (by this run or a previous life).
        self.announced = False
        self.warnings = list(warnings or [])
        self._provider = provider
        self._cancel_reason: str | None = None
        self._cancel_event = asyncio.Event()
        self._done = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._span: trace.Span | None = None
        self._created_ms = (
            swarm.created_at.ToMilliseconds()
            if swarm.HasField("created_at")
            else int(time.time() * 1000)
        )
        self._budget_warned: set[tuple[str, str]] = set()
        self.collapse: CollapseController | None = None

    # -- views --------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.swarm.id

    @property
    def terminal(self) -> bool:
        return self.swarm.state in TERMINAL_SWARM

    @property
    def done(self) -> asyncio.Event:
        return self._done

    @property
    def cancelling(self) -> bool:
        return self._cancel_reason is not None

    def span_context(self) -> otel_context.Context | None:
        """Context whose parent is the swarm's span (for subtask spans)."""
        return trace.set_span_in_context(self._span) if self._span is not None else None

    def snapshot(self) -> common_pb2.Swarm:
        """A copy of the swarm with running statistics and the last sequence."""
        snap = common_pb2.Swarm()
        snap.CopyFrom(self.swarm)
        snap.last_sequence = self.log.last_sequence
        if not self.terminal:
            snap.stats.CopyFrom(self._stats())
        return snap

    def _stats(self) -> common_pb2.SwarmStats:
        governor = self.ctx.governor
        rate_limits = (
            swarm_rate_limits(governor.stats(governor.keys_for_swarm(self.id)), self._rate_base)
            if governor is not None
            else []
        )
        end = (
            self.swarm.finished_at.ToMilliseconds()
            if self.swarm.HasField("finished_at")
            else int(time.time() * 1000)
        )
        stats = compute_stats(
            list(self.swarm.subtasks),
            execution_time_ms=max(0, end - self._created_ms),
            orchestrator_steps=self.orchestrator_steps,
            orchestrator_usage=self.orchestrator_usage,
            orchestrator_cost_usd=self.orchestrator_cost,
            # Each subtask's attempt number counts the attempts it started (a raced one: its variants).
            attempts_started=sum(max(s.attempt, len(s.variants) * bool(s.attempt)) for s in self.swarm.subtasks),
            rate_limits=rate_limits,
        )
        # The decomposition counts one step per call: all but the first were retries.
        stats.retries += max(0, self.orchestrator_steps - 1)
        if self.collapse is not None:
            stats.collapse.CopyFrom(self.collapse.stats())
        count_speculation(stats.collapse, self.swarm.subtasks)
        return stats

    # -- events and budgets ---------------------------------------------------

    def emit_update(self, state: common_pb2.SubTaskState, *, attempt: int = 0) -> None:
        self.log.emit(
            "subtask_update",
            common_pb2.SubTaskUpdate(
                subtask_id=state.subtask.id,
                name=state.subtask.name,
                status=state.status,
                agent_name=state.agent_name,
                reason=state.status_reason,
                attempt=attempt or state.attempt,
            ),
        )

    def warn(self, warning: PlanWarning) -> None:
        self.log.emit("warning", warning.to_proto())

    def check_spend(self, sid: str, estimated_tokens: int, estimated_cost: float) -> None:
        """Refuse (RESOURCE_EXHAUSTED) a model call the budgets cannot afford."""
        try:
            self.ledger.check_call(sid, estimated_tokens, estimated_cost)
        except ResourceExhausted as exc:
            self._budget_warning("tokens_or_cost", exc.message, sid)
            raise

    def reserve_tool_calls(self, sid: str, count: int) -> int:
        """Reserve tool calls; RESOURCE_EXHAUSTED past the swarm's budget."""
        try:
            return self.ledger.reserve_tool_calls(sid, count)
        except ResourceExhausted as exc:
            self._budget_warning("tool_calls", exc.message, sid)
            raise

    def _budget_warning(self, which: str, message: str, sid: str) -> None:
        """Say once per budget and subtask why calls are being refused."""
        key = (which, sid)
        if key in self._budget_warned or self.log.finished:
            return
        self._budget_warned.add(key)
        self.warn(PlanWarning("budget_exhausted", f"refused: {message}", sid))

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        self._span = self.ctx.tracer.start_span(
            "swarmd.swarm",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            attributes={"swarmd.swarm_id": self.id, "swarmd.task": self.swarm.task[:200]},
        )
        self._main = asyncio.get_running_loop().create_task(self._run(), name=f"swarm-{self.id}")

    async def _run(self) -> None:
        assert self._span is not None
        try:
            with trace.use_span(self._span, end_on_exit=False):
                if self._provider is not None:
                    await self._plan()
                if self._cancel_reason is None:
                    self._begin()
                    self._start_collapse()
                    try:
                        await self.scheduler.run_all()
                    finally:
                        if self.collapse is not None:
                            await self.collapse.stop(self.ctx.flush_timeout_secs)
                self._flush_warnings()
                await self._finalize()
        except asyncio.CancelledError:
            self.scheduler.end_spans()
            raise
        except Exception as exc:  # a bug: fail the swarm loudly rather than hang it
            log.exception("swarm %s crashed", self.id)
            self._crash(exc)
        finally:
            self._done.set()

    async def _plan(self) -> None:
        provider = self._provider
        assert provider is not None
        provider_name, model = parse_model_string(self.config.model)
        price = find_price(self.ctx.settings.prices, provider_name or "", model)
        backoff = Backoff(self.config.base_delay_ms, self.config.max_delay_ms, self.ctx.rng)
        try:
            with self.ctx.tracer.start_as_current_span(
                "swarmd.decompose", attributes={"swarmd.model": self.config.model}
            ):
                job = asyncio.ensure_future(
                    decompose(
                        provider,
                        self.swarm.task,
                        self.config,
                        price=price,
                        backoff=backoff,
                        sleep=self.ctx.sleep,
                        call_timeout_secs=decomposition_settings(
                            self.ctx.settings.decomposition_options, self.config
                        ).call_timeout_secs,
                        on_retry=self._decomposition_retry,
                    )
                )
                cancelled = asyncio.ensure_future(self._cancel_event.wait())
                try:
                    await asyncio.wait({job, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    cancelled.cancel()
                    if not job.done():
                        job.cancel()
                    await asyncio.gather(job, cancelled, return_exceptions=True)
        finally:
            self._provider = None
            with contextlib.suppress(Exception):
                await provider.aclose()
        if job.cancelled() or self._cancel_reason is not None:
            return
        result = job.result()
        self.orchestrator_steps += result.steps
        self.orchestrator_usage.CopyFrom(result.usage)
        self.orchestrator_cost += result.cost_usd
        self.ledger.record_overhead(result.usage.total_tokens, result.cost_usd)
        subtasks, stage_count, repairs = repair_model_plan(
            result.draft.subtasks, self.config.max_subagents
        )
        self.install_plan(subtasks, stage_count, result.draft.source)
        self.warnings[:0] = [*result.draft.warnings, *repairs]

    def _decomposition_retry(self, next_attempt: int, delay_ms: float, reason: str) -> None:
        """A retried decomposition call is announced like a subtask's retry
        (``subtask_id`` empty: the orchestrator's own call)."""
        self.log.emit(
            "retry_scheduled",
            common_pb2.RetryScheduled(
                subtask_id="",
                next_attempt=next_attempt,
                delay_ms=int(delay_ms),
                reason=f"decomposition call failed: {reason}",
            ),
        )

    def install_plan(
        self,
        subtasks: list[common_pb2.SubTask],
        stage_count: int,
        source: common_pb2.PlanSource,
    ) -> None:
        """Put the final plan into the swarm (subtasks pending or blocked)."""
        del self.swarm.subtasks[:]
        for sub in subtasks:
            state = self.swarm.subtasks.add()
            state.subtask.CopyFrom(sub)
            state.agent_name = f"agent-{sub.id}"
            state.status = (
                common_pb2.SUB_TASK_STATUS_BLOCKED
                if sub.dependencies
                else common_pb2.SUB_TASK_STATUS_PENDING
            )
        self.states = {s.subtask.id: s for s in self.swarm.subtasks}
        self.swarm.stage_count = stage_count
        self.swarm.plan_source = source

    def _begin(self) -> None:
        self.swarm.state = common_pb2.SWARM_STATE_RUNNING
        if not self.swarm.HasField("started_at"):
            self.swarm.started_at.GetCurrentTime()
        subtasks = [s.subtask for s in self.swarm.subtasks]
        # Started, then what was repaired or fell back, then the final plan.
        if not self.announced:
            self.log.emit(
                "started",
                common_pb2.SwarmStarted(task=self.swarm.task, total_subtasks=len(subtasks)),
            )
        self._flush_warnings()
        if not self.announced:
            self.announced = True
            self.log.emit(
                "decomposed",
                common_pb2.SwarmDecomposed(
                    subtasks=subtasks,
                    plan_source=self.swarm.plan_source,
                    stage_count=self.swarm.stage_count,
                    max_steps=self.config.max_steps_per_subagent,
                ),
            )
        if self._span is not None:
            self._span.set_attribute("swarmd.subtasks", len(subtasks))
        self.writer.save_swarm()

    def _flush_warnings(self) -> None:
        for warning in self.warnings:
            self.warn(warning)
        self.warnings.clear()

    def _start_collapse(self) -> None:
        """Start the collapse controller when the swarm asks for it (see :mod:`.collapse`)."""
        if not self.config.collapse.enabled:
            return
        branches = SwarmBranches(
            self.config, self.states, self.scheduler.dispatches, self.scheduler.committed.get, self.cancel_subtask
        )
        self.collapse = CollapseController(
            CollapseHost(
                swarm_id=self.id,
                config=self.config,
                base_commit=self.swarm.base_commit,
                sample=self.ctx.executor.sample_branch,
                candidates=branches.candidates,
                status=branches.status,
                branch=lambda sid: branch_name(self.id, sid),
                emit=self.log.emit,
                cancel=branches.cancel,
                audit=lambda kind, sid, detail: self.ctx.store.append_audit(self.id, kind, sid, detail),
            )
        )
        self.collapse.start()

    # -- cancellation ---------------------------------------------------------

    def cancel(self, reason: str) -> tuple[common_pb2.SwarmState, bool]:
        """Cancel the whole swarm; returns (state, already_finished). Idempotent."""
        if self.terminal:
            return self.swarm.state, True
        if self._cancel_reason is None:
            self._cancel_reason = reason or "cancelled by user"
            self._cancel_event.set()
            self.scheduler.cancel_all(self._cancel_reason)
        return common_pb2.SWARM_STATE_CANCELLED, False

    def cancel_subtask(
        self, sid: str, reason: str
    ) -> tuple[common_pb2.SubTaskStatus, bool, Running | None]:
        """Cancel one subtask; returns (status, already_finished, running dispatch)."""
        return self.scheduler.cancel_one(sid, reason or "cancelled by user")

    async def wait_subtask(self, sid: str, timeout: float) -> common_pb2.SubTaskStatus:
        return await self.scheduler.wait_subtask(sid, timeout)

    # -- the end --------------------------------------------------------------

    async def _finalize(self) -> None:
        swarm = self.swarm
        if self._cancel_reason is not None:
            for sid in self.states:
                if not self.scheduler.is_terminal(sid):
                    self.scheduler.cancel_waiting(sid, self._cancel_reason, resolve=False)
            swarm.state = common_pb2.SWARM_STATE_CANCELLED
        elif all(s.status == common_pb2.SUB_TASK_STATUS_COMPLETED for s in swarm.subtasks):
            swarm.state = common_pb2.SWARM_STATE_SUCCEEDED
        else:
            swarm.state = common_pb2.SWARM_STATE_FAILED
        swarm.finished_at.GetCurrentTime()
        stats = self._stats()
        swarm.stats.CopyFrom(stats)
        critical = set(stats.critical_path)
        for state in swarm.subtasks:
            state.on_critical_path = state.subtask.id in critical
        swarm.result = aggregate_result(list(swarm.subtasks))
        self.scheduler.end_spans(critical)
        success = swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
        self.log.emit(
            "complete",
            common_pb2.SwarmComplete(
                success=success, stats=stats, state=swarm.state, result=swarm.result
            ),
        )
        swarm.last_sequence = self.log.last_sequence
        self.writer.save_swarm(swarm)
        self.log.finish()
        if self._span is not None:
            state_name = common_pb2.SwarmState.Name(swarm.state)
            self._span.set_attribute("swarmd.state", state_name)
            self._span.set_attribute("swarmd.critical_path", list(stats.critical_path))
            if not success:
                self._span.set_status(trace.Status(trace.StatusCode.ERROR, state_name))
            self._span.end()
        await self.log.flush(self.ctx.flush_timeout_secs)
        await self.writer.flush(self.ctx.flush_timeout_secs)

    def _crash(self, exc: BaseException) -> None:
        swarm = self.swarm
        message = f"internal error: {type(exc).__name__}: {exc}"
        self.scheduler.abort()
        swarm.state = common_pb2.SWARM_STATE_FAILED
        swarm.error = message
        swarm.finished_at.GetCurrentTime()
        with contextlib.suppress(RuntimeError):  # the log may be finished already
            self.log.emit("error", common_pb2.SwarmError(message=message))
            self.log.finish()
        swarm.last_sequence = self.log.last_sequence
        self.writer.save_swarm(swarm)
        self.scheduler.end_spans()
        if self._span is not None and self._span.is_recording():
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, message))
            self._span.end()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run's main task has ended; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self, why: str = "its orchestrator was stopped") -> None:
        """Stop without cancelling anything (the host is going away): a swarm
        not finished yet is stored INTERRUPTED, resumable."""
        tasks = self.scheduler.abort()
        if self._main is not None and not self._main.done():
            self._main.cancel()
            tasks.append(self._main)
        await asyncio.gather(*tasks, return_exceptions=True)
        self.scheduler.end_spans()
        if not self.terminal and not self.log.finished:
            mark_interrupted(self.swarm, why)
            self.warn(PlanWarning("swarm_interrupted", self.swarm.error))
            self.log.finish()
            self.writer.save_swarm()
        if self._span is not None and self._span.is_recording():
            self._span.end()
        await self.close()

    async def close(self) -> None:
        """Flush (within the timeout) and stop the event and state writers."""
        await self.log.aclose(self.ctx.flush_timeout_secs)
        await self.writer.aclose(self.ctx.flush_timeout_secs)
