"""Public and internal services apart: the rate governor and budgets live in
CoordinatorService (served on the orchestrator's port), OrchestratorService
no longer answers them, and a swarm's event log is closed by its terminal
event, so what a watcher replays and what GetSwarm says cannot disagree."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from swarmd.services.errors import SWARM_FINISHED, status_details
from swarmd.v1 import common_pb2 as c
from swarmd.v1 import coordinator_pb2, orchestrator_pb2
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

pytestmark = pytest.mark.timeout(60)
T = 5.0


def output(text: str, seq: int = 0) -> c.SwarmEvent:
    return c.SwarmEvent(sequence=seq, agent_output=c.AgentOutput(subtask_id="a", output=text))


def complete() -> c.SwarmEvent:
    return c.SwarmEvent(complete=c.SwarmComplete(success=True, state=c.SWARM_STATE_SUCCEEDED))


async def refusal(stub: ResultStoreServiceStub, swarm_id: str, *events: c.SwarmEvent) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.AppendEvents(pb.AppendEventsRequest(swarm_id=swarm_id, events=events), timeout=T)
    return info.value


async def stored_through(stub: ResultStoreServiceStub, swarm_id: str, sequence: int) -> None:
    """Wait until the store's log of ``swarm_id`` reaches ``sequence``."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        reply = await stub.ReadEvents(
            pb.ReadEventsRequest(swarm_id=swarm_id, after_sequence=sequence, limit=1), timeout=T
        )
        if reply.last_sequence >= sequence:
            return
        assert asyncio.get_running_loop().time() < deadline, f"store holds {reply.last_sequence} of {sequence}"
        await asyncio.sleep(0.02)


def reason_of(err: grpc.aio.AioRpcError) -> str:
    status = status_details(err)
    assert status is not None
    for packed in status.details:
        info = error_details_pb2.ErrorInfo()
        if packed.Unpack(info):
            return info.reason
    raise AssertionError("no ErrorInfo")


async def test_nothing_is_appended_after_the_terminal_event(stub: ResultStoreServiceStub) -> None:
    ok = pb.AppendEventsRequest(swarm_id="sw", events=[output("one"), complete()])
    assert (await stub.AppendEvents(ok, timeout=T)).last_sequence == 2
    late = await refusal(stub, "sw", output("late"))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(late) == SWARM_FINISHED
    assert "has finished" in (late.details() or "")
    # A replay of what is stored is still told it is out of order (writers
    # resynchronise on that), not that the swarm finished.
    replay = await refusal(stub, "sw", output("one", seq=2))
    assert replay.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(replay) != SWARM_FINISHED
    read = await stub.ReadEvents(pb.ReadEventsRequest(swarm_id="sw"), timeout=T)
    assert [e.WhichOneof("kind") for e in read.events] == ["agent_output", "complete"]
    assert read.last_sequence == 2


async def test_a_batch_that_goes_past_its_terminal_event_appends_nothing(stub: ResultStoreServiceStub) -> None:
    err = await refusal(stub, "sw", output("one"), complete(), output("after"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(err) == SWARM_FINISHED
    read = await stub.ReadEvents(pb.ReadEventsRequest(swarm_id="sw"), timeout=T)
    assert list(read.events) == [] and read.last_sequence == 0


async def test_a_swarm_error_also_closes_the_log(stub: ResultStoreServiceStub) -> None:
    failed = c.SwarmEvent(error=c.SwarmError(message="could not run"))
    await stub.AppendEvents(pb.AppendEventsRequest(swarm_id="sw", events=[failed]), timeout=T)
    assert reason_of(await refusal(stub, "sw", output("late"))) == SWARM_FINISHED
    # Other swarms' logs are untouched by it.
    other = pb.AppendEventsRequest(swarm_id="other", events=[output("x")])
    assert (await stub.AppendEvents(other, timeout=T)).last_sequence == 1


async def test_the_coordinator_is_served_beside_the_public_api_and_apart_from_it(tmp_path: Path) -> None:
    async with serve_swarm_services(tmp_path) as services:
        reply = await services.submit(plan=plan(subtask("a", steps=1)), config=fast_config())
        swarm_id = reply.swarm.id
        swarm = await wait_terminal(services, swarm_id, timeout=30)
        assert swarm.state == c.SWARM_STATE_SUCCEEDED

        # The internal RPCs answer on CoordinatorService only (here: the
        # swarm has finished, so it holds no budget any more).
        with pytest.raises(grpc.aio.AioRpcError) as finished:
            await services.coordinator.ReserveBudget(
                coordinator_pb2.ReserveBudgetRequest(swarm_id=swarm_id, subtask_id="a", tool_calls=1), timeout=T
            )
        # FAILED_PRECONDITION while the finished run is still registered,
        # NOT_FOUND once it is gone; never UNIMPLEMENTED.
        assert finished.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)
        assert swarm_id in (finished.value.details() or "")
        ident = lambda b: b  # noqa: E731 - raw bytes, as a client of the old contract would send
        old = services.channel.unary_unary(
            "/swarmd.v1.OrchestratorService/AcquirePermit", request_serializer=ident, response_deserializer=ident
        )
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await old(coordinator_pb2.AcquirePermitRequest(swarm_id=swarm_id).SerializeToString(), timeout=T)
        assert gone.value.code() == grpc.StatusCode.UNIMPLEMENTED

        reflection = reflection_pb2_grpc.ServerReflectionStub(services.channel)
        answers = [
            a async for a in reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=T
            )
        ]
        names = {s.name for s in answers[0].list_services_response.service}
        assert {"swarmd.v1.OrchestratorService", "swarmd.v1.CoordinatorService"} <= names

        # A late append to the finished swarm's log is refused, and the
        # watcher's history and GetSwarm still agree on how it ended.
        async with grpc.aio.insecure_channel(services.store_address) as channel:
            store = ResultStoreServiceStub(channel)
            # GetSwarm answers from the orchestrator's memory, which turns
            # terminal as the complete event is emitted; the store's copy of
            # the log closes once the event writer has delivered it.
            await stored_through(store, swarm_id, swarm.last_sequence)
            err = await refusal(store, swarm_id, c.SwarmEvent(error=c.SwarmError(message="forged")))
            assert reason_of(err) == SWARM_FINISHED
        events = await services.events(swarm_id, history_only=True)
        assert events[-1].WhichOneof("kind") == "complete"
        assert events[-1].complete.state == (await services.get(swarm_id)).state
        assert not any(e.HasField("error") for e in events)
        listed = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), timeout=T)
        assert [s.state for s in listed.swarms if s.id == swarm_id] == [c.SWARM_STATE_SUCCEEDED]

