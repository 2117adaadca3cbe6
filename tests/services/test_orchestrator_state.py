"""Durable state: GetSwarm/ListSwarms from memory and the store, resume after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.services.orchestrator.peers import StoreClient
from swarmd.services.result_store.testing import serve_result_store
from swarmd.v1 import common_pb2, orchestrator_pb2


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


async def forgotten(services, swarm_id: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(300):
        if services.orchestrator.live(swarm_id) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the finished swarm stayed in memory")


async def test_get_swarm_live_then_from_the_store(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", duration_ms=150), subtask("b", "a")),
        config=fast_config(),
        labels={"team": "qa"},
    )
    live = await services.get(reply.swarm.id)
    assert live.state == common_pb2.SWARM_STATE_RUNNING and live.labels["team"] == "qa"
    assert live.stats.execution_time_ms >= 0
    stored_now = await services.orchestrator.store.load_swarm(reply.swarm.id)
    assert stored_now.id == reply.swarm.id  # saved at submit
    swarm = await wait_terminal(services, reply.swarm.id)
    await forgotten(services, swarm.id)
    stored = await services.get(swarm.id)
    assert stored.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert stored.stats.subagents_completed == 2 and stored.result == swarm.result
    assert [s.status for s in stored.subtasks] == [common_pb2.SUB_TASK_STATUS_COMPLETED] * 2
    assert stored.last_sequence == swarm.last_sequence > 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.get("no-such-swarm")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_every_subtask_change_is_saved(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", hang=True), subtask("b", "a")), config=fast_config()
    )
    for _ in range(300):
        stored = await services.orchestrator.store.load_swarm(reply.swarm.id)
        if stored.subtasks[0].status == common_pb2.SUB_TASK_STATUS_RUNNING:
            break
        await asyncio.sleep(0.01)
    assert stored.state == common_pb2.SWARM_STATE_RUNNING
    assert [s.status for s in stored.subtasks] == [
        common_pb2.SUB_TASK_STATUS_RUNNING,
        common_pb2.SUB_TASK_STATUS_BLOCKED,
    ]
    assert stored.subtasks[0].attempt == 1
    await services.stub.CancelSwarm(
        orchestrator_pb2.CancelSwarmRequest(swarm_id=reply.swarm.id), timeout=10
    )


async def test_list_swarms_newest_first_with_paging_and_filters(services) -> None:  # type: ignore[no-untyped-def]
    ids = []
    for n in range(3):
        reply = await services.submit(
            plan=plan(subtask("a")), config=fast_config(), task=f"job {n}"
        )
        ids.append(reply.swarm.id)
        await wait_terminal(services, reply.swarm.id)
    running = await services.submit(
        plan=plan(subtask("a", hang=True)), config=fast_config(), task="running job"
    )
    first = await services.stub.ListSwarms(
        orchestrator_pb2.ListSwarmsRequest(page_size=2), timeout=10
    )
    assert [s.id for s in first.swarms] == [running.swarm.id, ids[2]]
    assert first.swarms[0].state == common_pb2.SWARM_STATE_RUNNING
    assert (
        first.swarms[1].task == "job 2"
        and first.swarms[1].completed == 1
        and first.swarms[1].subtask_count == 1
    )
    second = await services.stub.ListSwarms(
        orchestrator_pb2.ListSwarmsRequest(page_size=2, page_token=first.next_page_token),
        timeout=10,
    )
    assert [s.id for s in second.swarms] == [ids[1], ids[0]] and second.next_page_token == ""
    done = await services.stub.ListSwarms(
        orchestrator_pb2.ListSwarmsRequest(
            filter=orchestrator_pb2.SwarmFilter(states=[common_pb2.SWARM_STATE_SUCCEEDED])
        ),
        timeout=10,
    )
    assert [s.id for s in done.swarms] == ids[::-1]
    # The largest page the API allows is one the store can serve.
    largest = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(page_size=1000), timeout=10)
    assert len(largest.swarms) == 4 and largest.next_page_token == ""
    for bad in (
        orchestrator_pb2.ListSwarmsRequest(page_size=-1),
        orchestrator_pb2.ListSwarmsRequest(page_token="x"),
        orchestrator_pb2.ListSwarmsRequest(page_token="9" * 40),
        orchestrator_pb2.ListSwarmsRequest(page_token="-1"),
        orchestrator_pb2.ListSwarmsRequest(page_token="\u0661"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.stub.ListSwarms(bad, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await services.stub.CancelSwarm(
        orchestrator_pb2.CancelSwarmRequest(swarm_id=running.swarm.id), timeout=10
    )


async def test_unreachable_store_or_executor_is_unavailable(tmp_path: Path) -> None:
    async with serve_swarm_services(tmp_path, store_address="127.0.0.1:1") as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=fast_config())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        await services.executor_host.stop(0)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=fast_config())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "executor service" in (info.value.details() or "")


async def test_a_restarted_orchestrator_resumes_the_swarm(tmp_path: Path) -> None:
    async with serve_result_store(tmp_path / "durable.db") as store:
        async with serve_swarm_services(tmp_path, store_address=store.address) as first:
            reply = await first.submit(
                plan=plan(subtask("a"), subtask("b", "a", hang_attempts=1), subtask("c", "b")),
                config=fast_config(),
            )
            swarm_id = reply.swarm.id
            for _ in range(500):
                if JOURNAL.for_subtask("b"):
                    break
                await asyncio.sleep(0.01)
            before = await first.get(swarm_id)
        # The orchestrator went away mid-swarm; nothing was marked cancelled,
        # the swarm is stored as interrupted.
        async with grpc.aio.insecure_channel(store.address) as channel:
            stored = await StoreClient(channel, 5).load_swarm(swarm_id)
        assert stored.state == common_pb2.SWARM_STATE_INTERRUPTED
        assert f"swarmd resume {swarm_id}" in stored.error
        assert stored.owner.pid > 0 and not stored.owner.embedded
        assert [s.status for s in stored.subtasks] == [
            common_pb2.SUB_TASK_STATUS_COMPLETED,
            common_pb2.SUB_TASK_STATUS_RUNNING,
            common_pb2.SUB_TASK_STATUS_BLOCKED,
        ]
        async with serve_swarm_services(tmp_path, store_address=store.address) as second:
            swarm = await wait_terminal(second, swarm_id)
            assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
            assert JOURNAL.for_subtask("a") == []  # finished work is not re-run
            assert [a.attempt for a in JOURNAL.for_subtask("b")] == [2]
            states = {s.subtask.id: s for s in swarm.subtasks}
            assert states["a"].result.result == "output of a"
            events = await second.events(swarm_id)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            assert [e.sequence for e in events][: before.last_sequence] == list(
                range(1, before.last_sequence + 1)
            )
            warnings = [e.warning for e in events if e.HasField("warning")]
            assert [w.code for w in warnings] == ["swarm_interrupted", "swarm_resumed"]
            assert "1 finished subtasks are kept" in warnings[1].message
            assert swarm.owner.instance_id != stored.owner.instance_id
            assert sum(e.HasField("started") for e in events) == 1
            assert swarm.stats.subagents_spawned == 4  # a, b twice, c
