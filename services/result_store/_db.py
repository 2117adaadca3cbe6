"""The store's one SQLite connection and how work runs on it.

Every operation runs as a coroutine handed to :meth:`Database.run`:

* one ``asyncio.Lock`` serialises operations, because a single connection
  has a single transaction — without it two coroutines' statements would
  interleave inside each other's ``BEGIN``/``COMMIT``;
* writes run inside ``BEGIN IMMEDIATE`` so the write lock is taken up front
  (no deadlock-prone upgrade from a read lock) and roll back on any error;
* the operation runs in its own task behind ``asyncio.shield``: a client
  hanging up cancels the RPC, but a transaction that has started still
  finishes (commit or rollback) instead of being abandoned half-way, and the
  lock is always released.

The connection is opened lazily, under the same lock, the first time it is
needed: pragmas first, then the schema migrations.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import aiosqlite

from swarmd.services.errors import ResourceExhausted, Unavailable
from swarmd.services.result_store._schema import MIGRATIONS, Migration, migrate

__all__ = ["Database", "Work"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[aiosqlite.Connection], Awaitable[T]]

MEMORY = ":memory:"


def _swallow_outcome(task: asyncio.Task[object]) -> None:
    """Retrieve a shielded task's outcome once nobody awaits it any more."""
    if not task.cancelled() and task.exception() is not None:
        log.warning(
            "result store operation failed after its caller went away", exc_info=task.exception()
        )


def _translate(exc: sqlite3.OperationalError) -> Exception:
    """SQLite conditions a client can act on get their own status code."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return Unavailable(f"result store database is busy, retry: {exc}")
    if "full" in text:
        return ResourceExhausted(f"result store database is full: {exc}")
    return exc


class Database:
    """Owns one ``aiosqlite`` connection to ``path``; see the module docstring."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5000,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = path if str(path) == MEMORY else Path(path)
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._migrations = migrations
        self._lock = asyncio.Lock()
        self._conn: aiosqlite.Connection | None = None
        self._closed = False
        self.schema_version = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self) -> None:
        """Open now rather than on first use (so a bad path fails at start-up)."""

        async def nothing(conn: aiosqlite.Connection) -> None:
            return None

        await self.run(nothing)

    async def run(
        self,
        work: Work[T],
        *,
        write: bool = False,
        after_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``work(conn)`` alone on the connection; in a transaction when ``write``.

        ``after_commit(result)`` runs right after a successful commit, still
        under the lock, so notifications leave in commit order.
        """
        task = asyncio.ensure_future(self._run_locked(work, write, after_commit))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                task.add_done_callback(_swallow_outcome)
            raise

    async def _run_locked(
        self, work: Work[T], write: bool, after_commit: Callable[[T], None] | None
    ) -> T:
        async with self._lock:
            conn = await self._connection()
            try:
                if not write:
                    return await work(conn)
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    result = await work(conn)
                    await conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        await conn.execute("ROLLBACK")
                    raise
                if after_commit is not None:
                    after_commit(result)
                return result
            except sqlite3.OperationalError as exc:
                raise _translate(exc) from exc

    async def vacuum(self) -> None:
        """Return free pages to the file system (the database uses incremental auto-vacuum).

        ``executescript`` is used because it steps the pragma to completion;
        ``execute`` would free only one page per call.
        """

        async def work(conn: aiosqlite.Connection) -> None:
            await conn.executescript("PRAGMA incremental_vacuum")

        await self.run(work)

    async def _connection(self) -> aiosqlite.Connection:
        if self._closed:
            raise Unavailable("result store is closed")
        if self._conn is not None:
            return self._conn
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(self.path), isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            await conn.execute("PRAGMA foreign_keys = ON")
            # Only takes effect on a database with no tables yet, which is
            # exactly when it must be chosen.
            await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            await self._enter_wal(conn)
            await conn.execute("PRAGMA synchronous = NORMAL")
            self.schema_version = await migrate(
                conn, self._migrations, where=f"database {self.path}"
            )
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def _enter_wal(self, conn: aiosqlite.Connection) -> None:
        """Switch to WAL, waiting out another connection that is doing the same.

        Changing the journal mode needs an exclusive lock, and SQLite answers
        SQLITE_BUSY for it without calling the busy handler when a second
        connection opens the same new file at the same moment. So the wait
        that ``busy_timeout`` promises is done here, in short steps.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout_ms / 1000
        delay = 0.005
        while True:
            try:
                await conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                    raise
                if loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def close(self) -> None:
        """Wait for running operations, then close; later calls do nothing."""
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
