"""Plugins whose heavy library is an extra: they load without it and name the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import grpc
import pytest

from swarmd.plugins import Executor, MissingExtra, hookimpl, require_extra
from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings
from swarmd.services.executor import build_executor
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

#: A module name no environment has, standing for an uninstalled extra's library.
ABSENT = "swarmd_extra_library_that_is_not_installed"


def test_require_extra_names_the_plugin_the_package_and_the_extra() -> None:
    with pytest.raises(MissingExtra) as caught:
        require_extra(f"{ABSENT}.client", plugin="needy executor", extra="needy")
    message = str(caught.value)
    assert "needy executor plugin" in message
    assert repr(ABSENT) in message
    assert "pip install 'swarmd[needy]'" in message
    assert caught.value.extra == "needy"


def test_require_extra_passes_when_the_library_is_there() -> None:
    require_extra("json", plugin="any", extra="none")


def test_kubernetes_executor_without_its_client_loads_and_names_the_extra() -> None:
    # A fresh interpreter in which the kubernetes client cannot be imported.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["kubernetes"] = None
        from swarmd.plugins import ExecutorContext, MissingExtra
        from swarmd.plugins.manager import load_plugins
        plugins = load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
        cls = plugins.executors.get("kubernetes")
        try:
            cls(ExecutorContext(plugins=plugins))
        except MissingExtra as exc:
            print("MISSING:", exc)
        else:
            print("constructed")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "MISSING: the kubernetes executor plugin needs the 'kubernetes' package" in out
    assert "pip install 'swarmd[kubernetes]'" in out


class FakeNeedyExecutor(Executor):
    """Test double: an executor plugin whose library (an extra) is not installed."""

    name = "needy"
    description = "needs a library that is not installed"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        require_extra(ABSENT, plugin="needy executor", extra="needy")

    async def submit(self, request: Any) -> Any:  # pragma: no cover - never constructed
        yield executor_pb2.ExecuteSubTaskResponse()

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:  # pragma: no cover
        return False


class NeedyPlugin:
    @hookimpl
    def swarmd_register_executors(self, registry: Any) -> None:
        registry.add(FakeNeedyExecutor)


async def test_executor_service_answers_failed_precondition_naming_the_extra() -> None:
    plugins = load_plugins([NeedyPlugin()], env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
    settings = ExecutorSettings(default_executor="needy", grace_period_secs=5)
    host = ServiceHost("executor", settings)
    await build_executor(host, settings, plugins)
    await host.start()
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            stub = executor_pb2_grpc.ExecutorServiceStub(channel)
            request = executor_pb2.ExecuteSubTaskRequest(
                swarm_id="s1",
                subtask=common_pb2.SubTask(id="a", name="a", instruction="do a"),
                config=common_pb2.SwarmConfig(model="replay/x.jsonl", executor="needy"),
                attempt=1,
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                _ = [reply async for reply in stub.ExecuteSubTask(request, timeout=10)]
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "pip install 'swarmd[needy]'" in (caught.value.details() or "")
    finally:
        await host.stop(grace=0)
