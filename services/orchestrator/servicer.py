"""OrchestratorService and CoordinatorService over gRPC: thin methods that
delegate to :class:`Orchestrator`. Both are served on the orchestrator's port;
OrchestratorService is the public API, CoordinatorService the internal one that
executors call for rate permits and budgets.

Errors are mapped in one place (:func:`swarmd.services.errors.grpc_errors`).
Every RPC about one swarm first checks that the caller's tenant may see it
(:mod:`swarmd.services.auth.tenancy`): another tenant's swarm is answered
as an unknown one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from swarmd.services.auth.tenancy import caller_tenant, confined, listing_tenant, may_see
from swarmd.services.errors import InvalidArgument, NotFound, grpc_errors
from swarmd.services.heartbeats import with_heartbeats
from swarmd.services.orchestrator.orchestrator import Orchestrator
from swarmd.services.orchestrator.queries import check_view, swarm_in_view
from swarmd.v1 import coordinator_pb2, coordinator_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc

__all__ = ["COORDINATOR_SERVICE_NAME", "SERVICE_NAME", "CoordinatorServicer", "OrchestratorServicer"]

SERVICE_NAME = "swarmd.v1.OrchestratorService"
COORDINATOR_SERVICE_NAME = "swarmd.v1.CoordinatorService"


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    """The gRPC face of the orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def _visible(self, swarm_id: str) -> None:
        """NOT_FOUND, as for an unknown swarm, when the caller may not see ``swarm_id``."""
        if not confined():
            return  # no tenants, or a caller who sees them all
        swarm = await self.orchestrator.get(swarm_id)
        if not may_see(swarm.tenant):
            raise NotFound(f"unknown swarm {swarm_id!r}")

    @grpc_errors
    async def SubmitSwarm(
        self, request: orchestrator_pb2.SubmitSwarmRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.SubmitSwarmResponse:
        return await self.orchestrator.submit(request, tenant=caller_tenant())

    @grpc_errors
    async def GetSwarm(
        self, request: orchestrator_pb2.GetSwarmRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.GetSwarmResponse:
        view = request.view
        check_view(view)
        await self._visible(request.swarm_id)
        swarm = await self.orchestrator.get(request.swarm_id)
        return orchestrator_pb2.GetSwarmResponse(swarm=swarm_in_view(swarm, view))

    @grpc_errors
    async def ListSwarms(
        self, request: orchestrator_pb2.ListSwarmsRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.ListSwarmsResponse:
        return await self.orchestrator.queries.list_swarms(request, tenant=listing_tenant())

    @grpc_errors
    async def GetSubTask(
        self, request: orchestrator_pb2.GetSubTaskRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.GetSubTaskResponse:
        await self._visible(request.swarm_id)
        return await self.orchestrator.queries.get_subtask(request)

    @grpc_errors
    async def ListSubTasks(
        self, request: orchestrator_pb2.ListSubTasksRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.ListSubTasksResponse:
        await self._visible(request.swarm_id)
        return await self.orchestrator.queries.list_subtasks(request)

    @grpc_errors
    async def WatchSwarm(
        self, request: orchestrator_pb2.WatchSwarmRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[orchestrator_pb2.WatchSwarmResponse]:
        if request.heartbeat_interval_ms < 0:
            raise InvalidArgument("heartbeat_interval_ms must not be negative")
        await self._visible(request.swarm_id)
        interval = (
            request.heartbeat_interval_ms / 1000
            if request.heartbeat_interval_ms
            else self.orchestrator.settings.heartbeat_interval_secs
        )
        # Heartbeats while no event comes (a long model call), so a quiet
        # watch still carries data; they are not part of the swarm's log.
        async for reply in with_heartbeats(
            self.orchestrator.watch(request),
            interval,
            wrap=lambda event: orchestrator_pb2.WatchSwarmResponse(event=event),
            beat=lambda beat: orchestrator_pb2.WatchSwarmResponse(heartbeat=beat),
            sequence=lambda event: event.sequence,
        ):
            yield reply

    @grpc_errors
    async def CancelSwarm(
        self, request: orchestrator_pb2.CancelSwarmRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.CancelSwarmResponse:
        await self._visible(request.swarm_id)
        return await self.orchestrator.cancel_swarm(request)

    @grpc_errors
    async def CancelSubTask(
        self, request: orchestrator_pb2.CancelSubTaskRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.CancelSubTaskResponse:
        await self._visible(request.swarm_id)
        return await self.orchestrator.cancel_subtask(request)

    @grpc_errors
    async def ResumeSwarm(
        self, request: orchestrator_pb2.ResumeSwarmRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.ResumeSwarmResponse:
        await self._visible(request.swarm_id)
        return await self.orchestrator.resume_swarm(request)


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    """The gRPC face of the orchestrator's rate governors and budgets (internal)."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    @grpc_errors
    async def AcquirePermit(
        self, request: coordinator_pb2.AcquirePermitRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.AcquirePermitResponse:
        return await self.orchestrator.acquire_permit(request)

    @grpc_errors
    async def ReportOutcome(
        self, request: coordinator_pb2.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ReportOutcomeResponse:
        return await self.orchestrator.report_outcome(request)

    @grpc_errors
    async def ReserveBudget(
        self, request: coordinator_pb2.ReserveBudgetRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ReserveBudgetResponse:
        return await self.orchestrator.reserve_budget(request)

    @grpc_errors
    async def ClaimVariant(
        self, request: coordinator_pb2.ClaimVariantRequest, context: grpc.aio.ServicerContext
    ) -> coordinator_pb2.ClaimVariantResponse:
        return await self.orchestrator.claim_variant(request)
