"""Starts swarmd services: all three in one process (embedded), or one alone.

Embedded mode is what ``swarmd run`` uses: the result store, the executor and
the orchestrator each get their own :class:`ServiceHost` on an ephemeral
loopback port and talk real gRPC to each other — the same code path as three
separate processes. This module is the only place in swarmd that starts
services.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from swarmd.plugins.manager import Plugins, load_plugins
from swarmd.services import memdebug
from swarmd.services._host import ServiceHost, run_until_signalled
from swarmd.services.config import Settings, TlsSettings
from swarmd.services.telemetry import Telemetry

__all__ = ["SERVICE_KINDS", "EmbeddedSwarmd", "build_service", "serve"]

log = logging.getLogger(__name__)

SERVICE_KINDS = ("orchestrator", "executor", "result-store")


async def build_service(
    kind: str,
    settings: Settings,
    plugins: Plugins | None = None,
    span_processors: Iterable[SpanProcessor] = (),
    *,
    embedded: bool = False,
) -> tuple[ServiceHost, Any]:
    """Create the host for one service and register it (not started yet).

    ``embedded`` marks the services of one ``swarmd`` command: its
    orchestrator never resumes swarms by itself (``swarmd resume`` does)."""
    telemetry = Telemetry(f"swarmd-{kind}", settings.telemetry, span_processors)
    if kind == "result-store":
        from swarmd.services.result_store import build_result_store

        host = ServiceHost(kind, settings.result_store, telemetry)
        return host, await build_result_store(host, settings.result_store)
    plugins = plugins or load_plugins()
    if kind == "executor":
        from swarmd.services.executor import build_executor

        host = ServiceHost(kind, settings.executor, telemetry)
        return host, await build_executor(host, settings.executor, plugins)
    if kind == "orchestrator":
        from swarmd.services.orchestrator import build_orchestrator

        host = ServiceHost(kind, settings.orchestrator, telemetry)
        return host, await build_orchestrator(host, settings.orchestrator, plugins, embedded=embedded)
    raise ValueError(f"unknown service {kind!r} (choose from {', '.join(SERVICE_KINDS)})")


async def serve(kind: str, settings: Settings, plugins: Plugins | None = None) -> None:
    """Run one service until SIGTERM/SIGINT, then shut it down gracefully."""
    host, _service = await build_service(kind, settings, plugins)
    await host.start()
    memdebug.install_from_env(kind)
    print(f"swarmd {kind} listening on {host.address}", flush=True)
    await run_until_signalled([host])


class EmbeddedSwarmd:
    """The three services in this process on loopback; ``async with`` or start/stop."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        db_path: str | Path | None = None,
        plugins: Plugins | None = None,
        span_processors: Iterable[SpanProcessor] = (),
    ) -> None:
        settings = (settings or Settings()).model_copy(deep=True)
        for section in (settings.result_store, settings.executor, settings.orchestrator):
            section.listen = "127.0.0.1:0"
            section.tls = TlsSettings()  # plaintext on loopback, whatever the settings file says
        if db_path is not None:
            settings.result_store.db_path = Path(db_path)
        journal = settings.orchestrator.journal_path
        if str(settings.result_store.db_path) == ":memory:":
            settings.orchestrator.journal_path = None  # nothing outlives the process anyway
        elif journal is not None and not journal.is_absolute():
            # One place for what these services keep: the journal sits beside the database.
            settings.orchestrator.journal_path = settings.result_store.db_path.parent / journal.name
        if not settings.orchestrator.decomposition_options:
            # One process, one configuration: the decomposition call reaches the
            # model the way the sub-agents do (base URL, key, timeouts).
            settings.orchestrator.decomposition_options = dict(settings.executor.options)
        self.settings = settings
        self.plugins = plugins
        self._span_processors = list(span_processors)
        self.hosts: dict[str, ServiceHost] = {}
        self.services: dict[str, Any] = {}

    @property
    def orchestrator_address(self) -> str:
        return self.hosts["orchestrator"].address

    @property
    def executor_address(self) -> str:
        return self.hosts["executor"].address

    @property
    def result_store_address(self) -> str:
        return self.hosts["result-store"].address

    async def start(self) -> EmbeddedSwarmd:
        plugins = self.plugins or load_plugins()
        try:
            for kind in ("result-store", "executor", "orchestrator"):
                if kind == "orchestrator":
                    self.settings.orchestrator.result_store_address = self.result_store_address
                    self.settings.orchestrator.executor_address = self.executor_address
                host, service = await build_service(
                    kind, self.settings, plugins, self._span_processors, embedded=True
                )
                self.hosts[kind] = host
                self.services[kind] = service
                await host.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self, grace: float | None = None) -> None:
        """Stop orchestrator, then executor, then result store (reverse start order)."""
        for kind in ("orchestrator", "executor", "result-store"):
            host = self.hosts.get(kind)
            if host is not None:
                await host.stop(grace)

    async def __aenter__(self) -> EmbeddedSwarmd:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
