"""Audit records: decisions taken about a swarm, kept with the facts behind them.

The collapse controller writes one per kill and per promotion (the reason,
the tick, every branch's evaluation and observation), so a kill can be
explained after the fact without replaying the event log. The detail is a
JSON object (``google.protobuf.Struct`` on the wire).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aiosqlite
from google.protobuf.json_format import MessageToDict, ParseDict

from swarmd.services.errors import InvalidArgument
from swarmd.services.result_store._db import Database
from swarmd.services.result_store._validate import check_id
from swarmd.v1.result_store_pb2 import AuditRecord

__all__ = ["MAX_DETAIL_BYTES", "AuditLog"]

#: Largest detail a record may carry (JSON bytes).
MAX_DETAIL_BYTES = 1 << 20
MAX_KIND_CHARS = 128


class AuditLog:
    """Append and list each swarm's audit records."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def append(self, record: AuditRecord) -> int:
        """Store ``record`` and return its id."""
        check_id("record.swarm_id", record.swarm_id)
        if not record.kind or len(record.kind) > MAX_KIND_CHARS:
            raise InvalidArgument(f"record.kind: must be 1-{MAX_KIND_CHARS} characters")
        detail = json.dumps(MessageToDict(record.detail), sort_keys=True)
        if len(detail.encode()) > MAX_DETAIL_BYTES:
            raise InvalidArgument(f"record.detail: at most {MAX_DETAIL_BYTES} bytes of JSON")
        params = (record.swarm_id, record.kind, record.subtask_id, detail, int(self._clock() * 1_000_000))

        async def work(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "INSERT INTO audit_records (swarm_id, kind, subtask_id, detail, created_at_us) VALUES (?, ?, ?, ?, ?)",
                params,
            )
            return int(cursor.lastrowid or 0)

        return await self._db.run(work, write=True)

    async def list(self, swarm_id: str, kind: str = "") -> list[AuditRecord]:
        """The swarm's records (of ``kind`` when given), oldest first."""
        check_id("swarm_id", swarm_id)

        async def work(conn: aiosqlite.Connection) -> list[AuditRecord]:
            rows = await conn.execute_fetchall(
                "SELECT id, kind, subtask_id, detail, created_at_us FROM audit_records "
                "WHERE swarm_id = ? AND (? = '' OR kind = ?) ORDER BY id",
                (swarm_id, kind, kind),
            )
            records = []
            for rid, rkind, sid, detail, created in rows:
                record = AuditRecord(id=rid, swarm_id=swarm_id, kind=rkind, subtask_id=sid)
                ParseDict(json.loads(detail), record.detail)
                record.created_at.FromMicroseconds(created)
                records.append(record)
            return records

        return await self._db.run(work)
