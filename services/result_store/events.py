"""The per-swarm event log: dense, 1-based sequence numbers, append-only.

An append is all-or-nothing: the batch is checked against the log's last
sequence inside one write transaction, so a writer that lost a race (or
replays a batch after a crash) gets FAILED_PRECONDITION and the log is
never left with a gap or a duplicate. Watchers resume with
``read(after_sequence=last_seen)``.

A swarm's log is closed by its terminal event (``complete``, or ``error``
for a swarm that could not run): nothing is appended after it. A later
append gets FAILED_PRECONDITION with reason ``SWARM_FINISHED`` (so watchers
and GetSwarm can never disagree about how a swarm ended); a replay of
events already stored still gets the usual out-of-order answer first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import aiosqlite

from swarmd.services.errors import SWARM_FINISHED, FailedPrecondition, InvalidArgument
from swarmd.services.result_store._db import Database
from swarmd.services.result_store._validate import (
    check_id,
    check_limit,
    check_non_negative,
    check_times,
)
from swarmd.v1.common_pb2 import SwarmEvent

__all__ = [
    "DEFAULT_READ_LIMIT",
    "MAX_APPEND_BATCH",
    "MAX_READ_LIMIT",
    "TERMINAL_KINDS",
    "EventLog",
]

DEFAULT_READ_LIMIT = 1000
MAX_READ_LIMIT = 10_000
MAX_APPEND_BATCH = 10_000
#: Event kinds that end a swarm's log.
TERMINAL_KINDS = frozenset({"complete", "error"})


async def _last_sequence(conn: aiosqlite.Connection, swarm_id: str) -> int:
    rows = list(
        await conn.execute_fetchall(
            "SELECT COALESCE(MAX(sequence), 0) FROM swarm_events WHERE swarm_id = ?", (swarm_id,)
        )
    )
    return int(rows[0][0])


async def _last_kind(conn: aiosqlite.Connection, swarm_id: str) -> str | None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT kind FROM swarm_events WHERE swarm_id = ? ORDER BY sequence DESC LIMIT 1",
            (swarm_id,),
        )
    )
    return str(rows[0][0]) if rows else None


class EventLog:
    """Append to and read from each swarm's event log."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def append(self, swarm_id: str, events: Sequence[SwarmEvent]) -> int:
        """Append ``events`` in order and return the log's last sequence.

        An event with sequence 0 gets ``last + 1``; a non-zero sequence must
        be exactly ``last + 1`` or nothing at all is appended.
        """
        check_id("swarm_id", swarm_id)
        if len(events) > MAX_APPEND_BATCH:
            raise InvalidArgument(f"events: at most {MAX_APPEND_BATCH} per call, got {len(events)}")
        batch: list[SwarmEvent] = []
        for i, source in enumerate(events):
            if source.swarm_id and source.swarm_id != swarm_id:
                raise InvalidArgument(
                    f"events[{i}].swarm_id: {source.swarm_id!r} does not match swarm_id {swarm_id!r}"
                )
            if source.sequence < 0:
                raise InvalidArgument(
                    f"events[{i}].sequence: must not be negative, got {source.sequence}"
                )
            if source.WhichOneof("kind") is None:
                raise InvalidArgument(f"events[{i}]: no event kind is set")
            check_times(f"events[{i}]", source)
            event = SwarmEvent()
            event.CopyFrom(source)
            event.swarm_id = swarm_id
            batch.append(event)
        now_us = int(self._clock() * 1_000_000)

        async def work(conn: aiosqlite.Connection) -> int:
            last = await _last_sequence(conn, swarm_id)
            closed = last > 0 and await _last_kind(conn, swarm_id) in TERMINAL_KINDS
            rows = []
            for i, event in enumerate(batch):
                expected = last + 1
                if event.sequence and event.sequence != expected:
                    raise FailedPrecondition(
                        f"events[{i}].sequence: is {event.sequence} but the log of swarm "
                        f"{swarm_id!r} expects {expected}; nothing was appended"
                    )
                if closed:
                    raise FailedPrecondition(
                        f"events[{i}]: swarm {swarm_id!r} has finished (its log ends with its "
                        f"terminal event at sequence {last}); nothing was appended",
                        reason=SWARM_FINISHED,
                    )
                closed = event.WhichOneof("kind") in TERMINAL_KINDS
                event.sequence = expected
                if not event.HasField("time"):
                    event.time.FromMicroseconds(now_us)
                rows.append(
                    (
                        swarm_id,
                        expected,
                        event.time.ToMicroseconds(),
                        event.WhichOneof("kind"),
                        event.SerializeToString(deterministic=True),
                    )
                )
                last = expected
            await conn.executemany(
                "INSERT INTO swarm_events (swarm_id, sequence, time_us, kind, event) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return last

        return await self._db.run(work, write=True)

    async def read(
        self, swarm_id: str, after_sequence: int = 0, limit: int = 0
    ) -> tuple[list[SwarmEvent], int]:
        """Events with sequence > ``after_sequence`` in order, and the log's last sequence.

        An unknown swarm has an empty log (a watcher may start before the
        first event is written).
        """
        check_id("swarm_id", swarm_id)
        check_non_negative("after_sequence", after_sequence)
        limit = check_limit("limit", limit, default=DEFAULT_READ_LIMIT, maximum=MAX_READ_LIMIT)

        async def work(conn: aiosqlite.Connection) -> tuple[list[SwarmEvent], int]:
            rows = await conn.execute_fetchall(
                "SELECT event FROM swarm_events WHERE swarm_id = ? AND sequence > ? "
                "ORDER BY sequence LIMIT ?",
                (swarm_id, after_sequence, limit),
            )
            events = [SwarmEvent.FromString(row["event"]) for row in rows]
            return events, await _last_sequence(conn, swarm_id)

        return await self._db.run(work)
