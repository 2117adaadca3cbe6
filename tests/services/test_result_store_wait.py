"""WaitForResult: immediate answer, wake-up on publish, follow, timeout, clean-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from helpers import until

from swarmd.services.config import ResultStoreSettings
from swarmd.services.errors import DeadlineExceeded, InvalidArgument, Unavailable
from swarmd.services.result_store import ResultStore
from swarmd.services.result_store.testing import ServedResultStore, serve_result_store
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

T = 5.0


def value(obj: Any) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedResultStore]:
    async with serve_result_store(tmp_path / "swarmd.db") as served:
        yield served


async def publish(stub: ResultStoreServiceStub, key: str, obj: Any, scope: str = "s") -> None:
    await stub.PublishResult(
        pb.PublishResultRequest(scope=scope, key=key, value=value(obj)), timeout=T
    )


async def drain(call: Any) -> list[pb.WaitForResultResponse]:
    return [message async for message in call]


async def test_returns_at_once_when_the_key_exists(stub: ResultStoreServiceStub) -> None:
    await publish(stub, "k", "ready")
    started = time.monotonic()
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="k", timeout_ms=10_000), timeout=T
    )
    messages = [m async for m in call]
    assert time.monotonic() - started < 1.0
    assert [json_format.MessageToDict(m.result.value) for m in messages] == ["ready"]
    assert await call.code() == grpc.StatusCode.OK


async def test_wakes_up_on_publish(stub: ResultStoreServiceStub, served: ServedResultStore) -> None:
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="k", timeout_ms=10_000), timeout=T
    )
    await until(lambda: served.store.results.waiters.count("s", "k") == 1)
    await publish(stub, "other", 0)  # another key wakes nobody
    await publish(stub, "k", {"done": True})
    messages = [m async for m in call]
    assert [json_format.MessageToDict(m.result.value) for m in messages] == [{"done": True}]
    assert messages[0].result.type_name == "object"
    await until(lambda: served.store.results.waiters.count() == 0)


async def test_many_waiters_from_several_channels_all_wake(served: ServedResultStore) -> None:
    channels = [grpc.aio.insecure_channel(served.address) for _ in range(4)]
    try:
        stubs = [ResultStoreServiceStub(ch) for ch in channels]
        calls = [
            stubs[i % 4].WaitForResult(
                pb.WaitForResultRequest(scope="s", key="k", timeout_ms=10_000), timeout=T
            )
            for i in range(40)
        ]
        await until(lambda: served.store.results.waiters.count("s", "k") == 40)
        await publish(stubs[0], "k", 7)
        results = await asyncio.gather(*(drain(call) for call in calls))
    finally:
        for ch in channels:
            await ch.close()
    assert all(len(r) == 1 and r[0].result.value.number_value == 7 for r in results)


async def test_follow_streams_every_update(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    await publish(stub, "k", 0)
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="k", timeout_ms=30_000, follow=True), timeout=T
    )
    received: list[float] = []

    async def read() -> None:
        async for message in call:
            received.append(message.result.value.number_value)

    reader = asyncio.create_task(read())
    await until(lambda: received == [0])
    for n in (1, 2, 3):
        await publish(stub, "k", n)
        await until(lambda n=n: received[-1] == n)
    assert received == [0, 1, 2, 3]
    assert served.store.results.waiters.count("s", "k") == 1
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await until(lambda: served.store.results.waiters.count() == 0)


async def test_follow_ends_cleanly_at_the_timeout_once_something_arrived(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    await publish(stub, "k", "first")
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="k", timeout_ms=150, follow=True), timeout=T
    )
    messages = await drain(call)
    assert [m.result.value.string_value for m in messages] == ["first"]
    assert await call.code() == grpc.StatusCode.OK
    assert served.store.results.waiters.count() == 0


async def test_timeout_without_a_result_is_deadline_exceeded(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    started = time.monotonic()
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="never", timeout_ms=150), timeout=T
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "never" in info.value.details()
    assert 0.14 < time.monotonic() - started < 2.0
    assert served.store.results.waiters.count() == 0


async def test_an_expired_result_does_not_count_as_existing(tmp_path: Path) -> None:
    now = [1000.0]
    async with serve_result_store(tmp_path / "db.sqlite", clock=lambda: now[0]) as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stub = ResultStoreServiceStub(channel)
            await stub.PublishResult(
                pb.PublishResultRequest(scope="s", key="k", value=value(1), ttl_secs=1), timeout=T
            )
            now[0] += 5
            call = stub.WaitForResult(
                pb.WaitForResultRequest(scope="s", key="k", timeout_ms=100), timeout=T
            )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in call:
                    pass
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_client_going_away_removes_the_waiter(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="k", timeout_ms=60_000), timeout=T
    )
    await until(lambda: served.store.results.waiters.count("s", "k") == 1)
    call.cancel()
    await until(lambda: served.store.results.waiters.count() == 0)


async def test_client_deadline_removes_the_waiter(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    call = stub.WaitForResult(
        pb.WaitForResultRequest(scope="s", key="k", timeout_ms=60_000), timeout=0.2
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await until(lambda: served.store.results.waiters.count() == 0)


@pytest.mark.parametrize(
    ("request_kw", "field"),
    [
        ({"key": ""}, "key"),
        ({"key": "k", "timeout_ms": -1}, "timeout_ms"),
        ({"key": "k", "timeout_ms": 3_600_001}, "timeout_ms"),
        ({"key": "k", "scope": "x" * 129}, "scope"),
    ],
)
async def test_bad_wait_is_invalid_argument(
    stub: ResultStoreServiceStub, request_kw: dict[str, Any], field: str
) -> None:
    call = stub.WaitForResult(pb.WaitForResultRequest(**request_kw), timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{field}:")


# -- in-process use of the same primitive ------------------------------------


async def test_in_process_wait_and_close_ends_waiters(tmp_path: Path) -> None:
    store = ResultStore(ResultStoreSettings(db_path=tmp_path / "db.sqlite"))
    async with store:
        with pytest.raises(InvalidArgument):
            async with aclosing(store.results.wait_for("s", "")) as gen:
                await anext(gen)
        with pytest.raises(DeadlineExceeded):
            async with aclosing(store.results.wait_for("s", "k", timeout_ms=20)) as gen:
                await anext(gen)

        async def wait() -> None:
            async with aclosing(store.results.wait_for("s", "k", timeout_ms=60_000)) as gen:
                await anext(gen)

        waiter = asyncio.create_task(wait())
        await until(lambda: store.results.waiters.count() == 1)
        await store.close()
        with pytest.raises(Unavailable):
            await waiter
        assert store.results.waiters.count() == 0
