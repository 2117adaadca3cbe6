"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.processes import FakeModelProcess


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeModelProcess]:
    """The benchmarks' fake OpenAI-compatible model server, one process per test module."""
    fake = FakeModelProcess().start()
    pipe = fake.proc.stdout if fake.proc is not None else None
    try:
        yield fake
    finally:
        fake.stop()
        if pipe is not None:
            pipe.close()
