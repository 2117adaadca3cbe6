"""Fixtures of the realmodel group: llama-cpp-python's server, started once per
test session (see :mod:`realmodel.llama_process`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realmodel.llama_process import LlamaServer, server_dir


@pytest.fixture(scope="session")
def llama_dir() -> Path:
    return server_dir()


@pytest.fixture(scope="session")
def llama_server(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The shared server; tests that kill a server start their own (``own_llama_server``)."""
    server = LlamaServer(llama_dir, tmp_path_factory.mktemp("llama") / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_llama_server(llama_dir: Path, tmp_path: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(llama_dir, tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
