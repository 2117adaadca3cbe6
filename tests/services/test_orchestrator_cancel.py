"""Cancelling a swarm or one subtask: idempotent, propagated to the executor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.fake_scripted_provider import ScriptedProvider
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


async def second_client(services):  # type: ignore[no-untyped-def]
    channel = grpc.aio.insecure_channel(services.orchestrator_host.address)
    return channel, orchestrator_pb2_grpc.OrchestratorServiceStub(channel)


async def until_running(services, swarm_id: str, *subtask_ids: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):
        running = {
            a.subtask_id for a in JOURNAL.attempts if a.swarm_id == swarm_id and a.end is None
        }
        if set(subtask_ids) <= running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{subtask_ids} never started")


async def test_cancel_swarm_mid_run_from_a_second_client(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(
            subtask("a", hang=True),
            subtask("b", hang=True),
            subtask("c", "a"),
            subtask("done", duration_ms=1),
        ),
        config=fast_config(),
    )
    swarm_id = reply.swarm.id
    await until_running(services, swarm_id, "a", "b")
    channel, stub = await second_client(services)
    async with channel:
        first = await stub.CancelSwarm(
            orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm_id, reason="user pressed ^C"),
            timeout=10,
        )
        assert first.state == common_pb2.SWARM_STATE_CANCELLED and not first.already_finished
        again = await stub.CancelSwarm(
            orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm_id), timeout=10
        )
        assert again.state == common_pb2.SWARM_STATE_CANCELLED and again.already_finished
    swarm = await wait_terminal(services, swarm_id)
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert swarm.state == common_pb2.SWARM_STATE_CANCELLED
    for sid in "abc":
        assert states[sid].status == common_pb2.SUB_TASK_STATUS_CANCELLED
        assert "user pressed ^C" in states[sid].status_reason
    assert states["done"].status == common_pb2.SUB_TASK_STATUS_COMPLETED  # finished work is kept
    # Propagated: the executor was told, and the sub-agents stopped.
    told = {(sid, reason) for swarm_, sid, reason in JOURNAL.cancel_calls if swarm_ == swarm_id}
    assert {("a", "user pressed ^C"), ("b", "user pressed ^C")} <= told
    assert all(a.end is not None for a in JOURNAL.attempts)
    assert JOURNAL.for_subtask("c") == []
    events = await services.events(swarm_id)
    assert events[-1].complete.state == common_pb2.SWARM_STATE_CANCELLED
    stored = await services.orchestrator.store.load_swarm(swarm_id)
    assert stored.state == common_pb2.SWARM_STATE_CANCELLED
    assert swarm.stats.subagents_cancelled == 3


async def test_cancel_one_running_subtask(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", hang=True), subtask("b", "a"), subtask("c", duration_ms=200)),
        config=fast_config(),
    )
    swarm_id = reply.swarm.id
    await until_running(services, swarm_id, "a")
    request = orchestrator_pb2.CancelSubTaskRequest(
        swarm_id=swarm_id, subtask_id="a", reason="not needed"
    )
    first = await services.stub.CancelSubTask(request, timeout=10)
    assert first.status == common_pb2.SUB_TASK_STATUS_CANCELLED and not first.already_finished
    again = await services.stub.CancelSubTask(request, timeout=10)
    assert again.status == common_pb2.SUB_TASK_STATUS_CANCELLED and again.already_finished
    swarm = await wait_terminal(services, swarm_id)
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert states["a"].status == common_pb2.SUB_TASK_STATUS_CANCELLED
    assert states["a"].status_reason == "cancelled: not needed"
    assert states["b"].status == common_pb2.SUB_TASK_STATUS_SKIPPED
    assert "dependency 'a' (a) cancelled" in states["b"].status_reason
    assert states["c"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert ("a", "not needed") in [(c[1], c[2]) for c in JOURNAL.cancel_calls]
    assert JOURNAL.for_subtask("a")[0].outcome == "cancelled"


async def test_cancel_a_blocked_subtask_before_it_starts(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", duration_ms=200), subtask("b", "a")), config=fast_config()
    )
    swarm_id = reply.swarm.id
    await until_running(services, swarm_id, "a")
    answer = await services.stub.CancelSubTask(
        orchestrator_pb2.CancelSubTaskRequest(swarm_id=swarm_id, subtask_id="b"), timeout=10
    )
    assert answer.status == common_pb2.SUB_TASK_STATUS_CANCELLED and not answer.already_finished
    swarm = await wait_terminal(services, swarm_id)
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert states["a"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert states["b"].status == common_pb2.SUB_TASK_STATUS_CANCELLED
    assert JOURNAL.for_subtask("b") == []


async def test_cancelling_finished_work_is_not_an_error(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(plan=plan(subtask("a")), config=fast_config())
    swarm = await wait_terminal(services, reply.swarm.id)
    answer = await services.stub.CancelSwarm(
        orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm.id), timeout=10
    )
    assert answer.already_finished and answer.state == common_pb2.SWARM_STATE_SUCCEEDED
    answer = await services.stub.CancelSubTask(
        orchestrator_pb2.CancelSubTaskRequest(swarm_id=swarm.id, subtask_id="a"), timeout=10
    )
    assert answer.already_finished and answer.status == common_pb2.SUB_TASK_STATUS_COMPLETED


async def test_cancel_unknown_ids(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.stub.CancelSwarm(
            orchestrator_pb2.CancelSwarmRequest(swarm_id="nope"), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    reply = await services.submit(plan=plan(subtask("a", duration_ms=100)), config=fast_config())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.stub.CancelSubTask(
            orchestrator_pb2.CancelSubTaskRequest(swarm_id=reply.swarm.id, subtask_id="zz"),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.stub.CancelSwarm(
            orchestrator_pb2.CancelSwarmRequest(swarm_id="../x"), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_while_planning(services) -> None:  # type: ignore[no-untyped-def]
    async def slow() -> str:
        await asyncio.sleep(30)
        return "{}"

    ScriptedProvider.script(slow)
    reply = await services.submit(task="plan slowly", config=fast_config())
    assert reply.swarm.state == common_pb2.SWARM_STATE_PLANNING
    answer = await services.stub.CancelSwarm(
        orchestrator_pb2.CancelSwarmRequest(swarm_id=reply.swarm.id), timeout=10
    )
    assert answer.state == common_pb2.SWARM_STATE_CANCELLED
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_CANCELLED and len(swarm.subtasks) == 0
    assert ScriptedProvider.closed == 2  # the executor's model check, and the decomposition
