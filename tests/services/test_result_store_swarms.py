"""Swarm state and the event log over gRPC."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from swarmd.services.result_store.testing import ManualClock, ServedResultStore
from swarmd.v1 import common_pb2 as c
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

T = 5.0


async def failure(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def subtask(id_: str, status: int = c.SUB_TASK_STATUS_PENDING, **kw: Any) -> c.SubTaskState:
    return c.SubTaskState(
        subtask=c.SubTask(id=id_, name=id_, instruction=f"do {id_}"), status=status, **kw
    )


def swarm(
    id_: str, state: int = c.SWARM_STATE_RUNNING, created: int = 0, subtasks: tuple[str, ...] = ()
) -> c.Swarm:
    s = c.Swarm(id=id_, task="refactor", state=state, subtasks=[subtask(t) for t in subtasks])
    if created:
        s.created_at.FromSeconds(created)
    s.labels["team"] = "core"
    return s


async def save(stub: ResultStoreServiceStub, s: c.Swarm) -> None:
    await stub.SaveSwarmState(pb.SaveSwarmStateRequest(swarm=s), timeout=T)


async def load(stub: ResultStoreServiceStub, swarm_id: str) -> c.Swarm:
    return (await stub.LoadSwarmState(pb.LoadSwarmStateRequest(swarm_id=swarm_id), timeout=T)).swarm


# -- swarm state --------------------------------------------------------------


async def test_save_and_load_a_whole_swarm(stub: ResultStoreServiceStub) -> None:
    original = swarm("sw-1", created=1_700_000_000, subtasks=("a", "b"))
    original.config.max_subagents = 8
    original.stats.total_tool_calls = 3
    await save(stub, original)
    assert await load(stub, "sw-1") == original


async def test_subtask_states_are_merged_by_id_on_load(stub: ResultStoreServiceStub) -> None:
    await save(stub, swarm("sw-1", subtasks=("a", "b", "c")))
    await stub.SaveSubTaskState(
        pb.SaveSubTaskStateRequest(
            swarm_id="sw-1", state=subtask("b", c.SUB_TASK_STATUS_RUNNING, steps=2)
        ),
        timeout=T,
    )
    await stub.SaveSubTaskState(
        pb.SaveSubTaskStateRequest(
            swarm_id="sw-1", state=subtask("b", c.SUB_TASK_STATUS_COMPLETED, steps=5)
        ),
        timeout=T,
    )
    await stub.SaveSubTaskState(
        pb.SaveSubTaskStateRequest(swarm_id="sw-1", state=subtask("z", c.SUB_TASK_STATUS_BLOCKED)),
        timeout=T,
    )
    loaded = await load(stub, "sw-1")
    assert [s.subtask.id for s in loaded.subtasks] == ["a", "b", "c", "z"]
    assert loaded.subtasks[1].status == c.SUB_TASK_STATUS_COMPLETED
    assert loaded.subtasks[1].steps == 5
    assert loaded.subtasks[0].status == c.SUB_TASK_STATUS_PENDING
    assert loaded.labels["team"] == "core"


async def test_saving_the_whole_swarm_replaces_earlier_subtask_updates(
    stub: ResultStoreServiceStub,
) -> None:
    await save(stub, swarm("sw-1", subtasks=("a",)))
    await stub.SaveSubTaskState(
        pb.SaveSubTaskStateRequest(swarm_id="sw-1", state=subtask("a", c.SUB_TASK_STATUS_RUNNING)),
        timeout=T,
    )
    newer = swarm("sw-1", state=c.SWARM_STATE_SUCCEEDED, subtasks=("a",))
    newer.subtasks[0].status = c.SUB_TASK_STATUS_COMPLETED
    await save(stub, newer)
    assert await load(stub, "sw-1") == newer


async def test_resaving_without_created_at_keeps_the_list_position(
    stub: ResultStoreServiceStub, clock: ManualClock
) -> None:
    await save(stub, swarm("first"))
    clock.advance(1)
    await save(stub, swarm("second"))
    clock.advance(1)
    await save(stub, swarm("first", state=c.SWARM_STATE_SUCCEEDED))
    response = await stub.ListSwarmStates(pb.ListSwarmStatesRequest(), timeout=T)
    assert [s.id for s in response.swarms] == ["second", "first"]
    assert response.swarms[1].state == c.SWARM_STATE_SUCCEEDED


async def test_unknown_states_are_refused(stub: ResultStoreServiceStub) -> None:
    error = await failure(stub.SaveSwarmState(pb.SaveSwarmStateRequest(swarm=swarm("odd", state=77)), timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "swarm.state: 77" in error.details()
    bad = swarm("odd", subtasks=("a",))
    bad.subtasks[0].status = 42
    error = await failure(stub.SaveSwarmState(pb.SaveSwarmStateRequest(swarm=bad), timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "swarm.subtasks[0].status: 42" in error.details()
    await save(stub, swarm("odd", subtasks=("a",)))
    error = await failure(
        stub.SaveSubTaskState(pb.SaveSubTaskStateRequest(swarm_id="odd", state=subtask("a", 42)), timeout=T)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_swarm_is_not_found(stub: ResultStoreServiceStub) -> None:
    error = await failure(
        stub.LoadSwarmState(pb.LoadSwarmStateRequest(swarm_id="ghost"), timeout=T)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await failure(
        stub.SaveSubTaskState(
            pb.SaveSubTaskStateRequest(swarm_id="ghost", state=subtask("a")), timeout=T
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "ghost" in error.details()


async def test_list_newest_first_with_state_filter_limit_and_offset(
    stub: ResultStoreServiceStub,
) -> None:
    states = [
        c.SWARM_STATE_RUNNING,
        c.SWARM_STATE_SUCCEEDED,
        c.SWARM_STATE_FAILED,
        c.SWARM_STATE_RUNNING,
    ]
    for i, state in enumerate(states):
        await save(stub, swarm(f"sw-{i}", state=state, created=1_700_000_000 + i, subtasks=("a",)))
    await stub.SaveSubTaskState(
        pb.SaveSubTaskStateRequest(swarm_id="sw-3", state=subtask("a", c.SUB_TASK_STATUS_FAILED)),
        timeout=T,
    )

    async def ids(**kw: Any) -> list[str]:
        response = await stub.ListSwarmStates(pb.ListSwarmStatesRequest(**kw), timeout=T)
        return [s.id for s in response.swarms]

    assert await ids() == ["sw-3", "sw-2", "sw-1", "sw-0"]
    assert await ids(states=[c.SWARM_STATE_RUNNING]) == ["sw-3", "sw-0"]
    assert await ids(states=[c.SWARM_STATE_SUCCEEDED, c.SWARM_STATE_FAILED]) == ["sw-2", "sw-1"]
    assert await ids(limit=2) == ["sw-3", "sw-2"]
    assert await ids(limit=2, offset=2) == ["sw-1", "sw-0"]
    assert await ids(offset=10) == []
    listed = await stub.ListSwarmStates(pb.ListSwarmStatesRequest(limit=1), timeout=T)
    assert listed.swarms[0].subtasks[0].status == c.SUB_TASK_STATUS_FAILED  # merged here too


async def test_list_with_labels_time_range_order_and_cursor(stub: ResultStoreServiceStub) -> None:
    base = 1_700_000_000

    def at(i: int) -> Timestamp:
        return Timestamp(seconds=base + i)

    for i in range(9):
        s = swarm(f"sw-{i}", created=base + i)
        s.labels["parity"] = "even" if i % 2 == 0 else "odd"
        await save(stub, s)

    async def ids(**kw: Any) -> list[str]:
        response = await stub.ListSwarmStates(pb.ListSwarmStatesRequest(**kw), timeout=T)
        return [s.id for s in response.swarms]

    # The label matches are spread out: the page fills past the first batch of rows.
    assert await ids(labels={"parity": "odd"}, limit=3) == ["sw-7", "sw-5", "sw-3"]
    assert await ids(labels={"parity": "odd"}, limit=3, after_id="sw-3", after_created_at=at(3)) == ["sw-1"]
    assert await ids(labels={"parity": "even", "team": "core"}, oldest_first=True, limit=2) == ["sw-0", "sw-2"]
    assert await ids(oldest_first=True, limit=2, after_id="sw-2", after_created_at=at(2)) == [
        "sw-3", "sw-4"
    ]
    assert await ids(created_after=at(6), created_before=at(8)) == ["sw-7", "sw-6"]
    assert await ids(created_before=at(0)) == []
    assert await ids(created_after=Timestamp(seconds=0)) == [f"sw-{i}" for i in range(8, -1, -1)]
    assert await ids(labels={"parity": "none"}) == []
    await failure(stub.ListSwarmStates(pb.ListSwarmStatesRequest(offset=1, after_id="sw-1", after_created_at=at(1)), timeout=T))
    await failure(stub.ListSwarmStates(pb.ListSwarmStatesRequest(after_id="sw-1"), timeout=T))
    await failure(stub.ListSwarmStates(pb.ListSwarmStatesRequest(created_after=Timestamp(seconds=10**12)), timeout=T))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.SaveSwarmState(pb.SaveSwarmStateRequest(), timeout=T), "swarm"),
        (
            lambda s: s.SaveSwarmState(
                pb.SaveSwarmStateRequest(swarm=c.Swarm(task="x")), timeout=T
            ),
            "swarm.id",
        ),
        (
            lambda s: s.SaveSwarmState(
                pb.SaveSwarmStateRequest(swarm=c.Swarm(id="a/b")), timeout=T
            ),
            "swarm.id",
        ),
        (
            lambda s: s.SaveSwarmState(
                pb.SaveSwarmStateRequest(swarm=c.Swarm(id="x" * 129)), timeout=T
            ),
            "swarm.id",
        ),
        (
            lambda s: s.SaveSwarmState(
                pb.SaveSwarmStateRequest(swarm=c.Swarm(id="x", subtasks=[c.SubTaskState()])),
                timeout=T,
            ),
            "swarm.subtasks[0].subtask.id",
        ),
        (
            lambda s: s.SaveSubTaskState(pb.SaveSubTaskStateRequest(swarm_id="x"), timeout=T),
            "state",
        ),
        (
            lambda s: s.SaveSubTaskState(
                pb.SaveSubTaskStateRequest(swarm_id="x", state=c.SubTaskState(steps=1)), timeout=T
            ),
            "state.subtask.id",
        ),
        (lambda s: s.LoadSwarmState(pb.LoadSwarmStateRequest(), timeout=T), "swarm_id"),
        (lambda s: s.ListSwarmStates(pb.ListSwarmStatesRequest(limit=1001), timeout=T), "limit"),
        (lambda s: s.ListSwarmStates(pb.ListSwarmStatesRequest(offset=-1), timeout=T), "offset"),
    ],
)
async def test_bad_swarm_requests_are_invalid_argument(
    stub: ResultStoreServiceStub, call: Any, field: str
) -> None:
    error = await failure(call(stub))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()


# -- event log ----------------------------------------------------------------


def started(seq: int = 0, swarm_id: str = "") -> c.SwarmEvent:
    return c.SwarmEvent(
        swarm_id=swarm_id, sequence=seq, started=c.SwarmStarted(task="t", total_subtasks=2)
    )


def output(text: str, seq: int = 0) -> c.SwarmEvent:
    return c.SwarmEvent(sequence=seq, agent_output=c.AgentOutput(subtask_id="a", output=text))


async def append(stub: ResultStoreServiceStub, swarm_id: str, *events: c.SwarmEvent) -> int:
    request = pb.AppendEventsRequest(swarm_id=swarm_id, events=events)
    return (await stub.AppendEvents(request, timeout=T)).last_sequence


async def read(
    stub: ResultStoreServiceStub, swarm_id: str, after: int = 0, limit: int = 0
) -> pb.ReadEventsResponse:
    request = pb.ReadEventsRequest(swarm_id=swarm_id, after_sequence=after, limit=limit)
    return await stub.ReadEvents(request, timeout=T)


async def test_append_assigns_sequences_and_read_resumes(stub: ResultStoreServiceStub) -> None:
    assert await append(stub, "sw", started(), output("one")) == 2
    assert await append(stub, "sw", output("two", seq=3), output("three")) == 4
    response = await read(stub, "sw")
    assert [e.sequence for e in response.events] == [1, 2, 3, 4]
    assert all(e.swarm_id == "sw" for e in response.events)
    assert response.events[0].WhichOneof("kind") == "started"
    assert response.events[0].time.seconds == 1_700_000_000  # stamped when not given
    assert response.last_sequence == 4
    after = await read(stub, "sw", after=2, limit=1)
    assert [e.agent_output.output for e in after.events] == ["two"]
    assert after.last_sequence == 4


async def test_wrong_sequence_is_failed_precondition_and_appends_nothing(
    stub: ResultStoreServiceStub,
) -> None:
    await append(stub, "sw", started())
    for bad in ([output("x", seq=1)], [output("x", seq=3)], [output("ok"), output("x", seq=5)]):
        error = await failure(
            stub.AppendEvents(pb.AppendEventsRequest(swarm_id="sw", events=bad), timeout=T)
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "sequence" in error.details()
    response = await read(stub, "sw")
    assert [e.sequence for e in response.events] == [1]
    assert response.last_sequence == 1


async def test_unknown_swarm_has_an_empty_log(stub: ResultStoreServiceStub) -> None:
    response = await read(stub, "nobody")
    assert (list(response.events), response.last_sequence) == ([], 0)
    assert await append(stub, "nobody") == 0  # an empty batch changes nothing


async def test_logs_are_per_swarm(stub: ResultStoreServiceStub) -> None:
    await append(stub, "a", started(), output("a1"))
    await append(stub, "b", started())
    assert (await read(stub, "a")).last_sequence == 2
    assert (await read(stub, "b")).last_sequence == 1


async def test_fifty_concurrent_appends_from_several_channels_stay_dense(
    served: ServedResultStore,
) -> None:
    channels = [grpc.aio.insecure_channel(served.address) for _ in range(5)]
    try:
        stubs = [ResultStoreServiceStub(ch) for ch in channels]
        await asyncio.gather(
            *(append(stubs[i % 5], "sw", output(f"{i}-0"), output(f"{i}-1")) for i in range(50))
        )
        response = await read(stubs[0], "sw")
    finally:
        for ch in channels:
            await ch.close()
    assert [e.sequence for e in response.events] == list(range(1, 101))
    texts = [e.agent_output.output for e in response.events]
    assert sorted(texts) == sorted(f"{i}-{j}" for i in range(50) for j in range(2))
    # each batch landed contiguously
    for first, second in zip(texts[::2], texts[1::2], strict=True):
        assert first.split("-")[0] == second.split("-")[0]


async def test_read_limit_defaults_and_bounds(stub: ResultStoreServiceStub) -> None:
    await append(stub, "sw", *(output(str(i)) for i in range(1005)))
    assert len((await read(stub, "sw")).events) == 1000
    assert len((await read(stub, "sw", limit=1005)).events) == 1005
    error = await failure(read(stub, "sw", limit=10_001))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("limit:")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.AppendEventsRequest(swarm_id="", events=[started()]), "swarm_id"),
        (
            pb.AppendEventsRequest(swarm_id="sw", events=[started(swarm_id="other")]),
            "events[0].swarm_id",
        ),
        (pb.AppendEventsRequest(swarm_id="sw", events=[started(seq=-1)]), "events[0].sequence"),
        (pb.AppendEventsRequest(swarm_id="sw", events=[started(), c.SwarmEvent()]), "events[1]"),
    ],
)
async def test_bad_appends_are_invalid_argument(
    stub: ResultStoreServiceStub, request_: pb.AppendEventsRequest, field: str
) -> None:
    error = await failure(stub.AppendEvents(request_, timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()
    assert (await read(stub, "sw")).last_sequence == 0


async def test_negative_after_sequence_is_invalid(stub: ResultStoreServiceStub) -> None:
    error = await failure(read(stub, "sw", after=-1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("after_sequence:")


async def test_racing_writers_with_explicit_sequences_exactly_one_wins(
    served: ServedResultStore,
) -> None:
    async with grpc.aio.insecure_channel(served.address) as channel:
        stub = ResultStoreServiceStub(channel)
        outcomes = await asyncio.gather(
            *(append(stub, "sw", output(f"writer {i}", seq=1)) for i in range(10)),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if o == 1]
        losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(winners) == 1
        assert len(losers) == 9
        assert all(e.code() == grpc.StatusCode.FAILED_PRECONDITION for e in losers)
        assert (await read(stub, "sw")).last_sequence == 1


# -- out-of-range timestamps ---------------------------------------------------


def far(seconds: int = 2**62, nanos: int = 0) -> Any:
    from google.protobuf import timestamp_pb2

    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: c.Swarm(id="sw", created_at=far()), "swarm.created_at"),
        (lambda: c.Swarm(id="sw", finished_at=far(-(2**62))), "swarm.finished_at"),
        (lambda: c.Swarm(id="sw", subtasks=[subtask("a", started_at=far())]), "swarm.subtasks[0].started_at"),
        (lambda: c.Swarm(id="sw", created_at=far(1, 2_000_000_000)), "swarm.created_at"),
    ],
)
async def test_out_of_range_timestamps_are_invalid_argument(
    stub: ResultStoreServiceStub, build: Any, field: str
) -> None:
    error = await failure(save(stub, build()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()
    await save(stub, swarm("sw"))
    error = await failure(
        stub.SaveSubTaskState(
            pb.SaveSubTaskStateRequest(swarm_id="sw", state=subtask("a", finished_at=far())), timeout=T
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    event = started()
    event.time.CopyFrom(far())
    error = await failure(stub.AppendEvents(pb.AppendEventsRequest(swarm_id="sw", events=[event]), timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("events[0].time:"), error.details()
    assert (await read(stub, "sw")).last_sequence == 0
