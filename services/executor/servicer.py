"""ExecutorService implementation."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import grpc

from swarmd.plugins import Executor, ExecutorContext, MissingExtra
from swarmd.plugins.manager import Plugins
from swarmd.plugins.registry import UnknownPlugin
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings
from swarmd.services.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    grpc_errors,
)
from swarmd.services.executor.branch_sample import sample_branch
from swarmd.services.executor.model_check import check_model
from swarmd.services.executor.streams import AttemptStreams, plugin_label
from swarmd.services.telemetry import swarmd_version
from swarmd.v1 import executor_pb2, executor_pb2_grpc

__all__ = ["ExecutorServicer", "build_executor"]

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_INSTRUCTION_CHARS = 100_000


def validate_request(request: executor_pb2.ExecuteSubTaskRequest) -> None:
    """Refuse malformed requests before any work starts (INVALID_ARGUMENT)."""
    if not _ID.match(request.swarm_id):
        raise InvalidArgument(f"swarm_id {request.swarm_id!r} is not a valid id ([A-Za-z0-9._-], 1-128 chars)")
    st = request.subtask
    if not _ID.match(st.id):
        raise InvalidArgument(f"subtask.id {st.id!r} is not a valid id ([A-Za-z0-9._-], 1-128 chars)")
    if not st.instruction.strip():
        raise InvalidArgument(f"subtask {st.id!r} has an empty instruction")
    if len(st.instruction) > MAX_INSTRUCTION_CHARS:
        raise InvalidArgument(
            f"subtask {st.id!r} instruction is {len(st.instruction)} characters (max {MAX_INSTRUCTION_CHARS})"
        )
    if request.attempt < 0:
        raise InvalidArgument("attempt must not be negative")
    if request.heartbeat_interval_ms < 0 or request.reattach_window_ms < 0:
        raise InvalidArgument("heartbeat_interval_ms and reattach_window_ms must not be negative")
    if not request.config.model:
        raise InvalidArgument("config.model is required (e.g. openai/gpt-4o or replay/cassette.jsonl)")


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    """Routes requests to executor plugins and tracks what runs where.

    Attempts run detached from their RPCs (:mod:`.streams`), so a broken
    stream can be picked up again with AttachSubTask.
    """

    def __init__(self, settings: ExecutorSettings, context: ExecutorContext) -> None:
        self._settings = settings
        self._context = context
        self._executors: dict[str, Executor] = {}
        self._lock = asyncio.Lock()
        self._streams = AttemptStreams()
        self._closed = False

    @property
    def plugins(self) -> Plugins:
        return self._context.plugins

    async def executor(self, name: str) -> Executor:
        name = name or self._settings.default_executor
        async with self._lock:
            if name not in self._executors:
                try:
                    entry = self.plugins.executors.entry(name)
                except UnknownPlugin as exc:
                    raise InvalidArgument(str(exc)) from None
                try:
                    self._executors[name] = entry.cls(self._context)
                except MissingExtra as exc:
                    raise FailedPrecondition(str(exc)) from None
                except Exception as exc:
                    log.exception("executor plugin %r could not be created", name)
                    origin = entry.distribution or entry.cls.__module__
                    raise FailedPrecondition(
                        f"executor plugin {name!r} ({origin}) could not be created: {type(exc).__name__}: {exc}"
                    ) from exc
            return self._executors[name]

    def _plugin_label(self, executor: Executor) -> str:
        name = getattr(executor, "name", "")
        entry = self.plugins.executors.entry(name) if name in self.plugins.executors else None
        return plugin_label(executor, entry.distribution if entry else "")

    def in_flight(self) -> int:
        return self._streams.running()

    def _heartbeat_secs(self, interval_ms: int) -> float:
        return interval_ms / 1000 if interval_ms > 0 else self._settings.heartbeat_interval_secs

    @grpc_errors
    async def ExecuteSubTask(
        self, request: executor_pb2.ExecuteSubTaskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        validate_request(request)
        executor = await self.executor(request.config.executor)
        cap = self._settings.capacity
        if cap and self.in_flight() >= cap:
            raise ResourceExhausted(f"executor service is at capacity ({cap} sub-agents running)")
        record = await self._streams.start(
            request, executor, window_secs=request.reattach_window_ms / 1000, plugin=self._plugin_label(executor)
        )
        async for message in self._streams.follow(record, 0, self._heartbeat_secs(request.heartbeat_interval_ms)):
            yield message

    @grpc_errors
    async def AttachSubTask(
        self, request: executor_pb2.AttachSubTaskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[executor_pb2.AttachSubTaskResponse]:
        if not _ID.match(request.swarm_id) or not _ID.match(request.subtask_id):
            raise InvalidArgument("swarm_id and subtask_id must be valid ids ([A-Za-z0-9._-], 1-128 chars)")
        if request.after_sequence < 0 or request.heartbeat_interval_ms < 0:
            raise InvalidArgument("after_sequence and heartbeat_interval_ms must not be negative")
        record = self._streams.get(request.swarm_id, request.subtask_id)
        if record is None or request.attempt not in record.attempts:
            raise NotFound(
                f"attempt {request.attempt} of subtask {request.subtask_id} of swarm {request.swarm_id} "
                "is not running on this executor"
            )
        heartbeat_secs = self._heartbeat_secs(request.heartbeat_interval_ms)
        async for message in self._streams.follow(record, request.after_sequence, heartbeat_secs):
            yield executor_pb2.AttachSubTaskResponse(message=message)

    @grpc_errors
    async def CancelSubTask(
        self, request: executor_pb2.ExecutorServiceCancelSubTaskRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.ExecutorServiceCancelSubTaskResponse:
        if not request.swarm_id or not request.subtask_id:
            raise InvalidArgument("swarm_id and subtask_id are required")
        record = self._streams.get(request.swarm_id, request.subtask_id)
        cancelled = False
        if record is not None and not record.finished:
            record.cancel_requested = True
            cancelled = await record.executor.cancel(request.swarm_id, request.subtask_id, request.reason)
        return executor_pb2.ExecutorServiceCancelSubTaskResponse(cancelled=cancelled)

    @grpc_errors
    async def Describe(
        self, request: executor_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.DescribeResponse:
        infos = []
        for entry in self.plugins.executors:
            live = self._executors.get(entry.name)
            infos.append(
                executor_pb2.ExecutorPluginInfo(
                    name=entry.name,
                    description=getattr(entry.cls, "description", ""),
                    distribution=entry.distribution,
                    capacity=live.capacity if live else 0,
                    in_flight=live.in_flight if live else 0,
                )
            )
        return executor_pb2.DescribeResponse(
            executors=infos,
            default_executor=self._settings.default_executor,
            in_flight=self.in_flight(),
            version=swarmd_version(),
        )

    @grpc_errors
    async def CheckModel(
        self, request: executor_pb2.CheckModelRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.CheckModelResponse:
        return await check_model(self.plugins, self._settings.options, request)

    @grpc_errors
    async def SampleBranch(
        self, request: executor_pb2.SampleBranchRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.SampleBranchResponse:
        record = self._streams.get(request.swarm_id, request.subtask_id) if request.subtask_id else None
        running = record.executor if record is not None and not record.finished else None
        return await sample_branch(self.plugins, request, running)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._streams.aclose()
        for name, executor in list(self._executors.items()):
            try:
                await executor.aclose()
            except Exception:
                log.exception("executor plugin %s failed to close", name)


async def build_executor(host: ServiceHost, settings: ExecutorSettings, plugins: Plugins) -> ExecutorServicer:
    """Register the ExecutorService on ``host``; plugins close when it stops."""
    if settings.default_executor not in plugins.executors:
        known = ", ".join(plugins.executors.names()) or "none"
        raise InvalidArgument(f"default executor {settings.default_executor!r} is not loaded (available: {known})")
    context = ExecutorContext(
        plugins=plugins,
        options=dict(settings.options),
        tracer=host.telemetry.tracer,
        channel_factory=host.channel,
    )
    servicer = ExecutorServicer(settings, context)
    host.add_service(
        "swarmd.v1.ExecutorService",
        lambda server: executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, server),
    )
    host.on_close(servicer.aclose)
    return servicer
