"""A permit call waits for an orchestrator that is restarting instead of failing at once."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

from swarmd.plugins.model import TransientProviderError
from swarmd.plugins.runtime.permits import Governor
from swarmd.v1 import coordinator_pb2, coordinator_pb2_grpc


class Orchestrator(coordinator_pb2_grpc.CoordinatorServiceServicer):
    async def AcquirePermit(self, request, context):  # type: ignore[no-untyped-def]
        return coordinator_pb2.AcquirePermitResponse(permit_id="p1", waited_ms=3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_acquire_waits_for_the_orchestrator_to_come_back() -> None:
    address = f"127.0.0.1:{free_port()}"
    async with grpc.aio.insecure_channel(address) as channel:
        governor = Governor(channel, swarm_id="s", subtask_id="a", key=("openai", "u", "m", "f"), rpc_timeout=20)
        call = asyncio.ensure_future(governor.acquire(10))
        await asyncio.sleep(0.5)  # the first call has failed: nothing listens yet
        server = grpc.aio.server()
        coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(Orchestrator(), server)
        server.add_insecure_port(address)
        await server.start()
        try:
            permit = await asyncio.wait_for(call, 30)
        finally:
            await server.stop(0)
    assert permit.permit_id == "p1"


async def test_acquire_still_fails_when_nothing_comes_back() -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        governor = Governor(channel, swarm_id="s", subtask_id="a", key=("openai", "u", "m", "f"), rpc_timeout=0.5)
        with pytest.raises(TransientProviderError, match="UNAVAILABLE"):
            await governor.acquire(10)
