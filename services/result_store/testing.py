"""Helpers for tests that need a real result store: a manual clock and a
served store on a free loopback port.

Shipped with the package (like httpx ships ``MockTransport``) so tests of
other services can run against the real thing rather than a fake::

    async with serve_result_store(tmp_path / "swarmd.db") as served:
        channel = grpc.aio.insecure_channel(served.address)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmd.services._host import ServiceHost
from swarmd.services.config import ResultStoreSettings, TelemetrySettings
from swarmd.services.result_store import ResultStore, build_result_store

__all__ = ["ManualClock", "ServedResultStore", "serve_result_store"]


class ManualClock:
    """A wall clock that only moves when told to (seconds since the epoch)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ServedResultStore:
    """A store served on ``address`` by ``host``."""

    host: ServiceHost
    store: ResultStore

    @property
    def address(self) -> str:
        return self.host.address


@asynccontextmanager
async def serve_result_store(
    db_path: Path,
    *,
    clock: Callable[[], float] = time.time,
    start_sweeper: bool = False,
    **settings: Any,
) -> AsyncIterator[ServedResultStore]:
    """Serve a fresh :class:`ResultStore` on ``127.0.0.1:0``; stopped on exit.

    ``settings`` override :class:`ResultStoreSettings` fields. The sweeper
    only runs when asked, so tests decide when expired rows go away.
    """
    config = ResultStoreSettings(
        db_path=db_path, listen="127.0.0.1:0", grace_period_secs=0, **settings
    )
    host = ServiceHost("result-store", config, telemetry_settings=TelemetrySettings(enabled=False))
    store = await build_result_store(host, config, clock=clock, start_sweeper=start_sweeper)
    try:
        await host.start()
        yield ServedResultStore(host, store)
    finally:
        await host.stop(0)
