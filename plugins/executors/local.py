"""The ``local`` executor: sub-agents as asyncio tasks inside the executor service.

The executor service creates it once with its context::

    executor = LocalExecutor(ExecutorContext(plugins=plugins, options={"capacity": "8"},
                                             tracer=tracer, channel_factory=host.channel))
    async for message in executor.submit(request):   # events..., then one result
        ...
    await executor.cancel(swarm_id, subtask_id, "user asked")   # -> CANCELLED result
    await executor.aclose()

Each :meth:`~LocalExecutor.submit` runs :func:`swarmd.plugins.runtime.attempt.run_attempt`
as its own task and streams what it emits; the stream ends with exactly one
result. The sub-agents' model providers share HTTP clients (and their open
connections) through one :class:`~swarmd.plugins.providers.http_clients.HttpClientPool`,
closed with the executor. Options (``executor.options`` of the service):

``capacity``
    sub-agents run at once (default 0 = unbounded). Submissions beyond it
    wait for a slot (the service refuses with RESOURCE_EXHAUSTED at its own
    ``executor.capacity`` before that).
plus the runtime's options (``provider.*``, ``record_path``, ``context_window``...,
see :mod:`swarmd.plugins.runtime.attempt`).

:meth:`~LocalExecutor.cancel` stops the sub-agent at its next await: a
running tool's subprocesses are killed with their process group, the result
is CANCELLED and the worktree is kept. Closing the stream early (the caller
went away) or :meth:`~LocalExecutor.aclose` stops it as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swarmd.plugins import Executor, ExecutorContext, hookimpl
from swarmd.plugins.executor import unfinished_result
from swarmd.plugins.runtime.channels import ChannelPool
from swarmd.v1 import common_pb2, executor_pb2

if TYPE_CHECKING:
    from swarmd.plugins.runtime.wrapup import CancelToken

__all__ = ["LocalExecutor", "swarmd_register_executors"]

log = logging.getLogger(__name__)


def _token() -> CancelToken:
    from swarmd.plugins.runtime.wrapup import CancelToken

    return CancelToken()


@dataclass
class _Run:
    token: CancelToken = field(default_factory=_token)
    task: asyncio.Task[None] | None = None
    #: Set on cancel, so a submission still waiting for a slot stops waiting.
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


def _final(
    request: executor_pb2.ExecuteSubTaskRequest, status: common_pb2.SubTaskStatus, kind: common_pb2.FailureKind, error: str
) -> executor_pb2.ExecuteSubTaskResponse:
    """A result for an attempt that never got to (or never finished) running."""
    return unfinished_result(request, error, kind=kind, status=status)


class LocalExecutor(Executor):
    """Runs each subtask attempt as an asyncio task in this process."""

    name = "local"
    description = "Sub-agents as asyncio tasks inside the executor service"

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        raw = context.options.get("capacity", "0") or "0"
        try:
            capacity = int(raw)
        except ValueError:
            raise ValueError(f"local executor option capacity={raw!r} is not an integer") from None
        if capacity < 0:
            raise ValueError("local executor option capacity must be 0 (unbounded) or more")
        self._capacity = capacity
        self._slots = asyncio.Semaphore(capacity) if capacity else None
        self._runs: dict[tuple[str, str], _Run] = {}
        # The agent runtime (tools, providers, worktrees) is loaded by the process
        # that runs sub-agents, not by every process that knows the executor's name.
        from swarmd.plugins.providers.http_clients import HttpClientPool
        from swarmd.plugins.runtime.attempt import Runtime

        self._channels = ChannelPool(context.channel_factory)
        self._http_clients = HttpClientPool()
        self.runtime = Runtime(
            plugins=context.plugins,
            channels=self._channels,
            tracer=context.tracer,
            options=dict(context.options),
            executor_name=self.name,
            http_clients=self._http_clients,
        )
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_flight(self) -> int:
        return sum(1 for run in self._runs.values() if run.task is not None and not run.task.done())

    async def submit(
        self, request: executor_pb2.ExecuteSubTaskRequest
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        key = (request.swarm_id, request.subtask.id)
        if self._closed:
            yield _final(
                request,
                common_pb2.SUB_TASK_STATUS_FAILED,
                common_pb2.FAILURE_KIND_TRANSIENT,
                "the local executor is shutting down",
            )
            return
        if key in self._runs:
            yield _final(
                request,
                common_pb2.SUB_TASK_STATUS_FAILED,
                common_pb2.FAILURE_KIND_PERMANENT,
                f"subtask {request.subtask.id} of swarm {request.swarm_id} is already running on this executor",
            )
            return
        run = _Run()
        self._runs[key] = run
        queue: asyncio.Queue[executor_pb2.ExecuteSubTaskResponse] = asyncio.Queue()
        holding_slot = False
        try:
            holding_slot = await self._take_slot(run)
            if run.token.requested:
                yield _final(
                    request,
                    common_pb2.SUB_TASK_STATUS_CANCELLED,
                    common_pb2.FAILURE_KIND_CANCELLED,
                    f"Sub-agent cancelled before it started: {run.token.reason}",
                )
                return
            run.task = asyncio.create_task(
                self._execute(request, queue, run.token), name=f"swarmd-subagent-{request.subtask.id}"
            )
            while True:
                message = await queue.get()
                yield message
                if message.HasField("result"):
                    return
        finally:
            task = run.task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if holding_slot and self._slots is not None:
                self._slots.release()
            if self._runs.get(key) is run:
                del self._runs[key]

    async def _take_slot(self, run: _Run) -> bool:
        """Wait for a free slot, or for a cancel; True when a slot is held."""
        if self._slots is None:
            return False
        acquiring = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(run.stopped.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if acquiring.done() and not acquiring.cancelled():
                self._slots.release()
            raise
        finally:
            stopping.cancel()
            if not acquiring.done():
                acquiring.cancel()
        return acquiring.done() and not acquiring.cancelled()

    async def _execute(
        self,
        request: executor_pb2.ExecuteSubTaskRequest,
        queue: asyncio.Queue[executor_pb2.ExecuteSubTaskResponse],
        token: CancelToken,
    ) -> None:
        def emit(event: common_pb2.SwarmEvent) -> None:
            queue.put_nowait(executor_pb2.ExecuteSubTaskResponse(event=event))

        final: executor_pb2.ExecuteSubTaskResponse | None = None
        try:
            from swarmd.plugins.runtime.attempt import run_attempt

            result = await run_attempt(request, self.runtime, emit=emit, cancel=token)
            final = executor_pb2.ExecuteSubTaskResponse(result=result)
        except asyncio.CancelledError:
            final = _final(
                request,
                common_pb2.SUB_TASK_STATUS_CANCELLED,
                common_pb2.FAILURE_KIND_CANCELLED,
                "Sub-agent stopped: the executor is shutting down",
            )
            raise
        except Exception as exc:
            log.exception("sub-agent %s crashed", request.subtask.id)
            final = _final(
                request,
                common_pb2.SUB_TASK_STATUS_FAILED,
                common_pb2.FAILURE_KIND_PERMANENT,
                f"executor error: {type(exc).__name__}: {exc}",
            )
        finally:
            # Whatever happened, the stream gets its one result and ends.
            if final is None:
                final = _final(
                    request, common_pb2.SUB_TASK_STATUS_FAILED, common_pb2.FAILURE_KIND_PERMANENT, "sub-agent aborted"
                )
            queue.put_nowait(final)

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        run = self._runs.get((swarm_id, subtask_id))
        if run is None:
            return False
        if not run.token.requested:
            run.token.request(reason)
            run.stopped.set()
            if run.task is not None and not run.task.done():
                run.task.cancel()
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = [run.task for run in self._runs.values() if run.task is not None and not run.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._http_clients.aclose()
        finally:
            await self._channels.aclose()


@hookimpl
def swarmd_register_executors(registry: Any) -> None:
    registry.add(LocalExecutor)
