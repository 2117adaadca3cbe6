"""The store's database: pragmas, migrations, persistence, lifecycle, serving."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.services._host import ServiceHost
from swarmd.services.config import ResultStoreSettings, TelemetrySettings
from swarmd.services.errors import FailedPrecondition, Unavailable
from swarmd.services.result_store import (
    SCHEMA_VERSION,
    ResultStore,
    SchemaTooNewError,
    build_result_store,
)
from swarmd.services.result_store._schema import MIGRATIONS, migrate
from swarmd.v1 import common_pb2
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

T = 5.0


def settings(path: Path, **kw: object) -> ResultStoreSettings:
    return ResultStoreSettings(db_path=path, grace_period_secs=0, **kw)  # type: ignore[arg-type]


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_new_database_gets_pragmas_schema_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "swarmd.db"
    async with ResultStore(settings(path)) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert path.exists()
        assert pragma(path, "journal_mode") == "wal"
        assert pragma(path, "auto_vacuum") == 2  # INCREMENTAL
        assert pragma(path, "user_version") == SCHEMA_VERSION


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "swarmd.db"
    async with ResultStore(settings(path)) as store:
        await store.results.publish("s", "k", "p", struct_pb2.Value(string_value="kept"), ["t"])
        await store.cache.put(
            pb.CacheEntry(
                key="ab" * 32, result=common_pb2.SubTaskResult(subtask_id="a", success=True)
            )
        )
        await store.swarms.save(common_pb2.Swarm(id="sw", task="t"))
        await store.events.append(
            "sw", [common_pb2.SwarmEvent(error=common_pb2.SwarmError(message="m"))]
        )
    async with ResultStore(settings(path)) as store:
        assert (await store.results.get("s", "k")).value.string_value == "kept"
        assert [r.key for r in await store.results.query("s", tags=["t"])] == ["k"]
        entry = await store.cache.get("ab" * 32)
        assert entry is not None and entry.result.subtask_id == "a"
        assert (await store.swarms.load("sw")).task == "t"
        events, last = await store.events.read("sw")
        assert last == 1 and events[0].error.message == "m"


async def test_close_is_idempotent_and_later_calls_are_unavailable(tmp_path: Path) -> None:
    store = ResultStore(settings(tmp_path / "swarmd.db"))
    await store.open()
    store.start_sweeper()
    await store.close()
    await store.close()
    with pytest.raises(Unavailable):
        await store.results.list("s")


async def test_store_opens_lazily_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    store = ResultStore(settings(path))
    try:
        assert not path.exists()
        assert await store.results.list("") == []
        assert path.exists()
    finally:
        await store.close()


async def test_old_database_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        assert await migrate(conn, target=1) == 1
        await conn.execute(
            "INSERT INTO shared_results (scope, key, producer_id, value_json, type_name, tags_json, "
            "published_at_us, expires_at_us) VALUES ('s', 'old', 'p', '[1,2]', 'array', '[\"legacy\",\"x\"]', 1, NULL)"
        )
    assert pragma(path, "user_version") == 1
    async with ResultStore(settings(path)) as store:
        assert store.schema_version == SCHEMA_VERSION
        found = await store.results.query("s", tags=["legacy"])
        assert [(r.key, list(r.tags), r.type_name) for r in found] == [
            ("old", ["legacy", "x"], "array")
        ]
    assert pragma(path, "user_version") == SCHEMA_VERSION


async def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "db", isolation_level=None) as conn:
        assert await migrate(conn) == SCHEMA_VERSION
        assert await migrate(conn) == SCHEMA_VERSION


async def test_a_failing_migration_step_leaves_the_previous_version(tmp_path: Path) -> None:
    from swarmd.services.result_store._schema import Migration

    broken = (
        *MIGRATIONS,
        Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE t (x)", "NOT SQL")),
    )
    async with aiosqlite.connect(tmp_path / "db", isolation_level=None) as conn:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(conn, broken)
        rows = list(await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE name = 't'"))
        assert rows == []
        version = list(await conn.execute_fetchall("PRAGMA user_version"))
        assert version[0][0] == SCHEMA_VERSION


async def test_newer_database_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    store = ResultStore(settings(path))
    with pytest.raises(SchemaTooNewError, match=f"schema version {SCHEMA_VERSION + 5}") as info:
        await store.open()
    assert isinstance(info.value, FailedPrecondition)
    assert "upgrade swarmd" in str(info.value)
    await store.close()

    host = ServiceHost(
        "result-store", settings(path), telemetry_settings=TelemetrySettings(enabled=False)
    )
    with pytest.raises(SchemaTooNewError):
        await build_result_store(host, settings(path))


async def test_build_result_store_serves_with_health_and_closes_on_stop(tmp_path: Path) -> None:
    config = settings(tmp_path / "swarmd.db", sweep_interval_secs=0.05)
    host = ServiceHost("result-store", config, telemetry_settings=TelemetrySettings(enabled=False))
    store = await build_result_store(host, config)
    await host.start()
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = await health.Check(
                health_pb2.HealthCheckRequest(service="swarmd.v1.ResultStoreService"), timeout=T
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            stub = ResultStoreServiceStub(channel)
            await stub.PublishResult(
                pb.PublishResultRequest(key="k", value=struct_pb2.Value(bool_value=True)), timeout=T
            )
            got = await stub.GetResult(pb.GetResultRequest(key="k"), timeout=T)
            assert got.result.type_name == "boolean"
            stats = await stub.GetCacheStats(pb.GetCacheStatsRequest(), timeout=T)
            assert stats.stats.current_entries == 0
    finally:
        await host.stop()
    assert store.db.closed
    with pytest.raises(Unavailable):
        await store.results.get("", "k")


async def test_two_stores_opening_one_new_file_at_once_both_migrate(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first, second = ResultStore(settings(path)), ResultStore(settings(path))
    try:
        await asyncio.gather(first.open(), second.open())
        assert first.schema_version == second.schema_version == SCHEMA_VERSION
        await first.swarms.save(common_pb2.Swarm(id="sw"))
        assert (await second.swarms.load("sw")).id == "sw"
    finally:
        await first.close()
        await second.close()


async def test_cancelled_callers_never_leave_a_transaction_open(tmp_path: Path) -> None:
    async with ResultStore(settings(tmp_path / "swarmd.db")) as store:
        tasks = [
            asyncio.create_task(
                store.events.append("sw", [common_pb2.SwarmEvent(warning=common_pb2.SwarmWarning(code="x"))])
            )
            for _ in range(20)
        ]
        await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Shielded work still ran to completion; the log is dense and usable.
        assert (
            await store.events.append("sw", [common_pb2.SwarmEvent(warning=common_pb2.SwarmWarning(code="x"))])
            == 21
        )
        events, last = await store.events.read("sw")
        assert [e.sequence for e in events] == list(range(1, 22))
        assert last == 21
