"""swarmd's conformance kit for plugin authors: a pytest plugin.

Load it with ``pytest -p swarmd.plugins.testing`` (or
``pytest_plugins = ["swarmd.plugins.testing"]`` in a top-level
``conftest.py``) and point its checks at your classes::

    from swarmd.plugins.testing import check_executor, check_provider, check_tool

    async def test_my_executor(swarmd_executor_context, swarmd_request):
        await check_executor(
            MyExecutor, swarmd_executor_context,
            quick=swarmd_request(model="scripted/done"),
            slow=swarmd_request(model="scripted/hang", subtask_id="slow"),
        )

A check raises :class:`ContractViolation` whose message starts with the
broken rule's name in brackets (``[one-result] mine: ...``); each check's
module lists its rules. Fixtures (all function-scoped):

``swarmd_repo``
    a throwaway git repository with one commit on ``main``.
``swarmd_plugins``
    swarmd's built-in plugins plus :class:`ScriptedProvider`
    (``scripted/...`` models), with third-party autoload off;
    ``swarmd_extra_plugins`` (override it) adds yours.
``swarmd_executor_context``
    an :class:`~swarmd.plugins.ExecutorContext` over ``swarmd_plugins``.
``swarmd_request``
    builds an ``ExecuteSubTaskRequest`` on ``swarmd_repo``
    (:func:`subtask_request`).
``swarmd_tool_context``
    a :class:`~swarmd.plugins.ToolContext` whose worktree is ``swarmd_repo``.
``swarmd_services``
    the three services (result store, executor, orchestrator) running in
    this process on ephemeral loopback ports with ``swarmd_plugins``, a
    :class:`swarmd.clients.launcher.EmbeddedSwarmd` (its
    ``orchestrator_address`` is what a ``SwarmdClient`` connects to); the
    executor service's default executor is ``swarmd_default_executor``
    (override it; ``"local"``).

The checks need pytest only for these fixtures; they are plain coroutines.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from swarmd.plugins.executor import ExecutorContext
from swarmd.plugins.manager import load_plugins
from swarmd.plugins.registry import Plugins
from swarmd.plugins.testing.errors import ContractViolation
from swarmd.plugins.testing.executor import DEFAULT_CANCEL_GRACE_SECS, check_executor, check_stream
from swarmd.plugins.testing.provider import check_provider, check_provider_error, sample_request
from swarmd.plugins.testing.scripted import (
    ScriptedProvider,
    script,
    scripted_plugin,
    text_reply,
    tool_call_reply,
)
from swarmd.plugins.testing.tool import check_tool
from swarmd.plugins.tool import ToolContext
from swarmd.v1 import common_pb2, executor_pb2

__all__ = [
    "ContractViolation",
    "DEFAULT_CANCEL_GRACE_SECS",
    "ScriptedProvider",
    "check_executor",
    "check_provider",
    "check_provider_error",
    "check_stream",
    "check_tool",
    "make_repo",
    "sample_request",
    "script",
    "scripted_plugin",
    "subtask_request",
    "text_reply",
    "tool_call_reply",
]


def make_repo(path: Path) -> Path:
    """A git repository at ``path`` with a README committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.name", "swarmd conformance")
    git("config", "user.email", "conformance@example.invalid")
    (path / "README.md").write_text("# conformance\n")
    git("add", "-A")
    git("commit", "-q", "-m", "initial")
    return path


def subtask_request(
    repo: Path,
    *,
    model: str = "scripted/done",
    subtask_id: str = "check",
    swarm_id: str = "conformance",
    read_only: bool = True,
    executor: str = "",
    options: dict[str, str] | None = None,
) -> executor_pb2.ExecuteSubTaskRequest:
    """An ``ExecuteSubTaskRequest`` for one subtask on ``repo`` (attempt 1).

    Read-only by default (no worktree is made); ``read_only=False`` asks
    for a worktree and an automatic merge, as the orchestrator does.
    """
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id=swarm_id,
        subtask=common_pb2.SubTask(
            id=subtask_id, name=subtask_id, instruction=f"conformance check {subtask_id}", read_only=read_only
        ),
        config=common_pb2.SwarmConfig(model=model, executor=executor, executor_options=dict(options or {})),
        attempt=1,
        workspace=executor_pb2.Workspace(repo_path=str(repo), worktree=not read_only, auto_merge=not read_only),
    )


@pytest.fixture
def swarmd_repo(tmp_path: Path) -> Path:
    """A throwaway git repository (see :func:`make_repo`)."""
    return make_repo(tmp_path / "swarmd-repo")


@pytest.fixture
def swarmd_extra_plugins() -> Sequence[object]:
    """Plugins to load besides the built-ins (override it with yours)."""
    return ()


@pytest.fixture
def swarmd_plugins(swarmd_extra_plugins: Sequence[object]) -> Plugins:
    """Built-ins, :data:`scripted_plugin` and ``swarmd_extra_plugins``; no autoload."""
    return load_plugins([scripted_plugin, *swarmd_extra_plugins], env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})


@pytest.fixture
def swarmd_executor_context(swarmd_plugins: Plugins) -> ExecutorContext:
    """What the executor service gives an executor plugin."""
    return ExecutorContext(plugins=swarmd_plugins)


@pytest.fixture
def swarmd_request(swarmd_repo: Path) -> Callable[..., executor_pb2.ExecuteSubTaskRequest]:
    """``swarmd_request(**kw)``: :func:`subtask_request` on ``swarmd_repo``."""

    def build(**kw: Any) -> executor_pb2.ExecuteSubTaskRequest:
        return subtask_request(swarmd_repo, **kw)

    return build


@pytest.fixture
def swarmd_default_executor() -> str:
    """The default executor of ``swarmd_services`` (override it with yours)."""
    return "local"


@pytest.fixture
async def swarmd_services(
    swarmd_plugins: Plugins, swarmd_default_executor: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """The three services on ephemeral loopback ports (see the module docstring)."""
    from swarmd.clients.launcher import EmbeddedSwarmd
    from swarmd.services.config import Settings

    settings = Settings()
    settings.executor.default_executor = swarmd_default_executor
    async with EmbeddedSwarmd(settings, db_path=tmp_path / "swarmd.db", plugins=swarmd_plugins) as services:
        yield services


@pytest.fixture
def swarmd_tool_context(swarmd_repo: Path) -> ToolContext:
    """A tool context confined to ``swarmd_repo``."""
    return ToolContext(workdir=swarmd_repo.resolve(), swarm_id="conformance", subtask_id="check")
