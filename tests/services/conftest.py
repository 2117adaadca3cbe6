"""Fixtures of the result store's tests: a real store on 127.0.0.1:0 and a stub.

A test module that needs other settings overrides ``served`` (the cache
tests do); ``stub`` follows whatever ``served`` it gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from swarmd.services.result_store.testing import ManualClock, ServedResultStore, serve_result_store
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
async def served(tmp_path: Path, clock: ManualClock) -> AsyncIterator[ServedResultStore]:
    async with serve_result_store(tmp_path / "swarmd.db", clock=clock) as served:
        yield served


@pytest.fixture
async def stub(served: ServedResultStore) -> AsyncIterator[ResultStoreServiceStub]:
    async with grpc.aio.insecure_channel(served.address) as channel:
        yield ResultStoreServiceStub(channel)
