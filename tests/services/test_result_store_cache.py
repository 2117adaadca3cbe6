"""The result cache over gRPC: hits, misses, TTL, LRU eviction by entries and bytes."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from swarmd.services.result_store.testing import ManualClock, ServedResultStore, serve_result_store
from swarmd.v1 import common_pb2
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

T = 5.0


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def entry(name: str, patch: bytes = b"", success: bool = True) -> pb.CacheEntry:
    return pb.CacheEntry(
        key=key(name),
        result=common_pb2.SubTaskResult(
            subtask_id=name, success=success, result=f"output of {name}"
        ),
        patch=patch,
        base_tree="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        task_name=name,
    )


def keys_in_table(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM cache_entries")}


@pytest.fixture
async def served(tmp_path: Path, clock: ManualClock) -> AsyncIterator[ServedResultStore]:
    async with serve_result_store(
        tmp_path / "swarmd.db",
        clock=clock,
        cache_max_entries=3,
        cache_max_bytes=4096,
        cache_ttl_secs=100,
    ) as served:
        yield served


async def put(stub: ResultStoreServiceStub, e: pb.CacheEntry, ttl_secs: int = 0) -> int:
    return (await stub.CachePut(pb.CachePutRequest(entry=e, ttl_secs=ttl_secs), timeout=T)).evicted


async def get(stub: ResultStoreServiceStub, name: str) -> pb.CacheGetResponse:
    return await stub.CacheGet(pb.CacheGetRequest(key=key(name)), timeout=T)


async def stats(stub: ResultStoreServiceStub) -> common_pb2.CacheStats:
    return (await stub.GetCacheStats(pb.GetCacheStatsRequest(), timeout=T)).stats


async def failure(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_put_then_hit_and_miss_are_counted(
    stub: ResultStoreServiceStub, clock: ManualClock
) -> None:
    assert (await get(stub, "absent")).hit is False
    await put(stub, entry("a", patch=b"diff --git a/x b/x\n"))
    clock.advance(5)
    response = await get(stub, "a")
    assert response.hit
    got = response.entry
    assert got.result.result == "output of a"
    assert got.patch == b"diff --git a/x b/x\n"
    assert (got.task_name, got.base_tree) == ("a", "4b825dc642cb6eb9a060e54bf8d69288fbee4904")
    assert got.created_at.seconds == 1_700_000_000
    assert got.last_access_at.seconds == 1_700_000_005
    assert got.expires_at.seconds == 1_700_000_100  # the store's default TTL
    assert got.size_bytes > 0
    s = await stats(stub)
    assert (s.hits, s.misses, s.current_entries, s.current_bytes) == (1, 1, 1, got.size_bytes)
    assert s.hit_rate == pytest.approx(0.5)


async def test_keys_are_case_insensitive_hex(stub: ResultStoreServiceStub) -> None:
    e = entry("a")
    e.key = e.key.upper()
    await put(stub, e)
    assert (await get(stub, "a")).hit


async def test_lru_eviction_by_entries_deletes_rows(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    for name in "abc":
        assert await put(stub, entry(name)) == 0
    assert (await get(stub, "a")).hit  # a is now the most recently used; b the least
    assert await put(stub, entry("d")) == 1
    assert keys_in_table(served.store.settings.db_path) == {key("a"), key("c"), key("d")}
    assert (await get(stub, "b")).hit is False
    assert await put(stub, entry("e")) == 1  # c is next
    assert keys_in_table(served.store.settings.db_path) == {key("a"), key("d"), key("e")}
    s = await stats(stub)
    assert (s.evictions, s.current_entries) == (2, 3)


async def test_replacing_an_entry_is_not_an_eviction(stub: ResultStoreServiceStub) -> None:
    for _ in range(5):
        assert await put(stub, entry("a")) == 0
    s = await stats(stub)
    assert (s.evictions, s.current_entries) == (0, 1)


async def test_lru_eviction_by_bytes(
    stub: ResultStoreServiceStub, served: ServedResultStore
) -> None:
    await put(stub, entry("a", patch=b"x" * 1500))
    await put(stub, entry("b", patch=b"x" * 1500))
    assert (await get(stub, "a")).hit
    evicted = await put(stub, entry("c", patch=b"x" * 1500))  # 3 x ~1.6 KB > 4096
    assert evicted == 1
    assert keys_in_table(served.store.settings.db_path) == {key("a"), key("c")}
    s = await stats(stub)
    assert s.current_bytes <= 4096
    assert s.evictions == 1


async def test_entry_larger_than_max_bytes_is_refused(stub: ResultStoreServiceStub) -> None:
    await put(stub, entry("small"))
    error = await failure(
        stub.CachePut(pb.CachePutRequest(entry=entry("huge", patch=b"x" * 5000)), timeout=T)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("entry:")
    assert "4096" in error.details()
    assert (await stats(stub)).current_entries == 1  # nothing was evicted for it


async def test_expired_entry_is_a_miss_and_deleted(
    stub: ResultStoreServiceStub, served: ServedResultStore, clock: ManualClock
) -> None:
    await put(stub, entry("a"), ttl_secs=1)
    await put(stub, entry("b"))
    clock.advance(2)
    assert (await get(stub, "a")).hit is False
    assert keys_in_table(served.store.settings.db_path) == {key("b")}
    s = await stats(stub)
    assert (s.misses, s.expired_removed, s.current_entries) == (1, 1, 1)


async def test_sweep_removes_expired_entries(
    stub: ResultStoreServiceStub, served: ServedResultStore, clock: ManualClock
) -> None:
    await put(stub, entry("a"), ttl_secs=1)
    await put(stub, entry("b"), ttl_secs=1000)
    clock.advance(10)
    report = await served.store.sweep()
    assert report.cache_entries == 1
    assert keys_in_table(served.store.settings.db_path) == {key("b")}
    assert (await stats(stub)).expired_removed == 1


async def test_clear_removes_everything_and_frees_the_pages(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with serve_result_store(
        tmp_path / "big.db", clock=clock, cache_max_entries=100
    ) as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stub = ResultStoreServiceStub(channel)
            for i in range(20):
                await put(stub, entry(f"e{i}", patch=bytes(range(256)) * 100))
            removed = (await stub.ClearCache(pb.ClearCacheRequest(), timeout=T)).removed
            assert removed == 20
            assert keys_in_table(served.store.settings.db_path) == set()
            with sqlite3.connect(served.store.settings.db_path) as conn:
                assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
            s = await stats(stub)
            assert (s.current_entries, s.current_bytes) == (0, 0)
            assert (await stub.ClearCache(pb.ClearCacheRequest(), timeout=T)).removed == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CachePutRequest(), "entry"),
        (pb.CachePutRequest(entry=pb.CacheEntry(key=key("x"))), "entry.result"),
        (pb.CachePutRequest(entry=entry("x", success=False)), "entry.result.success"),
        (pb.CachePutRequest(entry=pb.CacheEntry(key="not hex", result=entry("x").result)), "key"),
        (pb.CachePutRequest(entry=pb.CacheEntry(key="", result=entry("x").result)), "key"),
        (pb.CachePutRequest(entry=entry("x"), ttl_secs=-5), "ttl_secs"),
    ],
)
async def test_bad_put_is_invalid_argument(
    stub: ResultStoreServiceStub, request_: pb.CachePutRequest, field: str
) -> None:
    error = await failure(stub.CachePut(request_, timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()


async def test_bad_get_key_is_invalid_argument(stub: ResultStoreServiceStub) -> None:
    error = await failure(stub.CacheGet(pb.CacheGetRequest(key="../etc"), timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("key:")


async def test_counters_survive_a_restart_of_the_store(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "restarted.db"
    async with serve_result_store(db, clock=clock, cache_ttl_secs=100) as first, grpc.aio.insecure_channel(
        first.address
    ) as channel:
        stub = ResultStoreServiceStub(channel)
        await put(stub, entry("a"))
        assert (await get(stub, "a")).hit
        assert not (await get(stub, "absent")).hit
    async with serve_result_store(db, clock=clock, cache_ttl_secs=100) as second, grpc.aio.insecure_channel(
        second.address
    ) as channel:
        stub = ResultStoreServiceStub(channel)
        assert (await get(stub, "a")).hit
        s = await stats(stub)
    assert (s.hits, s.misses, s.current_entries) == (2, 1, 1)
    assert s.hit_rate == pytest.approx(2 / 3)
