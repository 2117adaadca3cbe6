"""Typed clients of the orchestrator's peers: the result store and the executor.

Every unary call carries a deadline (``rpc_timeout_secs``) and a peer's
``grpc.RpcError`` becomes the matching swarmd domain error, so the rest of
the orchestrator never handles raw gRPC errors (an unreachable store stays
UNAVAILABLE all the way to the client). The channels come from
:meth:`ServiceHost.channel` (traced, so trace context reaches the peers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from swarmd.plugins.executors.follow import FollowPolicy, NoticeSink, follow_attempt
from swarmd.services.errors import from_rpc_error
from swarmd.v1 import (
    common_pb2,
    executor_pb2,
    executor_pb2_grpc,
    result_store_pb2,
    result_store_pb2_grpc,
)

__all__ = ["ExecutorClient", "StoreClient"]


class StoreClient:
    """The parts of ResultStoreService the orchestrator uses."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        self.timeout = timeout

    async def save_swarm(self, swarm: common_pb2.Swarm) -> None:
        try:
            await self._stub.SaveSwarmState(
                result_store_pb2.SaveSwarmStateRequest(swarm=swarm), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def save_subtask(self, swarm_id: str, state: common_pb2.SubTaskState) -> None:
        try:
            await self._stub.SaveSubTaskState(
                result_store_pb2.SaveSubTaskStateRequest(swarm_id=swarm_id, state=state),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def load_swarm(self, swarm_id: str) -> common_pb2.Swarm:
        try:
            response = await self._stub.LoadSwarmState(
                result_store_pb2.LoadSwarmStateRequest(swarm_id=swarm_id), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return response.swarm

    async def list_swarms(
        self, request: result_store_pb2.ListSwarmStatesRequest
    ) -> list[common_pb2.Swarm]:
        """One page of stored swarms (filters, order and cursor as ``request`` says)."""
        try:
            response = await self._stub.ListSwarmStates(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return list(response.swarms)

    async def append_events(self, swarm_id: str, events: Sequence[common_pb2.SwarmEvent]) -> int:
        try:
            response = await self._stub.AppendEvents(
                result_store_pb2.AppendEventsRequest(swarm_id=swarm_id, events=events),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return response.last_sequence

    async def append_audit(
        self, swarm_id: str, kind: str, subtask_id: str, detail: dict[str, object]
    ) -> int:
        """Store an audit record (a decision and the facts behind it); returns its id."""
        record = result_store_pb2.AuditRecord(swarm_id=swarm_id, kind=kind, subtask_id=subtask_id)
        record.detail.update(detail)
        try:
            response = await self._stub.AppendAuditRecord(
                result_store_pb2.AppendAuditRecordRequest(record=record), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return response.id

    async def list_audit(self, swarm_id: str, kind: str = "") -> list[result_store_pb2.AuditRecord]:
        """A swarm's audit records, oldest first."""
        try:
            response = await self._stub.ListAuditRecords(
                result_store_pb2.ListAuditRecordsRequest(swarm_id=swarm_id, kind=kind),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return list(response.records)

    async def read_events(
        self, swarm_id: str, after_sequence: int, limit: int = 1000
    ) -> tuple[list[common_pb2.SwarmEvent], int]:
        try:
            response = await self._stub.ReadEvents(
                result_store_pb2.ReadEventsRequest(
                    swarm_id=swarm_id, after_sequence=after_sequence, limit=limit
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return list(response.events), response.last_sequence


class ExecutorClient:
    """ExecutorService: an attempt is followed across broken streams
    (:func:`~swarmd.plugins.executors.follow.follow_attempt`, failures come
    back as failed results); the unary calls are wrapped."""

    def __init__(
        self, channel: grpc.aio.Channel, timeout: float, policy: FollowPolicy | None = None
    ) -> None:
        self.stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        self.timeout = timeout
        self.policy = policy or FollowPolicy()

    def execute(
        self,
        request: executor_pb2.ExecuteSubTaskRequest,
        timeout: float | None,
        notice: NoticeSink | None = None,
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        """The attempt's events, then its result (see ``follow_attempt``)."""
        return follow_attempt(self.stub, request, self.policy, timeout=timeout, notice=notice)

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str) -> bool:
        try:
            response = await self.stub.CancelSubTask(
                executor_pb2.ExecutorServiceCancelSubTaskRequest(
                    swarm_id=swarm_id, subtask_id=subtask_id, reason=reason
                ),
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return response.cancelled

    async def describe(self, timeout: float | None = None) -> executor_pb2.DescribeResponse:
        try:
            return await self.stub.Describe(
                executor_pb2.DescribeRequest(), timeout=timeout or self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def check_model(
        self, model: str, executor_options: dict[str, str], timeout: float | None = None
    ) -> executor_pb2.CheckModelResponse:
        """Ask the executor service whether its sub-agents can use ``model``."""
        try:
            return await self.stub.CheckModel(
                executor_pb2.CheckModelRequest(model=model, executor_options=executor_options),
                timeout=timeout or self.timeout,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def sample_branch(
        self, request: executor_pb2.SampleBranchRequest, timeout: float
    ) -> executor_pb2.SampleBranchResponse:
        """Ask the executor service for a sample of a running branch (collapse controller)."""
        try:
            return await self.stub.SampleBranch(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
