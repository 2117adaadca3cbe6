"""Running one subtask on the executor: attempts, retries, timeout, cancellation.

:class:`SubtaskDispatch` sends ``ExecuteSubTask`` for each attempt and
consumes the stream (events are handed to the run as they come; the last
message is the attempt's result). Around the attempts:

* **retries** only for transient failures (see :mod:`.retry`), with capped
  exponential backoff and full jitter, at most ``max_retries`` times;
* a **wall-clock timeout** over all attempts (``subtask_timeout_secs``):
  the stream is cancelled, the executor told, and the subtask is TIMED_OUT;
* **cancellation** (:meth:`SubtaskDispatch.cancel`): the executor is asked to
  stop the sub-agent (``CancelSubTask``; its worktree is kept), the stream
  gets a short grace period to deliver the final result (so its steps and
  partial output are kept), then it is cancelled. A result that turns out
  to be a success is kept: finished work is never thrown away.

Every attempt's figures are summed into the final result: steps, tool calls,
tokens, cost; ``retry_count`` is attempts - 1 and ``execution_time_ms`` runs
from the first dispatch to the final outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from swarmd.services.errors import SwarmdError
from swarmd.services.orchestrator.peers import ExecutorClient
from swarmd.services.orchestrator.retry import (
    Backoff,
    classify_failure,
    is_transient_kind,
)
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["DispatchHooks", "DispatchLimits", "SubtaskDispatch"]

FailureKind: TypeAlias = common_pb2.FailureKind

log = logging.getLogger(__name__)


class DispatchHooks(Protocol):
    """What the swarm run does around one subtask's attempts."""

    def build_request(self, attempt: int) -> executor_pb2.ExecuteSubTaskRequest: ...

    def budget_exhausted(self) -> str: ...

    def attempt_started(self, attempt: int) -> None: ...

    def on_event(self, event: common_pb2.SwarmEvent) -> None: ...

    def attempt_failed(
        self, attempt: int, result: common_pb2.SubTaskResult, kind: FailureKind
    ) -> None: ...

    def retry_scheduled(self, next_attempt: int, delay_ms: float, reason: str) -> None: ...

    def on_notice(self, code: str, message: str) -> None:
        """The executor stream broke and was reattached, the executor is
        unreachable and waited for, or it lost the attempt (see
        :mod:`swarmd.plugins.executors.follow`)."""


@dataclass(frozen=True)
class DispatchLimits:
    max_retries: int
    subtask_timeout_secs: float
    cancel_grace_secs: float = 2.0
    rpc_timeout_secs: float = 10.0


def _failure(status: common_pb2.SubTaskStatus, kind: FailureKind, error: str) -> common_pb2.SubTaskResult:
    return common_pb2.SubTaskResult(success=False, status=status, failure_kind=kind, error=error)


class SubtaskDispatch:
    """All attempts of one subtask; ``await run()`` returns the final result."""

    def __init__(
        self,
        executor: ExecutorClient,
        hooks: DispatchHooks,
        *,
        swarm_id: str,
        subtask_id: str,
        limits: DispatchLimits,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        first_attempt: int = 1,
        retries_used: int = 0,
    ) -> None:
        self._executor = executor
        self._hooks = hooks
        self._swarm_id = swarm_id
        self._subtask_id = subtask_id
        self._limits = limits
        self._backoff = backoff
        self._sleep = sleep
        self._next_attempt = first_attempt
        self._retries_used = retries_used
        self._cancel = asyncio.Event()
        self._deadline: float | None = None
        self.cancel_reason = ""
        self.attempts = 0
        self._steps = 0
        self._tool_calls = 0
        self._usage = common_pb2.TokenUsage()
        self._cost = 0.0

    # -- control ----------------------------------------------------------

    def cancel(self, reason: str) -> None:
        """Ask the subtask to stop (idempotent; the first reason wins)."""
        if not self._cancel.is_set():
            self.cancel_reason = reason or "cancelled"
            self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    async def _tell_executor(self, reason: str) -> None:
        with contextlib.suppress(SwarmdError, asyncio.TimeoutError):
            async with asyncio.timeout(self._limits.rpc_timeout_secs):
                await self._executor.cancel(self._swarm_id, self._subtask_id, reason)

    # -- running ----------------------------------------------------------

    async def run(self) -> common_pb2.SubTaskResult:
        started = time.monotonic()
        timeout = self._limits.subtask_timeout_secs
        self._deadline = started + timeout if timeout > 0 else None
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                final = await self._attempts()
        except TimeoutError:
            await self._tell_executor(f"wall-clock timeout of {timeout:g}s")
            final = _failure(
                common_pb2.SUB_TASK_STATUS_TIMED_OUT,
                common_pb2.FAILURE_KIND_TIMEOUT,
                f"subtask exceeded its wall-clock timeout of {timeout:g}s",
            )
        final.subtask_id = self._subtask_id
        final.subagent_id = final.subagent_id or f"agent-{self._subtask_id}"
        final.steps = self._steps
        final.tool_calls = self._tool_calls
        final.usage.CopyFrom(self._usage)
        final.cost_usd = self._cost
        final.retry_count = max(0, self.attempts - 1)
        final.execution_time_ms = int((time.monotonic() - started) * 1000)
        if final.success:
            final.status = common_pb2.SUB_TASK_STATUS_COMPLETED
            final.failure_kind = common_pb2.FAILURE_KIND_UNSPECIFIED
            final.error = ""
        return final

    def _cancelled(
        self, partial: common_pb2.SubTaskResult | None = None
    ) -> common_pb2.SubTaskResult:
        result = common_pb2.SubTaskResult()
        if partial is not None:
            result.CopyFrom(partial)
        result.success = False
        result.status = common_pb2.SUB_TASK_STATUS_CANCELLED
        result.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
        result.error = f"cancelled: {self.cancel_reason}"
        return result

    def _add(self, result: common_pb2.SubTaskResult) -> None:
        self._steps += result.steps
        self._tool_calls += result.tool_calls
        u = result.usage
        self._usage.prompt_tokens += u.prompt_tokens
        self._usage.completion_tokens += u.completion_tokens
        self._usage.total_tokens += u.total_tokens or (u.prompt_tokens + u.completion_tokens)
        self._usage.cache_read_tokens += u.cache_read_tokens
        self._usage.cache_write_tokens += u.cache_write_tokens
        self._cost += result.cost_usd

    async def _attempts(self) -> common_pb2.SubTaskResult:
        retries = self._retries_used
        while True:
            if self._cancel.is_set():
                return self._cancelled()
            why = self._hooks.budget_exhausted()
            if why:
                return _failure(
                    common_pb2.SUB_TASK_STATUS_FAILED, common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED, why
                )
            attempt = self._next_attempt
            self._next_attempt += 1
            self.attempts += 1
            self._hooks.attempt_started(attempt)
            result = await self._attempt(attempt)
            self._add(result)
            if result.success:
                return result
            if self._cancel.is_set():
                return self._cancelled(result)
            kind = classify_failure(result)
            result.failure_kind = kind
            self._hooks.attempt_failed(attempt, result, kind)
            if is_transient_kind(kind) and retries < self._limits.max_retries:
                delay_ms = self._backoff.delay_ms(retries)
                retries += 1
                self._hooks.retry_scheduled(self._next_attempt, delay_ms, result.error)
                if await self._sleep_unless_cancelled(delay_ms / 1000):
                    return self._cancelled()
                continue
            if kind == common_pb2.FAILURE_KIND_TIMEOUT:
                result.status = common_pb2.SUB_TASK_STATUS_TIMED_OUT
            elif kind == common_pb2.FAILURE_KIND_CANCELLED:
                result.status = common_pb2.SUB_TASK_STATUS_CANCELLED
            else:
                result.status = common_pb2.SUB_TASK_STATUS_FAILED
            return result

    async def _sleep_unless_cancelled(self, seconds: float) -> bool:
        """Back off; True when cancelled meanwhile."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waiter = asyncio.ensure_future(self._cancel.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
            await asyncio.gather(sleeper, waiter, return_exceptions=True)
        return self._cancel.is_set()

    async def _attempt(self, attempt: int) -> common_pb2.SubTaskResult:
        request = self._hooks.build_request(attempt)
        # The wall-clock timeout is enforced here; the call's own deadline is a
        # backstop a little later, so a lost executor cannot hold the call open.
        deadline = (
            None if self._deadline is None else max(1.0, self._deadline - time.monotonic()) + 30.0
        )
        stream = self._executor.execute(request, timeout=deadline, notice=self._hooks.on_notice)
        consume = asyncio.ensure_future(self._consume(stream))
        waiter = asyncio.ensure_future(self._cancel.wait())
        try:
            await asyncio.wait({consume, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not consume.done():
                # Cancellation: tell the executor, give the stream a moment to
                # deliver the final (partial) result, then hang up.
                await self._tell_executor(self.cancel_reason)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._limits.cancel_grace_secs):
                        await asyncio.shield(consume)
            if consume.done() and not consume.cancelled():
                error = consume.exception()
                if error is None:
                    return consume.result()
                log.error("reading the executor's stream failed", exc_info=error)
                return _failure(
                    common_pb2.SUB_TASK_STATUS_FAILED,
                    common_pb2.FAILURE_KIND_PERMANENT,
                    f"internal error while reading the executor's stream: {error!r}",
                )
            return self._cancelled()
        finally:
            waiter.cancel()
            if not consume.done():
                consume.cancel()
            await asyncio.gather(consume, waiter, return_exceptions=True)

    async def _consume(
        self, stream: AsyncIterator[executor_pb2.ExecuteSubTaskResponse]
    ) -> common_pb2.SubTaskResult:
        """Events go to the hooks; the result ends it (the stream always has one:
        transport failures it could not ride out come as failed results)."""
        try:
            async for message in stream:
                which = message.WhichOneof("payload")
                if which == "event":
                    self._hooks.on_event(message.event)
                elif which == "result":
                    return message.result
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return _failure(
            common_pb2.SUB_TASK_STATUS_FAILED,
            common_pb2.FAILURE_KIND_TRANSIENT,
            "the executor's stream ended without a result",
        )
