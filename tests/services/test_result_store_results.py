"""Shared results over gRPC: publish, get, query, list, TTL and the sweep."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from swarmd.services.result_store.testing import ManualClock, ServedResultStore, serve_result_store
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

T = 5.0  # deadline of every call


def value(obj: Any) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


def plain(v: struct_pb2.Value) -> Any:
    return json_format.MessageToDict(v)


async def publish(
    stub: ResultStoreServiceStub, key: str, obj: Any = "v", **kw: Any
) -> pb.SharedResult:
    response = await stub.PublishResult(
        pb.PublishResultRequest(key=key, value=value(obj), **kw), timeout=T
    )
    return response.result


async def failure(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


@pytest.mark.parametrize(
    ("obj", "type_name"),
    [
        (None, "null"),
        (True, "boolean"),
        (42, "integer"),
        (-3.0, "integer"),
        (2.5, "number"),
        ("text", "string"),
        ([1, "a", None], "array"),
        ([], "array"),
        ({"a": {"b": [1, 2]}}, "object"),
        ({}, "object"),
    ],
)
async def test_publish_then_get_round_trips_value_and_type(
    stub: ResultStoreServiceStub, obj: Any, type_name: str
) -> None:
    published = await publish(stub, "k", obj, scope="s1", producer_id="task-1", tags=["x", "y"])
    assert published.type_name == type_name
    got = (await stub.GetResult(pb.GetResultRequest(scope="s1", key="k"), timeout=T)).result
    assert plain(got.value) == plain(value(obj))
    assert got.type_name == type_name
    assert (got.scope, got.key, got.producer_id, list(got.tags)) == (
        "s1",
        "k",
        "task-1",
        ["x", "y"],
    )
    assert got.published_at.seconds == 1_700_000_000
    assert not got.HasField("expires_at")


async def test_publish_is_last_writer_wins_and_replaces_tags(
    stub: ResultStoreServiceStub, clock: ManualClock
) -> None:
    await publish(stub, "k", 1, producer_id="a", tags=["old"])
    clock.advance(1)
    await publish(stub, "k", {"n": 2}, producer_id="b", tags=["new"])
    got = (await stub.GetResult(pb.GetResultRequest(key="k"), timeout=T)).result
    assert plain(got.value) == {"n": 2}
    assert got.producer_id == "b"
    assert list(got.tags) == ["new"]
    old = await stub.QueryResults(pb.QueryResultsRequest(tags=["old"]), timeout=T)
    assert list(old.results) == []


async def test_get_unknown_key_is_not_found(stub: ResultStoreServiceStub) -> None:
    error = await failure(stub.GetResult(pb.GetResultRequest(scope="s", key="nope"), timeout=T))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in error.details()


async def test_scopes_are_separate(stub: ResultStoreServiceStub) -> None:
    await publish(stub, "k", "in a", scope="a")
    await publish(stub, "k", "global")
    got = (await stub.GetResult(pb.GetResultRequest(scope="a", key="k"), timeout=T)).result
    assert plain(got.value) == "in a"
    listed = await stub.ListResults(pb.ListResultsRequest(scope="b"), timeout=T)
    assert list(listed.results) == []
    error = await failure(stub.GetResult(pb.GetResultRequest(scope="b", key="k"), timeout=T))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_query_by_tags_matches_any_tag_oldest_first(
    stub: ResultStoreServiceStub, clock: ManualClock
) -> None:
    for key, tags in [("a", ["red"]), ("b", ["blue", "red"]), ("c", ["green"]), ("d", [])]:
        await publish(stub, key, key, scope="s", tags=tags)
        clock.advance(1)
    response = await stub.QueryResults(
        pb.QueryResultsRequest(scope="s", tags=["red", "green", "red"]), timeout=T
    )
    assert [r.key for r in response.results] == ["a", "b", "c"]
    limited = await stub.QueryResults(
        pb.QueryResultsRequest(scope="s", tags=["red"], limit=1), timeout=T
    )
    assert [r.key for r in limited.results] == ["a"]


async def test_query_by_prefix_is_literal_and_case_sensitive(stub: ResultStoreServiceStub) -> None:
    for key in ["build/a", "build/b", "Build/c", "buildx", "b%ild/d", "b_ild/e", "bu"]:
        await publish(stub, key, key, scope="s")

    async def keys(prefix: str) -> list[str]:
        response = await stub.QueryResults(
            pb.QueryResultsRequest(scope="s", prefix=prefix), timeout=T
        )
        return sorted(r.key for r in response.results)

    assert await keys("build/") == ["build/a", "build/b"]
    assert await keys("b%") == ["b%ild/d"]
    assert await keys("b_") == ["b_ild/e"]
    assert await keys("Build") == ["Build/c"]


async def test_query_by_producer(stub: ResultStoreServiceStub) -> None:
    await publish(stub, "k1", 1, producer_id="p1")
    await publish(stub, "k2", 2, producer_id="p2")
    await publish(stub, "k3", 3, producer_id="p1")
    response = await stub.QueryResults(pb.QueryResultsRequest(producer_id="p1"), timeout=T)
    assert sorted(r.key for r in response.results) == ["k1", "k3"]


@pytest.mark.parametrize(
    "request_kw",
    [{}, {"tags": ["a"], "prefix": "p"}, {"prefix": "p", "producer_id": "x"}],
)
async def test_query_needs_exactly_one_criterion(
    stub: ResultStoreServiceStub, request_kw: dict[str, Any]
) -> None:
    error = await failure(stub.QueryResults(pb.QueryResultsRequest(**request_kw), timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "exactly one criterion" in error.details()


async def test_list_oldest_first_with_limit(
    stub: ResultStoreServiceStub, clock: ManualClock
) -> None:
    for key in ["z", "y", "x"]:
        await publish(stub, key, key)
        clock.advance(1)
    response = await stub.ListResults(pb.ListResultsRequest(), timeout=T)
    assert [r.key for r in response.results] == ["z", "y", "x"]
    response = await stub.ListResults(pb.ListResultsRequest(limit=2), timeout=T)
    assert [r.key for r in response.results] == ["z", "y"]


def rows(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the database directly, bypassing the store."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


async def test_expired_results_are_invisible_before_the_sweep(
    stub: ResultStoreServiceStub, served: ServedResultStore, clock: ManualClock
) -> None:
    published = await publish(stub, "short", 1, scope="s", ttl_secs=1, tags=["t"], producer_id="p")
    await publish(stub, "long", 2, scope="s", ttl_secs=60, tags=["t"], producer_id="p")
    await publish(stub, "forever", 3, scope="s", tags=["t"], producer_id="p")
    assert published.expires_at.seconds == published.published_at.seconds + 1
    clock.advance(1.5)

    error = await failure(stub.GetResult(pb.GetResultRequest(scope="s", key="short"), timeout=T))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    for request in [
        stub.ListResults(pb.ListResultsRequest(scope="s"), timeout=T),
        stub.QueryResults(pb.QueryResultsRequest(scope="s", tags=["t"]), timeout=T),
        stub.QueryResults(pb.QueryResultsRequest(scope="s", prefix="s"), timeout=T),
        stub.QueryResults(pb.QueryResultsRequest(scope="s", producer_id="p"), timeout=T),
    ]:
        assert "short" not in [r.key for r in (await request).results]
    db = served.store.settings.db_path
    assert len(rows(db, "SELECT key FROM shared_results")) == 3  # still stored

    report = await served.store.sweep()
    assert report.results == 1
    assert sorted(r[0] for r in rows(db, "SELECT key FROM shared_results")) == ["forever", "long"]
    assert sorted(r[0] for r in rows(db, "SELECT key FROM shared_result_tags")) == [
        "forever",
        "long",
    ]


async def test_background_sweeper_deletes_expired_rows(tmp_path: Path) -> None:
    clock = ManualClock()
    async with serve_result_store(
        tmp_path / "swarmd.db", clock=clock, start_sweeper=True, sweep_interval_secs=0.02
    ) as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stub = ResultStoreServiceStub(channel)
            await publish(stub, "gone", 1, ttl_secs=1)
            await publish(stub, "kept", 2)
        clock.advance(2)
        db = served.store.settings.db_path
        for _ in range(100):
            if rows(db, "SELECT key FROM shared_results") == [("kept",)]:
                break
            await asyncio.sleep(0.02)
        assert rows(db, "SELECT key FROM shared_results") == [("kept",)]


async def test_fifty_concurrent_publishers_on_several_channels_lose_nothing(
    served: ServedResultStore,
) -> None:
    channels = [grpc.aio.insecure_channel(served.address) for _ in range(5)]
    try:
        stubs = [ResultStoreServiceStub(ch) for ch in channels]
        await asyncio.gather(
            *(
                publish(stubs[i % 5], f"key-{i:02d}", {"i": i}, scope="swarm", tags=[f"t{i % 3}"])
                for i in range(50)
            )
        )
        # And 20 writers racing on one key: exactly one value survives, intact.
        await asyncio.gather(
            *(publish(stubs[i % 5], "shared", i, scope="swarm") for i in range(20))
        )
        response = await stubs[0].ListResults(pb.ListResultsRequest(scope="swarm"), timeout=T)
    finally:
        for ch in channels:
            await ch.close()
    by_key = {r.key: plain(r.value) for r in response.results}
    assert len(by_key) == 51
    assert all(by_key[f"key-{i:02d}"] == {"i": i} for i in range(50))
    assert by_key["shared"] in range(20)


@pytest.mark.parametrize(
    ("request_kw", "field"),
    [
        ({"key": ""}, "key"),
        ({"key": "k" * 513}, "key"),
        ({"key": "k", "scope": "s" * 129}, "scope"),
        ({"key": "k", "value": struct_pb2.Value()}, "value"),
        ({"key": "k", "value": value("x" * (1024 * 1024))}, "value"),
        ({"key": "k", "value": struct_pb2.Value(number_value=float("nan"))}, "value"),
        ({"key": "k", "ttl_secs": -1}, "ttl_secs"),
        ({"key": "k", "tags": ["ok", ""]}, "tags[1]"),
    ],
)
async def test_bad_publish_is_invalid_argument_naming_the_field(
    stub: ResultStoreServiceStub, request_kw: dict[str, Any], field: str
) -> None:
    request_kw.setdefault("value", value(1))
    error = await failure(stub.PublishResult(pb.PublishResultRequest(**request_kw), timeout=T))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()


async def test_largest_allowed_key_and_value_are_accepted(stub: ResultStoreServiceStub) -> None:
    big = "x" * (1024 * 1024 - 2)  # plus two quotes = exactly 1 MiB of JSON
    published = await publish(stub, "k" * 512, big, scope="s" * 128)
    assert published.key == "k" * 512


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.ListResults(pb.ListResultsRequest(limit=-1), timeout=T), "limit"),
        (lambda s: s.ListResults(pb.ListResultsRequest(limit=10_001), timeout=T), "limit"),
        (lambda s: s.GetResult(pb.GetResultRequest(key=""), timeout=T), "key"),
        (lambda s: s.QueryResults(pb.QueryResultsRequest(prefix="p" * 513), timeout=T), "prefix"),
        (lambda s: s.QueryResults(pb.QueryResultsRequest(tags=[""]), timeout=T), "tags[0]"),
    ],
)
async def test_bad_reads_are_invalid_argument_naming_the_field(
    stub: ResultStoreServiceStub, call: Any, field: str
) -> None:
    error = await failure(call(stub))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()
