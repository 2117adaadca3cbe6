"""Audit records in the result store: migration 4, append and list over gRPC."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import grpc
import pytest

from swarmd.services._host import ServiceHost
from swarmd.services.config import ResultStoreSettings, TelemetrySettings
from swarmd.services.result_store import ResultStore, build_result_store
from swarmd.services.result_store._schema import SCHEMA_VERSION, migrate
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

T = 10


async def test_a_version_3_database_gains_the_audit_table(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=3) == 3
    async with ResultStore(ResultStoreSettings(db_path=path, grace_period_secs=0)) as store:
        assert store.schema_version == SCHEMA_VERSION >= 4
        record = pb.AuditRecord(swarm_id="s1", kind="collapse_kill_branch", subtask_id="a")
        record.detail.update({"reason": "collapse: x", "tick": 4})
        first = await store.audit.append(record)
        (got,) = await store.audit.list("s1")
        assert (got.id, got.kind, got.subtask_id) == (first, "collapse_kill_branch", "a")
        assert got.detail == record.detail
        assert await store.audit.list("other") == []


async def test_records_are_appended_listed_by_swarm_and_kind_and_checked(tmp_path: Path) -> None:
    config = ResultStoreSettings(db_path=tmp_path / "swarmd.db", grace_period_secs=0)
    host = ServiceHost("result-store", config, telemetry_settings=TelemetrySettings(enabled=False))
    await build_result_store(host, config)
    await host.start()
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            stub = ResultStoreServiceStub(channel)
            for swarm, kind, sid in (("s1", "collapse_promote_branch", "b"), ("s1", "collapse_kill_branch", "a"), ("s2", "collapse_kill_branch", "z")):
                record = pb.AuditRecord(swarm_id=swarm, kind=kind, subtask_id=sid)
                record.detail.update({"evaluations": [{"score": 0.5}]})
                await stub.AppendAuditRecord(pb.AppendAuditRecordRequest(record=record), timeout=T)
            got = await stub.ListAuditRecords(pb.ListAuditRecordsRequest(swarm_id="s1"), timeout=T)
            assert [(r.kind, r.subtask_id) for r in got.records] == [("collapse_promote_branch", "b"), ("collapse_kill_branch", "a")]
            assert got.records[0].detail["evaluations"][0]["score"] == 0.5
            assert got.records[0].created_at.seconds > 0
            kills = await stub.ListAuditRecords(pb.ListAuditRecordsRequest(swarm_id="s1", kind="collapse_kill_branch"), timeout=T)
            assert [r.subtask_id for r in kills.records] == ["a"]
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.AppendAuditRecord(pb.AppendAuditRecordRequest(record=pb.AuditRecord(swarm_id="s1")), timeout=T)
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await host.stop()
