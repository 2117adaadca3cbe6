"""The example plugins of examples/plugins load through SWARMD_PLUGINS and pass
the conformance kit."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from swarmd.plugins import ExecutorContext, HealthStatus, ToolContext, ToolSpec
from swarmd.plugins.manager import load_plugins
from swarmd.plugins.registry import Plugins
from swarmd.plugins.testing import (
    check_executor,
    check_provider,
    check_tool,
    sample_request,
    scripted_plugin,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
MODULES = ["swarmd_example_executor", "swarmd_example_provider", "swarmd_example_tool", "swarmd_example_health"]


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    env = {"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_PLUGINS": ",".join(MODULES)}
    yield load_plugins([scripted_plugin], env=env)
    for name in MODULES:
        sys.modules.pop(name, None)


def test_every_example_registers(examples: Plugins) -> None:
    assert "quota" in examples.executors and "echo" in examples.providers
    assert "word_count" in examples.tools and "has-file" in examples.health_checks


async def test_the_example_executor_passes(examples: Plugins, swarmd_request: Callable[..., Any]) -> None:
    await check_executor(
        examples.executors.get("quota"),
        ExecutorContext(plugins=examples, options={"quota_subtasks": "5"}),
        quick=swarmd_request(model="scripted/done"),
        slow=swarmd_request(model="scripted/hang", subtask_id="slow"),
    )


async def test_the_example_executor_refuses_over_quota(examples: Plugins, swarmd_request: Callable[..., Any]) -> None:
    executor = examples.executors.get("quota")(ExecutorContext(plugins=examples, options={"quota_subtasks": "1"}))
    async with executor:
        first = [m async for m in executor.submit(swarmd_request(subtask_id="a"))]
        second = [m async for m in executor.submit(swarmd_request(subtask_id="b"))]
    assert first[-1].result.success
    assert not second[-1].result.success and "over its quota of 1" in second[-1].result.error


async def test_the_example_provider_passes_and_plans(examples: Plugins) -> None:
    cls = examples.providers.get("echo")
    request = sample_request()
    request.tools.append(ToolSpec("list", "List a directory.", {"type": "object", "properties": {"path": {"type": "string"}}}))
    response = await check_provider(cls, "any", {"subtask_id": "t1"}, request=request, expect_tool_call=True)
    assert response.message.tool_calls[0].name == "list"
    plan = await check_provider(cls, "any", {"subtask_id": "orchestrator"}, request=sample_request(with_tools=False))
    assert json.loads(plan.message.content or "")["subtasks"][0]["id"] == "echo"


async def test_the_example_tool_passes(examples: Plugins, swarmd_tool_context: ToolContext) -> None:
    await check_tool(examples.tools.get("word_count"), swarmd_tool_context, valid={"path": "README.md"})


async def test_the_example_health_check(examples: Plugins, swarmd_repo: Path) -> None:
    check = examples.health_checks.get("has-file")
    assert (await check().run(swarmd_repo)).ok
    missing = await check({"path": "nope.txt"}).run(swarmd_repo)
    assert missing.status is HealthStatus.FAIL and "nope.txt is missing" in missing.detail


@pytest.fixture
def swarmd_extra_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    modules = [importlib.import_module(name) for name in MODULES]
    yield modules
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def swarmd_default_executor() -> str:
    return "quota"


async def test_a_swarm_runs_on_the_example_executor_and_provider(swarmd_services: Any, swarmd_repo: Path) -> None:
    from swarmd.clients.client import SwarmdClient
    from swarmd.v1 import common_pb2

    async with SwarmdClient(swarmd_services.orchestrator_address) as client:
        submitted = await client.submit(
            task="say hello", config=common_pb2.SwarmConfig(model="echo/any", repo_path=str(swarmd_repo))
        )
        swarm = await asyncio.wait_for(client.wait(submitted.swarm.id), 60)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm
    (state,) = swarm.subtasks
    assert state.subtask.id == "echo" and state.result.success, state
    assert "echo: " in state.result.result
