"""GetSubTask, ListSubTasks, ListSwarms filters/order/keyset tokens, filtered WatchSwarm."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from swarmd.services.errors import status_details
from swarmd.services.orchestrator.paging import encode_token, request_digest
from swarmd.v1 import common_pb2, orchestrator_pb2

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


async def rejected(call, request, field: str = "") -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    """The error ``call(request)`` fails with: INVALID_ARGUMENT naming ``field`` (when given)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    if field:
        status = status_details(info.value)
        assert status is not None
        violations = []
        for packed in status.details:
            bad = error_details_pb2.BadRequest()
            if packed.Unpack(bad):
                violations.extend(v.field for v in bad.field_violations)
        assert violations == [field], (violations, info.value.details())
    return info.value


async def test_get_subtask_returns_status_result_and_commit(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", commit="c0ffee", output="done a"), subtask("b", "a", outcome="fail")),
        config=fast_config(),
    )
    swarm_id = reply.swarm.id
    await wait_terminal(services, swarm_id)
    got = await services.stub.GetSubTask(
        orchestrator_pb2.GetSubTaskRequest(swarm_id=swarm_id, subtask_id="a"), timeout=10
    )
    assert got.subtask.subtask.id == "a" and got.subtask.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert got.subtask.result.result == "done a" and got.subtask.result.merge.commit == "c0ffee"
    assert got.swarm_state == common_pb2.SWARM_STATE_FAILED
    failed = await services.stub.GetSubTask(
        orchestrator_pb2.GetSubTaskRequest(swarm_id=swarm_id, subtask_id="b"), timeout=10
    )
    assert failed.subtask.status == common_pb2.SUB_TASK_STATUS_FAILED and failed.subtask.result.error

    for request, code in (
        (orchestrator_pb2.GetSubTaskRequest(swarm_id=swarm_id, subtask_id="ghost"), grpc.StatusCode.NOT_FOUND),
        (orchestrator_pb2.GetSubTaskRequest(swarm_id="no-such-swarm", subtask_id="a"), grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.stub.GetSubTask(request, timeout=10)
        assert info.value.code() == code
    await rejected(
        services.stub.GetSubTask, orchestrator_pb2.GetSubTaskRequest(swarm_id="a b", subtask_id="a"), "swarm_id"
    )
    await rejected(
        services.stub.GetSubTask, orchestrator_pb2.GetSubTaskRequest(swarm_id=swarm_id, subtask_id=""), "subtask_id"
    )


async def test_basic_views_leave_out_result_texts_and_patches(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", commit="c0ffee", output="done a", patch=2000), subtask("b", output="done b")),
        config=fast_config(),
    )
    swarm_id = reply.swarm.id
    await wait_terminal(services, swarm_id)
    basic, full = orchestrator_pb2.SWARM_VIEW_BASIC, orchestrator_pb2.SWARM_VIEW_FULL

    whole = (await services.stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=swarm_id), timeout=10)).swarm
    assert whole.subtasks[0].result.artifacts[0].content.decode().count("+line") == 2000 and whole.result
    small = (
        await services.stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=swarm_id, view=basic), timeout=10)
    ).swarm
    assert small.ByteSize() < whole.ByteSize() // 4
    assert [s.status for s in small.subtasks] == [s.status for s in whole.subtasks]
    assert small.subtasks[0].result.merge.commit == "c0ffee" and small.stats == whole.stats
    assert not small.result and not small.subtasks[0].result.result and not small.subtasks[0].result.artifacts
    # The full view is the default; the basic view did not change what is kept.
    again = await services.stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=swarm_id, view=full), timeout=10)
    assert again.swarm == whole

    one = await services.stub.GetSubTask(
        orchestrator_pb2.GetSubTaskRequest(swarm_id=swarm_id, subtask_id="a", view=basic), timeout=10
    )
    assert one.subtask.result.merge.commit == "c0ffee" and not one.subtask.result.artifacts
    listed = await services.stub.ListSubTasks(
        orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, view=basic), timeout=10
    )
    assert [s.subtask.id for s in listed.subtasks] == ["a", "b"]
    assert all(not s.result.result and not s.result.artifacts for s in listed.subtasks)

    await rejected(services.stub.GetSwarm, orchestrator_pb2.GetSwarmRequest(swarm_id="nope", view=7), "view")
    await rejected(
        services.stub.GetSubTask, orchestrator_pb2.GetSubTaskRequest(swarm_id=swarm_id, subtask_id="a", view=-1), "view"
    )
    await rejected(services.stub.ListSubTasks, orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, view=9), "view")


async def test_list_subtasks_pages_in_plan_order(services) -> None:  # type: ignore[no-untyped-def]
    ids = [f"t{i}" for i in range(7)]
    reply = await services.submit(
        plan=plan(*(subtask(i, outcome="fail" if i in ("t1", "t4") else "success") for i in ids)),
        config=fast_config(),
    )
    swarm_id = reply.swarm.id
    await wait_terminal(services, swarm_id)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await services.stub.ListSubTasks(
            orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, page_size=3, page_token=token), timeout=10
        )
        pages += 1
        seen.extend(s.subtask.id for s in page.subtasks)
        token = page.next_page_token
        if not token:
            break
    assert seen == ids and pages == 3
    failed = await services.stub.ListSubTasks(
        orchestrator_pb2.ListSubTasksRequest(
            swarm_id=swarm_id, page_size=1, statuses=[common_pb2.SUB_TASK_STATUS_FAILED]
        ),
        timeout=10,
    )
    assert [s.subtask.id for s in failed.subtasks] == ["t1"] and failed.next_page_token
    rest = await services.stub.ListSubTasks(
        orchestrator_pb2.ListSubTasksRequest(
            swarm_id=swarm_id,
            page_size=1,
            statuses=[common_pb2.SUB_TASK_STATUS_FAILED],
            page_token=failed.next_page_token,
        ),
        timeout=10,
    )
    assert [s.subtask.id for s in rest.subtasks] == ["t4"] and rest.next_page_token == ""
    # A token is bound to its swarm and filter.
    await rejected(
        services.stub.ListSubTasks,
        orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, page_token=failed.next_page_token),
        "page_token",
    )
    await rejected(
        services.stub.ListSubTasks,
        orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, page_token="garbage!"),
        "page_token",
    )
    await rejected(
        services.stub.ListSubTasks, orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, page_size=1001), "page_size"
    )
    await rejected(
        services.stub.ListSubTasks, orchestrator_pb2.ListSubTasksRequest(swarm_id=swarm_id, statuses=[99]), "statuses[0]"
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.stub.ListSubTasks(orchestrator_pb2.ListSubTasksRequest(swarm_id="nope"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def submit_quick(services, task: str, **labels: str) -> str:  # type: ignore[no-untyped-def]
    reply = await services.submit(plan=plan(subtask("a")), config=fast_config(), task=task, labels=labels)
    await wait_terminal(services, reply.swarm.id)
    return str(reply.swarm.id)


async def walk(services, request: orchestrator_pb2.ListSwarmsRequest, between=None) -> list[str]:  # type: ignore[no-untyped-def]
    """Every id ListSwarms returns page by page, calling ``between()`` after each page."""
    seen: list[str] = []
    while True:
        page = await services.stub.ListSwarms(request, timeout=10)
        seen.extend(s.id for s in page.swarms)
        if not page.next_page_token:
            return seen
        request.page_token = page.next_page_token
        if between is not None:
            await between()


@pytest.mark.parametrize("oldest_first", [False, True])
async def test_list_swarms_pages_stay_stable_while_swarms_are_submitted(services, oldest_first: bool) -> None:  # type: ignore[no-untyped-def]
    before = [await submit_quick(services, f"before {n}") for n in range(5)]
    added: list[str] = []

    async def submit_more() -> None:
        added.append(await submit_quick(services, f"during {len(added)}"))

    order = "created_at asc" if oldest_first else ""
    seen = await walk(services, orchestrator_pb2.ListSwarmsRequest(page_size=2, order_by=order), submit_more)
    assert len(seen) == len(set(seen)), "an item was listed twice"
    if oldest_first:
        # New swarms come after every old one: the walk reaches them all.
        assert seen == before + added
    else:
        # Newest first: the walk started before they existed and lists exactly the old ones.
        assert seen == before[::-1]
    assert len(added) >= 2


async def test_list_swarms_filters_and_orders(services) -> None:  # type: ignore[no-untyped-def]
    a = await submit_quick(services, "one", team="qa", tier="gold")
    b = await submit_quick(services, "two", team="qa")
    failed = await services.submit(plan=plan(subtask("x", outcome="fail")), config=fast_config(), labels={"team": "dev"})
    await wait_terminal(services, failed.swarm.id)
    c = failed.swarm.id
    everything = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), timeout=10)
    assert [s.id for s in everything.swarms] == [c, b, a]
    assert everything.swarms[2].HasField("created_at") and everything.swarms[2].labels["tier"] == "gold"
    oldest = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(order_by="created_at asc"), timeout=10)
    assert [s.id for s in oldest.swarms] == [a, b, c]

    def ids(**flt):  # type: ignore[no-untyped-def]
        return walk(services, orchestrator_pb2.ListSwarmsRequest(page_size=1, filter=orchestrator_pb2.SwarmFilter(**flt)))

    assert await ids(labels={"team": "qa"}) == [b, a]
    assert await ids(labels={"team": "qa", "tier": "gold"}) == [a]
    assert await ids(labels={"team": "nobody"}) == []
    assert await ids(states=[common_pb2.SWARM_STATE_FAILED]) == [c]
    assert await ids(states=[common_pb2.SWARM_STATE_SUCCEEDED], labels={"team": "qa"}) == [b, a]
    created_b = everything.swarms[1].created_at
    assert await ids(created_after=created_b) == [c, b]
    assert await ids(created_before=created_b) == [a]
    assert await ids(created_after=created_b, created_before=everything.swarms[0].created_at) == [b]

    stub = services.stub
    await rejected(stub.ListSwarms, orchestrator_pb2.ListSwarmsRequest(order_by="task desc"), "order_by")
    await rejected(stub.ListSwarms, orchestrator_pb2.ListSwarmsRequest(page_size=1001), "page_size")
    await rejected(
        stub.ListSwarms,
        orchestrator_pb2.ListSwarmsRequest(filter=orchestrator_pb2.SwarmFilter(states=[0])),
        "filter.states[0]",
    )
    await rejected(
        stub.ListSwarms,
        orchestrator_pb2.ListSwarmsRequest(
            filter=orchestrator_pb2.SwarmFilter(created_after=created_b, created_before=created_b)
        ),
        "filter.created_before",
    )
    await rejected(
        stub.ListSwarms,
        orchestrator_pb2.ListSwarmsRequest(
            filter=orchestrator_pb2.SwarmFilter(created_after=timestamp_pb2.Timestamp(seconds=10**12))
        ),
        "filter.created_after",
    )
    # A token from one filter or order is refused with another.
    first = await stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(page_size=1), timeout=10)
    assert first.next_page_token
    for other in (
        orchestrator_pb2.ListSwarmsRequest(page_size=1, order_by="created_at asc"),
        orchestrator_pb2.ListSwarmsRequest(page_size=1, filter=orchestrator_pb2.SwarmFilter(labels={"team": "qa"})),
    ):
        other.page_token = first.next_page_token
        await rejected(stub.ListSwarms, other, "page_token")
    # The same request with another page size keeps the token valid.
    rest = await stub.ListSwarms(
        orchestrator_pb2.ListSwarmsRequest(page_size=5, page_token=first.next_page_token), timeout=10
    )
    assert [s.id for s in rest.swarms] == [b, a]
    for token in ("x", "9" * 40, "-1", "\u0661", "eyJsIjoiTGlzdFN3YXJtcyJ9"):
        await rejected(stub.ListSwarms, orchestrator_pb2.ListSwarmsRequest(page_token=token), "page_token")
    # Well-formed tokens of this very request whose position is nonsense.
    plain = orchestrator_pb2.ListSwarmsRequest()
    for position in ([10**20, a], [0, "not an id"], [1], [True, a], "x"):
        token = encode_token("ListSwarms", request_digest(plain), position)  # type: ignore[arg-type]
        await rejected(stub.ListSwarms, orchestrator_pb2.ListSwarmsRequest(page_token=token), "page_token")


async def watched(services, swarm_id: str, **fields) -> list[common_pb2.SwarmEvent]:  # type: ignore[no-untyped-def]
    call = services.stub.WatchSwarm(orchestrator_pb2.WatchSwarmRequest(swarm_id=swarm_id, **fields), timeout=30)
    return [reply.event async for reply in call if reply.HasField("event")]


async def test_watch_filters_by_subtask_and_kind(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", duration_ms=100), subtask("b", duration_ms=100)), config=fast_config()
    )
    swarm_id = reply.swarm.id
    # Live: the watch starts while the swarm runs.
    live = await watched(services, swarm_id, subtask_ids=["a"], event_kinds=["subtask_update", "complete"])
    everything = await watched(services, swarm_id)
    assert [e.sequence for e in everything] == list(range(1, len(everything) + 1))
    expected = [
        e
        for e in everything
        if (e.WhichOneof("kind") == "subtask_update" and e.subtask_update.subtask_id == "a")
        or e.WhichOneof("kind") == "complete"
    ]
    assert len(expected) >= 3 and expected[-1].WhichOneof("kind") == "complete"
    assert live == expected  # the real sequence numbers, nothing about b
    # Replay, from the middle: a client resumes after the last sequence it saw.
    resumed = await watched(
        services, swarm_id, subtask_ids=["a"], event_kinds=["subtask_update", "complete"],
        after_sequence=expected[0].sequence,
    )
    assert resumed == expected[1:]
    # By subtask only: every kind about b, plus the events of the whole swarm.
    only_b = await watched(services, swarm_id, subtask_ids=["b"])
    kinds_b = {e.WhichOneof("kind") for e in only_b}
    assert {"started", "complete", "subtask_update"} <= kinds_b
    for event in only_b:
        payload = getattr(event, event.WhichOneof("kind"))
        assert getattr(payload, "subtask_id", "b") in ("b", "")
    assert any(getattr(getattr(e, e.WhichOneof("kind")), "subtask_id", "") == "a" for e in everything)

    await rejected(services.stub.GetSwarm, orchestrator_pb2.GetSwarmRequest(swarm_id="a/b"), "swarm_id")
    for fields, field in (({"event_kinds": ["nonsense"]}, "event_kinds[0]"), ({"subtask_ids": ["a", "x y"]}, "subtask_ids[1]")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await watched(services, swarm_id, **fields)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in info.value.details()
