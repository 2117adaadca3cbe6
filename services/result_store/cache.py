"""The result cache: successful subtask outcomes keyed by a content hash.

Fixes the seed's cache (SPEC §11): entries are really deleted when they
expire or are evicted, eviction is least-recently-*used* (a hit refreshes
the entry) and honours both a maximum entry count and a maximum byte size.

Recency is an integer tick (``MAX(lru_tick) + 1``) rather than a timestamp,
so entries touched within the same clock tick still have a strict order.
Hit/miss/eviction/expiry counters live in the database (``cache_counters``,
one row, updated in the same transaction as the lookup or removal it counts),
so they add up over every process that used the file: an embedded
``swarmd cache stats`` sees the lookups of the runs before it. Clearing the
cache removes entries, not the counters. The sizes come from the table.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from swarmd.services.errors import InvalidArgument
from swarmd.services.result_store._codec import timestamp
from swarmd.services.result_store._db import Database
from swarmd.services.result_store._validate import check_ttl, preview
from swarmd.v1 import common_pb2
from swarmd.v1.result_store_pb2 import CacheEntry

__all__ = ["CacheCounters", "ResultCache", "read_counters"]

_KEY = re.compile(r"[0-9a-fA-F]{1,128}")
_COLUMNS = (
    "key, result, patch, base_tree, task_name, created_at_us, last_access_at_us, "
    "expires_at_us, size_bytes"
)
_NEXT_TICK = "(SELECT COALESCE(MAX(lru_tick), 0) + 1 FROM cache_entries)"


@dataclass
class CacheCounters:
    """What happened to lookups and entries since the database was created."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expired_removed: int = 0


_COUNTERS = ("hits", "misses", "evictions", "expired_removed")


async def _count(conn: aiosqlite.Connection, **add: int) -> None:
    """Add to the persisted counters (inside the caller's write transaction)."""
    add = {name: n for name, n in add.items() if n}
    if not add:
        return
    unknown = set(add) - set(_COUNTERS)
    if unknown:
        raise ValueError(f"no such cache counter: {', '.join(sorted(unknown))}")
    assignments = ", ".join(f"{name} = {name} + ?" for name in add)  # names from _COUNTERS only
    await conn.execute(f"UPDATE cache_counters SET {assignments} WHERE id = 1", tuple(add.values()))


async def read_counters(conn: aiosqlite.Connection) -> CacheCounters:
    """The persisted counters."""
    rows = list(await conn.execute_fetchall(f"SELECT {', '.join(_COUNTERS)} FROM cache_counters WHERE id = 1"))
    if not rows:
        return CacheCounters()
    return CacheCounters(*(int(v) for v in rows[0]))


def _check_cache_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidArgument(
            f"key: must be 1-128 hexadecimal characters (a hex SHA-256 digest), got {preview(key)}"
        )
    return key.lower()


def _entry_size(entry: CacheEntry) -> int:
    """Encoded size of the entry's content (timestamps and size excluded, so
    the size does not change when the entry is read)."""
    content = CacheEntry(
        key=entry.key,
        result=entry.result,
        patch=entry.patch,
        base_tree=entry.base_tree,
        task_name=entry.task_name,
    )
    return int(content.ByteSize())


def _row_to_entry(row: sqlite3.Row) -> CacheEntry:
    return CacheEntry(
        key=row["key"],
        result=common_pb2.SubTaskResult.FromString(row["result"]),
        patch=row["patch"],
        base_tree=row["base_tree"],
        task_name=row["task_name"],
        created_at=timestamp(row["created_at_us"]),
        last_access_at=timestamp(row["last_access_at_us"]),
        expires_at=timestamp(row["expires_at_us"]),
        size_bytes=row["size_bytes"],
    )


class ResultCache:
    """LRU cache of ``CacheEntry`` rows with TTL, max entries and max bytes."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        *,
        default_ttl_secs: int,
        max_entries: int,
        max_bytes: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self.default_ttl_secs = default_ttl_secs
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry under ``key`` (refreshing its LRU position), or None.

        An expired entry is deleted on the spot and counts as a miss.
        """
        key = _check_cache_key(key)
        now = self._now_us()

        async def work(conn: aiosqlite.Connection) -> tuple[CacheEntry | None, bool]:
            rows = list(
                await conn.execute_fetchall(
                    f"SELECT {_COLUMNS} FROM cache_entries WHERE key = ?", (key,)
                )
            )
            if not rows:
                await _count(conn, misses=1)
                return None, False
            if rows[0]["expires_at_us"] <= now:
                await conn.execute("DELETE FROM cache_entries WHERE key = ?", (key,))
                await _count(conn, misses=1, expired_removed=1)
                return None, True
            await _count(conn, hits=1)
            await conn.execute(
                f"UPDATE cache_entries SET last_access_at_us = ?, lru_tick = {_NEXT_TICK} WHERE key = ?",
                (now, key),
            )
            entry = _row_to_entry(rows[0])
            entry.last_access_at.FromMicroseconds(now)
            return entry, False

        entry, expired = await self._db.run(work, write=True)
        if expired:
            await self._db.vacuum()
        return entry

    async def put(self, entry: CacheEntry, ttl_secs: int = 0) -> int:
        """Store ``entry`` (replacing one with the same key), then evict least
        recently used entries until both limits hold. Returns how many were evicted."""
        key = _check_cache_key(entry.key)
        if not entry.HasField("result"):
            raise InvalidArgument("entry.result: required")
        if not entry.result.success:
            raise InvalidArgument("entry.result.success: only successful results are cached")
        ttl_secs = check_ttl("ttl_secs", ttl_secs) or self.default_ttl_secs
        size = _entry_size(entry)
        if size > self.max_bytes:
            raise InvalidArgument(
                f"entry: {size} bytes is larger than the cache's max bytes ({self.max_bytes})"
            )
        result_bytes = entry.result.SerializeToString(deterministic=True)
        now = self._now_us()
        row = (
            key,
            result_bytes,
            entry.patch,
            entry.base_tree,
            entry.task_name,
            now,
            now,
            now + ttl_secs * 1_000_000,
            size,
        )

        async def work(conn: aiosqlite.Connection) -> tuple[int, int]:
            expired = (
                await conn.execute("DELETE FROM cache_entries WHERE expires_at_us <= ?", (now,))
            ).rowcount
            await conn.execute(
                f"""
                INSERT INTO cache_entries ({_COLUMNS}, lru_tick)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {_NEXT_TICK})
                ON CONFLICT (key) DO UPDATE SET
                    result = excluded.result,
                    patch = excluded.patch,
                    base_tree = excluded.base_tree,
                    task_name = excluded.task_name,
                    created_at_us = excluded.created_at_us,
                    last_access_at_us = excluded.last_access_at_us,
                    expires_at_us = excluded.expires_at_us,
                    size_bytes = excluded.size_bytes,
                    lru_tick = excluded.lru_tick
                """,
                row,
            )
            evicted = await self._evict(conn, keep=key)
            await _count(conn, expired_removed=expired, evictions=evicted)
            return expired, evicted

        expired, evicted = await self._db.run(work, write=True)
        if expired or evicted:
            await self._db.vacuum()
        return evicted

    async def _evict(self, conn: aiosqlite.Connection, keep: str) -> int:
        rows = list(
            await conn.execute_fetchall(
                "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM cache_entries"
            )
        )
        entries, total = int(rows[0][0]), int(rows[0][1])
        if entries <= self.max_entries and total <= self.max_bytes:
            return 0
        victims: list[tuple[str]] = []
        async with conn.execute(
            "SELECT key, size_bytes FROM cache_entries WHERE key != ? ORDER BY lru_tick", (keep,)
        ) as cursor:
            async for victim in cursor:
                if entries <= self.max_entries and total <= self.max_bytes:
                    break
                victims.append((victim["key"],))
                entries -= 1
                total -= int(victim["size_bytes"])
        await conn.executemany("DELETE FROM cache_entries WHERE key = ?", victims)
        return len(victims)

    async def stats(self) -> common_pb2.CacheStats:
        async def work(conn: aiosqlite.Connection) -> tuple[int, int, CacheCounters]:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM cache_entries"
                )
            )
            return int(rows[0][0]), int(rows[0][1]), await read_counters(conn)

        entries, total, c = await self._db.run(work)
        lookups = c.hits + c.misses
        return common_pb2.CacheStats(
            hits=c.hits,
            misses=c.misses,
            evictions=c.evictions,
            expired_removed=c.expired_removed,
            current_entries=entries,
            current_bytes=total,
            hit_rate=c.hits / lookups if lookups else 0.0,
        )

    async def clear(self) -> int:
        """Delete every entry; returns how many there were."""

        async def work(conn: aiosqlite.Connection) -> int:
            return (await conn.execute("DELETE FROM cache_entries")).rowcount

        removed = await self._db.run(work, write=True)
        if removed:
            await self._db.vacuum()
        return removed

    async def delete_expired(self) -> int:
        """Delete expired entries (counted in ``expired_removed``); returns how many."""
        now = self._now_us()

        async def work(conn: aiosqlite.Connection) -> int:
            removed = int(
                (
                    await conn.execute("DELETE FROM cache_entries WHERE expires_at_us <= ?", (now,))
                ).rowcount
            )
            await _count(conn, expired_removed=removed)
            return removed

        return await self._db.run(work, write=True)
