"""The event stream: dense sequences, batched persistence, late, resuming and slow watchers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.services.errors import InvalidArgument, ResourceExhausted, Unavailable
from swarmd.services.orchestrator.events import SwarmEventLog
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.services.result_store.testing import serve_result_store
from swarmd.v1 import common_pb2, orchestrator_pb2


def warning(n: int) -> common_pb2.SwarmWarning:
    return common_pb2.SwarmWarning(code="test", message=f"event {n}")


class CountingStore:
    """Wraps a StoreClient: counts appends, can fail the first ones."""

    def __init__(self, inner: StoreClient, fail_first: int = 0) -> None:
        self.inner = inner
        self.appends: list[int] = []
        self.fail_first = fail_first

    async def append_events(self, swarm_id, events):  # type: ignore[no-untyped-def]
        if self.fail_first > 0:
            self.fail_first -= 1
            raise Unavailable("store is down")
        self.appends.append(len(events))
        return await self.inner.append_events(swarm_id, events)

    async def read_events(self, swarm_id, after, limit=1000):  # type: ignore[no-untyped-def]
        return await self.inner.read_events(swarm_id, after, limit)


@pytest.fixture
async def store_client(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_result_store(tmp_path / "events.db") as served:
        channel = grpc.aio.insecure_channel(served.address)
        yield StoreClient(channel, 5)
        await channel.close()


async def collect(
    log: SwarmEventLog, after: int = 0, *, delay: float = 0.0, history_only: bool = False
) -> list[int]:
    seen = []
    async for event in log.watch(after, history_only=history_only):
        seen.append(event.sequence)
        if delay:
            await asyncio.sleep(delay)
    return seen


async def test_events_are_batched_and_ordered(store_client: StoreClient) -> None:
    store = CountingStore(store_client)
    log = SwarmEventLog("s1", store)  # type: ignore[arg-type]
    for n in range(1200):
        log.emit("warning", warning(n))
    assert await log.flush(5)
    assert sum(store.appends) == 1200 and len(store.appends) <= 4  # batched, not 1200 calls
    events, last = await store_client.read_events("s1", 0, 10_000)
    assert last == 1200 and [e.sequence for e in events] == list(range(1, 1201))
    assert events[7].warning.message == "event 7"
    await log.aclose()


async def test_store_outage_loses_nothing(store_client: StoreClient) -> None:
    store = CountingStore(store_client, fail_first=3)
    log = SwarmEventLog("s2", store)  # type: ignore[arg-type]
    watcher = asyncio.ensure_future(collect(log))
    for n in range(50):
        log.emit("warning", warning(n))
    log.finish()
    assert await collect(log) == list(range(1, 51))  # served from memory meanwhile
    assert await log.flush(10)
    assert await watcher == list(range(1, 51))
    _, last = await store_client.read_events("s2", 0, 1)
    assert last == 50
    await log.aclose()


async def test_writer_reconciles_a_batch_the_store_already_has(store_client: StoreClient) -> None:
    # As after a lost reply: the store already holds event 1 when the writer
    # sends 1 and 2; it refuses the batch (FAILED_PRECONDITION) and the writer
    # sends only what is missing.
    first = SwarmEventLog("s3", store_client)
    first.emit("warning", warning(1))
    assert await first.flush(5)
    await first.aclose()
    log = SwarmEventLog("s3", store_client, last_sequence=0)  # believes nothing was written
    log.emit("warning", warning(1))
    log.emit("warning", warning(2))
    assert await log.flush(5)
    events, last = await store_client.read_events("s3", 0, 10)
    assert last == 2 and [e.warning.message for e in events] == ["event 1", "event 2"]
    await log.aclose()


class PickyStore(CountingStore):
    """Refuses batches of more than 10 events as too large, and any event whose
    message says "poison" as invalid."""

    async def append_events(self, swarm_id, events):  # type: ignore[no-untyped-def]
        if len(events) > 10:
            raise ResourceExhausted("message larger than max")
        if any(e.warning.message == "poison" for e in events):
            raise InvalidArgument("events[0]: unacceptable")
        return await super().append_events(swarm_id, events)


async def test_oversized_batches_are_split_and_unstorable_events_stubbed(
    store_client: StoreClient,
) -> None:
    store = PickyStore(store_client)
    log = SwarmEventLog("s6", store)  # type: ignore[arg-type]
    for n in range(40):
        log.emit(
            "warning",
            common_pb2.SwarmWarning(code="test", message="poison" if n == 17 else f"event {n}"),
        )
    assert await log.flush(5)
    events, last = await store_client.read_events("s6", 0, 100)
    assert last == 40 and [e.sequence for e in events] == list(range(1, 41))
    assert all(size <= 10 for size in store.appends)
    stub = events[17].warning
    assert stub.code == "event_not_stored" and "unacceptable" in stub.message
    assert events[18].warning.message == "event 18"
    await log.aclose()


async def test_slow_watcher_never_blocks_and_never_loses_events(store_client: StoreClient) -> None:
    log = SwarmEventLog("s4", store_client, watcher_queue=8, batch_size=16)
    slow = asyncio.ensure_future(collect(log, delay=0.002))
    fast = asyncio.ensure_future(collect(log))
    await asyncio.sleep(0)
    for n in range(300):
        log.emit("warning", warning(n))  # synchronous: the emitter never waits for watchers
        if n % 50 == 0:
            await asyncio.sleep(0)
    log.finish()
    assert await asyncio.wait_for(fast, 10) == list(range(1, 301))
    assert await asyncio.wait_for(slow, 30) == list(range(1, 301))
    await log.aclose()


async def test_late_and_resuming_watchers_on_the_log(store_client: StoreClient) -> None:
    log = SwarmEventLog("s5", store_client)
    for n in range(20):
        log.emit("warning", warning(n))
    await log.flush(5)
    for n in range(20, 30):
        log.emit("warning", warning(n))  # some stored, some only in memory
    late = asyncio.ensure_future(collect(log))
    resumed = asyncio.ensure_future(collect(log, after=25))
    history = await collect(log, after=5, history_only=True)
    assert history == list(range(6, 31))
    for n in range(30, 40):
        log.emit("warning", warning(n))
    log.finish()
    assert await late == list(range(1, 41))
    assert await resumed == list(range(26, 41))
    await log.aclose()


# -- over gRPC ---------------------------------------------------------------------


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


async def test_late_watcher_gets_the_whole_history_then_live_events(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a", steps=3, tool_calls=3), subtask("hold", hang=True)),
        config=fast_config(),
    )
    swarm_id = reply.swarm.id
    for _ in range(500):
        if JOURNAL.for_subtask("a") and JOURNAL.for_subtask("a")[0].end is not None:
            break
        await asyncio.sleep(0.01)
    watchers = [asyncio.ensure_future(services.events(swarm_id)) for _ in range(3)]
    resume_from = 4
    resumer = asyncio.ensure_future(services.events(swarm_id, after=resume_from))
    history = await services.events(swarm_id, history_only=True)
    assert history and history[-1].WhichOneof("kind") != "complete"
    await asyncio.sleep(0.05)
    await services.stub.CancelSwarm(
        orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm_id), timeout=10
    )
    results = [await asyncio.wait_for(w, 20) for w in watchers]
    swarm = await wait_terminal(services, swarm_id)
    full = [e.sequence for e in results[0]]
    assert full == list(range(1, swarm.last_sequence + 1))
    assert all([e.sequence for e in r] == full for r in results)
    assert results[0][-1].WhichOneof("kind") == "complete"
    assert [e.sequence for e in history] == full[: len(history)]
    rest = await asyncio.wait_for(resumer, 20)
    assert [e.sequence for e in rest] == full[resume_from:]
    assert [e.SerializeToString() for e in rest] == [
        e.SerializeToString() for e in results[0][resume_from:]
    ]


async def test_watching_a_finished_swarm_reads_the_store(services) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(plan=plan(subtask("a"), subtask("b", "a")), config=fast_config())
    swarm = await wait_terminal(services, reply.swarm.id)
    for _ in range(200):  # the run is forgotten once its log and state are stored
        if services.orchestrator.live(swarm.id) is None:
            break
        await asyncio.sleep(0.01)
    assert services.orchestrator.live(swarm.id) is None
    events = await services.events(swarm.id)
    assert [e.sequence for e in events] == list(range(1, swarm.last_sequence + 1))
    tail = await services.events(swarm.id, after=swarm.last_sequence - 2)
    assert [e.sequence for e in tail] == [swarm.last_sequence - 1, swarm.last_sequence]
    assert tail[-1].complete.success


async def test_watch_errors(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.events("unknown-swarm")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.events("x", after=-1)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
