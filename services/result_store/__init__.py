"""swarmd's result store service: shared results, result cache, swarm state
and event log, persisted in SQLite (WAL) through aiosqlite.

Start it on a :class:`~swarmd.services._host.ServiceHost` with
:func:`build_result_store`; use :class:`ResultStore` directly for in-process
access (tests, tools) with the same rules as over gRPC.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from swarmd.services._host import ServiceHost
from swarmd.services.config import ResultStoreSettings
from swarmd.services.result_store._schema import SCHEMA_VERSION, SchemaTooNewError
from swarmd.services.result_store.servicer import SERVICE_NAME, ResultStoreServicer
from swarmd.services.result_store.store import ResultStore, SweepReport
from swarmd.v1 import result_store_pb2_grpc

__all__ = [
    "SCHEMA_VERSION",
    "SERVICE_NAME",
    "ResultStore",
    "ResultStoreServicer",
    "SchemaTooNewError",
    "SweepReport",
    "build_result_store",
]


async def build_result_store(
    host: ServiceHost,
    settings: ResultStoreSettings,
    *,
    clock: Callable[[], float] = time.time,
    start_sweeper: bool = True,
) -> ResultStore:
    """Open the store, start its sweeper and serve it on ``host``.

    The store is closed (sweeper stopped, database closed) when the host
    stops. A database that cannot be opened — bad path, newer schema — fails
    here, before the server accepts a single call. ``clock`` and
    ``start_sweeper`` exist for tests that control time.
    """
    store = ResultStore(settings, clock=clock)
    try:
        await store.open()
        servicer = ResultStoreServicer(store)
        host.add_service(
            SERVICE_NAME,
            lambda server: result_store_pb2_grpc.add_ResultStoreServiceServicer_to_server(
                servicer, server
            ),
        )
        if start_sweeper:
            store.start_sweeper()
    except BaseException:
        await store.close()
        raise
    host.on_close(store.close)
    return store
