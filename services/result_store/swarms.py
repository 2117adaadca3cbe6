"""Durable swarm state: the whole ``Swarm`` plus per-subtask updates.

A swarm is saved whole now and then (plan, config, stats), while its
subtasks change far more often (status, current tool, steps). Rewriting the
whole blob on every subtask change would cost O(swarm) per update, so a
subtask's state is stored in its own row and merged into the swarm, by
subtask id, when it is loaded. Saving the whole swarm again replaces those
rows: the new copy already holds the latest subtask states.

This is what lets an orchestrator restart and resume a swarm.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiosqlite
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from swarmd.services.errors import InvalidArgument, NotFound
from swarmd.services.result_store._db import Database
from swarmd.services.result_store._validate import (
    check_id,
    check_limit,
    check_non_negative,
    check_times,
)
from swarmd.v1.common_pb2 import SubTaskState, SubTaskStatus, Swarm, SwarmState

__all__ = ["DEFAULT_LIST_LIMIT", "MAX_LIST_LIMIT", "SwarmQuery", "SwarmStates"]

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


def _check_known(field: str, value: int, enum: EnumTypeWrapper) -> None:
    """Refuse an enum number this version does not define (it could never be listed by state)."""
    if value not in enum.values():
        raise InvalidArgument(f"{field}: {value} is not a {enum.DESCRIPTOR.name} value")


def _merge(blob: bytes, overrides: Sequence[bytes]) -> Swarm:
    """The stored swarm with each saved subtask state replacing the one with
    the same id; states of subtasks the stored swarm does not list yet are
    appended in the order they were first saved."""
    swarm = Swarm.FromString(blob)
    position = {state.subtask.id: i for i, state in enumerate(swarm.subtasks)}
    for raw in overrides:
        state = SubTaskState.FromString(raw)
        index = position.get(state.subtask.id)
        if index is None:
            position[state.subtask.id] = len(swarm.subtasks)
            swarm.subtasks.append(state)
        else:
            swarm.subtasks[index].CopyFrom(state)
    return swarm


async def _overrides(
    conn: aiosqlite.Connection, swarm_ids: Sequence[str]
) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {swarm_id: [] for swarm_id in swarm_ids}
    if not swarm_ids:
        return found
    marks = ", ".join("?" for _ in swarm_ids)
    rows = await conn.execute_fetchall(
        f"SELECT swarm_id, state FROM subtask_states WHERE swarm_id IN ({marks}) ORDER BY rowid",
        tuple(swarm_ids),
    )
    for row in rows:
        found[row["swarm_id"]].append(row["state"])
    return found


class SwarmStates:
    """Save, update, load and list swarms."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    async def save(self, swarm: Swarm) -> None:
        """Store ``swarm``, replacing the stored copy and its subtask updates."""
        check_id("swarm.id", swarm.id)
        _check_known("swarm.state", swarm.state, SwarmState)
        for i, state in enumerate(swarm.subtasks):
            if not state.subtask.id:
                raise InvalidArgument(f"swarm.subtasks[{i}].subtask.id: must not be empty")
            _check_known(f"swarm.subtasks[{i}].status", state.status, SubTaskStatus)
        check_times("swarm", swarm)
        now = self._now_us()
        # The list order follows created_at; a swarm saved without one keeps
        # the time it was first stored rather than moving to the top.
        explicit = swarm.HasField("created_at")
        params = {
            "id": swarm.id,
            "tenant": swarm.tenant,
            "state": int(swarm.state),
            "created": swarm.created_at.ToMicroseconds() if explicit else now,
            "explicit": explicit,
            "now": now,
            "blob": swarm.SerializeToString(deterministic=True),
        }

        async def work(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                """
                INSERT INTO swarms (id, tenant, state, created_at_us, updated_at_us, swarm)
                VALUES (:id, :tenant, :state, :created, :now, :blob)
                ON CONFLICT (id) DO UPDATE SET
                    tenant = excluded.tenant,
                    state = excluded.state,
                    created_at_us = CASE WHEN :explicit THEN excluded.created_at_us
                                         ELSE swarms.created_at_us END,
                    updated_at_us = excluded.updated_at_us,
                    swarm = excluded.swarm
                """,
                params,
            )
            await conn.execute("DELETE FROM subtask_states WHERE swarm_id = ?", (swarm.id,))

        await self._db.run(work, write=True)

    async def save_subtask(self, swarm_id: str, state: SubTaskState) -> None:
        """Store one subtask's latest state; NotFound when the swarm is not stored."""
        check_id("swarm_id", swarm_id)
        check_id("state.subtask.id", state.subtask.id)
        _check_known("state.status", state.status, SubTaskStatus)
        check_times("state", state)
        blob = state.SerializeToString(deterministic=True)
        now = self._now_us()

        async def work(conn: aiosqlite.Connection) -> None:
            rows = list(
                await conn.execute_fetchall("SELECT 1 FROM swarms WHERE id = ?", (swarm_id,))
            )
            if not rows:
                raise NotFound(f"swarm {swarm_id!r} is not stored; save the swarm first")
            await conn.execute(
                """
                INSERT INTO subtask_states (swarm_id, subtask_id, state, updated_at_us)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (swarm_id, subtask_id) DO UPDATE SET
                    state = excluded.state,
                    updated_at_us = excluded.updated_at_us
                """,
                (swarm_id, state.subtask.id, blob, now),
            )

        await self._db.run(work, write=True)

    async def load(self, swarm_id: str) -> Swarm:
        """The stored swarm with its latest subtask states; NotFound when unknown."""
        check_id("swarm_id", swarm_id)

        async def work(conn: aiosqlite.Connection) -> Swarm:
            rows = list(
                await conn.execute_fetchall("SELECT swarm FROM swarms WHERE id = ?", (swarm_id,))
            )
            if not rows:
                raise NotFound(f"swarm {swarm_id!r} is not stored")
            return _merge(rows[0]["swarm"], (await _overrides(conn, [swarm_id]))[swarm_id])

        return await self._db.run(work)

    async def list(
        self,
        states: Sequence[int] = (),
        limit: int = 0,
        offset: int = 0,
        *,
        query: SwarmQuery | None = None,
    ) -> list[Swarm]:
        """Stored swarms, newest first (oldest first with ``query.oldest_first``),
        optionally only those in ``states`` and matching ``query``.

        Every swarm returned has ``created_at`` set: its sort key, the time it
        was first stored when it was saved without one.
        """
        limit = check_limit("limit", limit, default=DEFAULT_LIST_LIMIT, maximum=MAX_LIST_LIMIT)
        check_non_negative("offset", offset)
        query = query or SwarmQuery()
        if offset and query.after_id:
            raise InvalidArgument("offset: cannot be combined with after_id")
        wanted = sorted({int(s) for s in states})
        where, params = _conditions(wanted, query)
        direction = "ASC" if query.oldest_first else "DESC"
        order = f"ORDER BY created_at_us {direction}, id {direction} LIMIT ? OFFSET ?"
        labels = dict(query.labels)

        async def work(conn: aiosqlite.Connection) -> list[Swarm]:
            found: list[tuple[sqlite3.Row, Swarm]] = []
            skip = offset
            cursor = (query.after_created_at_us, query.after_id) if query.after_id else None
            # Labels live in the blob: read a batch, keep the matches, read on
            # from the last row seen until the page is full or the rows end.
            while True:
                batch_where, batch_params = _after(where, params, cursor, query.oldest_first)
                rows: list[sqlite3.Row] = list(
                    await conn.execute_fetchall(
                        f"SELECT id, created_at_us, swarm FROM swarms {batch_where} {order}",
                        (*batch_params, limit, skip),
                    )
                )
                skip = 0
                for row in rows:
                    swarm = Swarm.FromString(row["swarm"])
                    if all(swarm.labels.get(k) == v for k, v in labels.items()):
                        found.append((row, swarm))
                if not labels or len(rows) < limit or len(found) >= limit:
                    break
                cursor = (rows[-1]["created_at_us"], rows[-1]["id"])
            found = found[:limit]
            overrides = await _overrides(conn, [row["id"] for row, _ in found])
            swarms = []
            for row, _ in found:
                swarm = _merge(row["swarm"], overrides[row["id"]])
                if not swarm.HasField("created_at"):
                    swarm.created_at.FromMicroseconds(row["created_at_us"])
                swarms.append(swarm)
            return swarms

        return await self._db.run(work)


@dataclass(frozen=True)
class SwarmQuery:
    """What a listing keeps beyond states, and where a keyset page starts."""

    #: Labels a swarm must all carry with these values.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Inclusive lower bound of ``created_at``, microseconds; None = none.
    created_after_us: int | None = None
    #: Exclusive upper bound of ``created_at``, microseconds; None = none.
    created_before_us: int | None = None
    #: Oldest first instead of newest first.
    oldest_first: bool = False
    #: Keyset cursor: only swarms after this one in the listing order.
    after_id: str = ""
    #: ``created_at`` (microseconds) of the swarm named by ``after_id``.
    after_created_at_us: int = 0
    #: Only swarms of this tenant; empty = every tenant.
    tenant: str = ""


def _conditions(states: Sequence[int], query: SwarmQuery) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if states:
        clauses.append(f"state IN ({', '.join('?' for _ in states)})")
        params.extend(states)
    if query.tenant:
        clauses.append("tenant = ?")
        params.append(query.tenant)
    if query.created_after_us is not None:
        clauses.append("created_at_us >= ?")
        params.append(query.created_after_us)
    if query.created_before_us is not None:
        clauses.append("created_at_us < ?")
        params.append(query.created_before_us)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _after(
    where: str, params: list[object], cursor: tuple[int, str] | None, oldest_first: bool
) -> tuple[str, list[object]]:
    """``where`` narrowed to the rows after ``cursor`` in the listing order."""
    if cursor is None:
        return where, params
    op = ">" if oldest_first else "<"
    clause = f"(created_at_us {op} ? OR (created_at_us = ? AND id {op} ?))"
    narrowed = f"{where} AND {clause}" if where else f"WHERE {clause}"
    return narrowed, [*params, cursor[0], cursor[0], cursor[1]]
