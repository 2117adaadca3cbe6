"""Shared results: values sub-agents publish for each other, by scope and key.

Improves on the seed's in-memory store (SPEC §10.1): results are durable,
TTL is honoured on every read (an expired row is invisible even before the
sweep deletes it), and clients can wait for a key instead of polling.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncGenerator, Callable, Sequence

import aiosqlite
from google.protobuf import struct_pb2

from swarmd.services.errors import DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from swarmd.services.result_store._codec import (
    decode_value,
    encode_value,
    json_type_name,
    timestamp,
)
from swarmd.services.result_store._db import Database
from swarmd.services.result_store._validate import (
    MAX_VALUE_BYTES,
    check_key,
    check_limit,
    check_scope,
    check_text,
    check_ttl,
)
from swarmd.services.result_store._waiters import WaiterHub
from swarmd.v1.result_store_pb2 import SharedResult

__all__ = ["DEFAULT_LIMIT", "DEFAULT_WAIT_MS", "MAX_LIMIT", "MAX_WAIT_MS", "SharedResults"]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
DEFAULT_WAIT_MS = 30_000
MAX_WAIT_MS = 3_600_000
MAX_TAGS = 64
MAX_TAG_CHARS = 128
MAX_PRODUCER_CHARS = 512

_COLUMNS = (
    "scope, key, producer_id, value_json, type_name, tags_json, published_at_us, expires_at_us"
)
_LIVE = "(expires_at_us IS NULL OR expires_at_us > :now)"


def _row_to_result(row: sqlite3.Row) -> SharedResult:
    return SharedResult(
        scope=row["scope"],
        key=row["key"],
        producer_id=row["producer_id"],
        value=decode_value(row["value_json"]),
        type_name=row["type_name"],
        tags=json.loads(row["tags_json"]),
        published_at=timestamp(row["published_at_us"]),
        expires_at=timestamp(row["expires_at_us"]),
    )


def _check_tags(tags: Sequence[str]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"tags: at most {MAX_TAGS} tags allowed, got {len(tags)}")
    unique: list[str] = []
    for i, tag in enumerate(tags):
        check_text(f"tags[{i}]", tag, max_chars=MAX_TAG_CHARS, required=True)
        if tag not in unique:
            unique.append(tag)
    return unique


class SharedResults:
    """Publish, read, query and wait for shared results."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock
        self.waiters = WaiterHub()

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    async def publish(
        self,
        scope: str,
        key: str,
        producer_id: str,
        value: struct_pb2.Value,
        tags: Sequence[str] = (),
        ttl_secs: int = 0,
    ) -> SharedResult:
        """Upsert (last writer wins) and wake the key's waiters; returns what was stored."""
        check_scope(scope)
        check_key(key)
        check_text("producer_id", producer_id, max_chars=MAX_PRODUCER_CHARS, required=False)
        unique_tags = _check_tags(tags)
        check_ttl("ttl_secs", ttl_secs)
        value_json = encode_value(value)
        size = len(value_json.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise InvalidArgument(
                f"value: at most {MAX_VALUE_BYTES} bytes of JSON allowed, got {size}"
            )
        type_name = json_type_name(value)
        tags_json = json.dumps(unique_tags, ensure_ascii=False)

        async def work(conn: aiosqlite.Connection) -> SharedResult:
            # Stamped under the lock, so publish times follow commit order.
            now = self._now_us()
            expires = now + ttl_secs * 1_000_000 if ttl_secs else None
            await conn.execute(
                f"""
                INSERT INTO shared_results ({_COLUMNS})
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (scope, key) DO UPDATE SET
                    producer_id = excluded.producer_id,
                    value_json = excluded.value_json,
                    type_name = excluded.type_name,
                    tags_json = excluded.tags_json,
                    published_at_us = excluded.published_at_us,
                    expires_at_us = excluded.expires_at_us
                """,
                (scope, key, producer_id, value_json, type_name, tags_json, now, expires),
            )
            await conn.execute(
                "DELETE FROM shared_result_tags WHERE scope = ? AND key = ?", (scope, key)
            )
            await conn.executemany(
                "INSERT INTO shared_result_tags (scope, key, tag) VALUES (?, ?, ?)",
                [(scope, key, tag) for tag in unique_tags],
            )
            return SharedResult(
                scope=scope,
                key=key,
                producer_id=producer_id,
                value=decode_value(value_json),
                type_name=type_name,
                tags=unique_tags,
                published_at=timestamp(now),
                expires_at=timestamp(expires),
            )

        return await self._db.run(work, write=True, after_commit=self.waiters.notify)

    async def find(self, scope: str, key: str) -> SharedResult | None:
        """The live result under ``(scope, key)``, or None."""
        check_scope(scope)
        check_key(key)
        params = {"scope": scope, "key": key, "now": self._now_us()}

        async def work(conn: aiosqlite.Connection) -> SharedResult | None:
            rows = list(
                await conn.execute_fetchall(
                    f"SELECT {_COLUMNS} FROM shared_results WHERE scope = :scope AND key = :key AND {_LIVE}",
                    params,
                )
            )
            return _row_to_result(rows[0]) if rows else None

        return await self._db.run(work)

    async def get(self, scope: str, key: str) -> SharedResult:
        """The live result under ``(scope, key)``; NotFound when absent or expired."""
        result = await self.find(scope, key)
        if result is None:
            raise NotFound(f"no result for key {key!r} in scope {scope!r}")
        return result

    async def _select(self, where: str, params: dict[str, object]) -> list[SharedResult]:
        sql = (
            f"SELECT {_COLUMNS} FROM shared_results AS r WHERE scope = :scope AND {_LIVE} AND {where} "
            "ORDER BY published_at_us, key LIMIT :limit"
        )
        params = {**params, "now": self._now_us()}

        async def work(conn: aiosqlite.Connection) -> list[SharedResult]:
            return [_row_to_result(row) for row in await conn.execute_fetchall(sql, params)]

        return await self._db.run(work)

    async def query(
        self,
        scope: str,
        *,
        tags: Sequence[str] = (),
        prefix: str = "",
        producer_id: str = "",
        limit: int = 0,
    ) -> list[SharedResult]:
        """Live results with any of ``tags``, or a key starting with ``prefix``,
        or from ``producer_id`` — exactly one criterion — oldest first."""
        check_scope(scope)
        limit = check_limit("limit", limit, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        given = [
            name
            for name, v in (("tags", tags), ("prefix", prefix), ("producer_id", producer_id))
            if v
        ]
        if len(given) != 1:
            raise InvalidArgument(
                "tags, prefix, producer_id: exactly one criterion must be set, got "
                + (", ".join(given) if given else "none")
            )
        base: dict[str, object] = {"scope": scope, "limit": limit}
        if tags:
            unique = _check_tags(tags)
            names = [f":tag{i}" for i in range(len(unique))]
            base.update({f"tag{i}": tag for i, tag in enumerate(unique)})
            return await self._select(
                "EXISTS (SELECT 1 FROM shared_result_tags AS t WHERE t.scope = r.scope "
                f"AND t.key = r.key AND t.tag IN ({', '.join(names)}))",
                base,
            )
        if prefix:
            check_key(prefix, "prefix")
            # A range bound uses the primary key index; substr() makes the match
            # exact and case-sensitive, with no LIKE wildcards to escape.
            return await self._select(
                "key >= :prefix AND substr(key, 1, :prefix_len) = :prefix",
                {**base, "prefix": prefix, "prefix_len": len(prefix)},
            )
        check_text("producer_id", producer_id, max_chars=MAX_PRODUCER_CHARS, required=True)
        return await self._select(
            "producer_id = :producer_id", {**base, "producer_id": producer_id}
        )

    async def list(self, scope: str, limit: int = 0) -> list[SharedResult]:
        """Every live result in ``scope``, oldest first."""
        check_scope(scope)
        limit = check_limit("limit", limit, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        return await self._select("1", {"scope": scope, "limit": limit})

    async def wait_for(
        self, scope: str, key: str, *, timeout_ms: int = 0, follow: bool = False
    ) -> AsyncGenerator[SharedResult, None]:
        """Yield the key's value as soon as it exists; with ``follow``, every
        later update until the timeout.

        Raises DeadlineExceeded when nothing was yielded in time. Callers
        should close the generator (``contextlib.aclosing``) so the waiter
        is removed the moment they stop listening.
        """
        check_scope(scope)
        check_key(key)
        if timeout_ms < 0 or timeout_ms > MAX_WAIT_MS:
            raise InvalidArgument(
                f"timeout_ms: must be between 0 and {MAX_WAIT_MS} (0 = {DEFAULT_WAIT_MS}), got {timeout_ms}"
            )
        timeout_ms = timeout_ms or DEFAULT_WAIT_MS
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        delivered = 0
        with self.waiters.subscribe(scope, key) as waiter:
            last = await self.find(scope, key)
            if last is not None:
                yield last
                delivered += 1
                if not follow:
                    return
            while True:
                while waiter.pending:
                    update = waiter.pending.popleft()
                    if update == last:  # published between subscribing and the read above
                        continue
                    yield update
                    delivered += 1
                    last = update
                    if not follow:
                        return
                if self.waiters.closed:
                    raise Unavailable("result store is shutting down")
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                waiter.event.clear()
                try:
                    await asyncio.wait_for(waiter.event.wait(), remaining)
                except TimeoutError:
                    break
        if not delivered:
            raise DeadlineExceeded(
                f"no result for key {key!r} in scope {scope!r} within timeout_ms={timeout_ms}"
            )

    async def delete_expired(self) -> int:
        """Delete expired results (their tags go with them); returns how many."""
        now = self._now_us()

        async def work(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "DELETE FROM shared_results WHERE expires_at_us IS NOT NULL AND expires_at_us <= ?",
                (now,),
            )
            return cursor.rowcount

        return await self._db.run(work, write=True)
