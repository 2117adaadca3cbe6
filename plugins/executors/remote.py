"""The ``remote`` executor plugin: forwards subtasks to another executor service.

One orchestrator can drive executors on many machines: an executor service
configured with ``default_executor: remote`` and the option
``remote_address: HOST:PORT`` forwards every ``ExecuteSubTask`` over gRPC to
the executor service at that address (which runs it with its own default
plugin, or the one named by the option ``remote_executor``). A swarm can also
pick the target per run with ``executor_options: {remote_address: ...}``.

The forwarded attempt is followed like the orchestrator follows its own
(:mod:`swarmd.plugins.executors.follow`): a broken stream is reattached, an
unreachable peer waited for (a little less long than the caller's reattach
window); a peer gone for longer ends the attempt with a TRANSIENT failure,
so the orchestrator retries it with backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from swarmd.plugins import Executor, ExecutorContext, hookimpl
from swarmd.plugins.executor import unfinished_result
from swarmd.plugins.executors.follow import FollowPolicy, follow_attempt
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

__all__ = ["RemoteExecutor"]

ADDRESS_OPTION = "remote_address"
TARGET_OPTION = "remote_executor"


class RemoteExecutor(Executor):
    name = "remote"
    description = "forwards sub-agents to another swarmd executor service over gRPC"

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._where: dict[tuple[str, str], str] = {}

    @property
    def in_flight(self) -> int:
        return len(self._where)

    def _stub(self, address: str) -> executor_pb2_grpc.ExecutorServiceStub:
        if address not in self._channels:
            factory = self.context.channel_factory
            self._channels[address] = factory(address) if factory else grpc.aio.insecure_channel(address)
        return executor_pb2_grpc.ExecutorServiceStub(self._channels[address])

    def _address(self, request: executor_pb2.ExecuteSubTaskRequest) -> str:
        return request.config.executor_options.get(ADDRESS_OPTION) or self.context.options.get(ADDRESS_OPTION, "")

    async def submit(
        self, request: executor_pb2.ExecuteSubTaskRequest
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        address = self._address(request)
        started = time.monotonic()
        if not address:
            yield _failure(request, started, f"remote executor has no {ADDRESS_OPTION} option", transient=False)
            return
        forwarded = executor_pb2.ExecuteSubTaskRequest()
        forwarded.CopyFrom(request)
        forwarded.config.executor = (
            request.config.executor_options.get(TARGET_OPTION) or self.context.options.get(TARGET_OPTION, "")
        )
        if forwarded.config.executor == self.name:
            forwarded.config.executor = ""
        key = (request.swarm_id, request.subtask.id)
        self._where[key] = address
        try:
            async for message in follow_attempt(self._stub(address), forwarded, _policy(request)):
                if message.HasField("result") and not message.result.subtask_id:
                    # A failure of the forwarding itself: say where it happened.
                    message.result.error = f"remote executor {address}: {message.result.error}"
                    message.result.subtask_id = request.subtask.id
                    message.result.subagent_id = f"agent-{request.subtask.id}"
                    message.result.execution_time_ms = int((time.monotonic() - started) * 1000)
                yield message
        finally:
            self._where.pop(key, None)

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        address = self._where.get((swarm_id, subtask_id))
        if address is None:
            return False
        try:
            reply = await self._stub(address).CancelSubTask(
                executor_pb2.ExecutorServiceCancelSubTaskRequest(
                    swarm_id=swarm_id, subtask_id=subtask_id, reason=reason
                ),
                timeout=10,
            )
        except grpc.aio.AioRpcError:
            return False
        return reply.cancelled

    async def aclose(self) -> None:
        channels, self._channels = self._channels, {}
        await asyncio.gather(*(ch.close() for ch in channels.values()), return_exceptions=True)


def _policy(request: executor_pb2.ExecuteSubTaskRequest) -> FollowPolicy:
    """Follow the peer within what the caller asked of us."""
    heartbeat = request.heartbeat_interval_ms / 1000 if request.heartbeat_interval_ms > 0 else 10.0
    window = request.reattach_window_ms / 1000
    if window <= 0:
        return FollowPolicy(heartbeat_secs=heartbeat, outage_secs=2.0, reattach_window_secs=0.0)
    return FollowPolicy(heartbeat_secs=heartbeat, outage_secs=max(1.0, window * 0.8), reattach_window_secs=window)


def _failure(
    request: executor_pb2.ExecuteSubTaskRequest, started: float, error: str, *, transient: bool = True
) -> executor_pb2.ExecuteSubTaskResponse:
    kind = common_pb2.FAILURE_KIND_TRANSIENT if transient else common_pb2.FAILURE_KIND_PERMANENT
    return unfinished_result(request, error, kind=kind, execution_time_ms=int((time.monotonic() - started) * 1000))


@hookimpl
def swarmd_register_executors(registry: Any) -> None:
    registry.add(RemoteExecutor)
