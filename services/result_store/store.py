"""``ResultStore``: the result store's four parts on one SQLite database.

The parts share one :class:`~swarmd.services.result_store._db.Database`
(one connection, one lock) and one clock:

* :attr:`ResultStore.results` — shared results and wait-for-key;
* :attr:`ResultStore.cache` — the LRU result cache;
* :attr:`ResultStore.swarms` — durable swarm state;
* :attr:`ResultStore.events` — the per-swarm event log;
* :attr:`ResultStore.audit` — audit records of decisions (collapse kills, promotions);
* :attr:`ResultStore.blobs` — content-addressed blobs (git bundles) in a
  directory beside the database.

A background sweeper deletes expired results and cache entries every
``sweep_interval_secs``; reads never depend on it (they filter expired rows
themselves), it only gives the space back.

The clock is injectable (seconds since the epoch, like ``time.time``) so
TTL behaviour can be tested without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from swarmd.services.config import ResultStoreSettings
from swarmd.services.result_store._db import Database
from swarmd.services.result_store.audit import AuditLog
from swarmd.services.result_store.blobs import BLOB_TTL_SECS, BlobStore
from swarmd.services.result_store.cache import ResultCache
from swarmd.services.result_store.events import EventLog
from swarmd.services.result_store.results import SharedResults
from swarmd.services.result_store.swarms import SwarmStates

__all__ = ["ResultStore", "SweepReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    """Rows one sweep deleted."""

    results: int
    cache_entries: int
    #: Blobs older than a day (see :mod:`~swarmd.services.result_store.blobs`).
    blobs: int = 0


class ResultStore:
    """Durable storage behind the ResultStore service; ``async with`` or ``open``/``close``."""

    def __init__(
        self,
        settings: ResultStoreSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or ResultStoreSettings()
        self.clock = clock
        self.db = Database(self.settings.db_path)
        self.results = SharedResults(self.db, clock)
        self.cache = ResultCache(
            self.db,
            clock,
            default_ttl_secs=self.settings.cache_ttl_secs,
            max_entries=self.settings.cache_max_entries,
            max_bytes=self.settings.cache_max_bytes,
        )
        self.swarms = SwarmStates(self.db, clock)
        self.events = EventLog(self.db, clock)
        self.audit = AuditLog(self.db, clock)
        self.blobs = BlobStore.beside(self.settings.db_path)
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def path(self) -> Path | str:
        return self.db.path

    @property
    def schema_version(self) -> int:
        """Schema version of the open database (0 before it is opened)."""
        return self.db.schema_version

    async def open(self) -> ResultStore:
        """Open the database and apply migrations now instead of on first use."""
        await self.db.open()
        return self

    async def sweep(self) -> SweepReport:
        """Delete expired rows now and return their free pages to the file system."""
        report = SweepReport(
            results=await self.results.delete_expired(),
            cache_entries=await self.cache.delete_expired(),
            blobs=await asyncio.to_thread(self.blobs.delete_older_than, BLOB_TTL_SECS, self.clock()),
        )
        if report.results or report.cache_entries:
            await self.db.vacuum()
            log.debug(
                "swept %s expired results and %s cache entries",
                report.results,
                report.cache_entries,
            )
        return report

    def start_sweeper(self) -> None:
        """Run :meth:`sweep` every ``sweep_interval_secs`` until :meth:`close`."""
        if self._sweeper is None and not self._closed:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="result-store-sweeper")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_secs)
            try:
                await self.sweep()
            except Exception:  # a failed sweep must not end the sweeper; the next one retries
                log.exception("result store sweep failed")

    async def close(self) -> None:
        """Stop the sweeper, end waiting clients, close the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.results.waiters.close()
        self.blobs.close()
        await self.db.close()

    async def __aenter__(self) -> ResultStore:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
