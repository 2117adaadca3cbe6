"""Real services wired together on loopback for orchestrator tests.

A result store, an executor service running :mod:`fake_scripted_executor`'s
plugin (with :mod:`fake_scripted_provider` as the planner model) and an
orchestrator, all on 127.0.0.1:0, plus helpers to build plans and configs for
them and to wait for a swarm's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from fakes import fake_scripted_executor
from fakes.fake_scripted_executor import JOURNAL
from fakes.fake_scripted_provider import ScriptedProviderPlugin
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarmd.plugins.manager import Plugins, load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings, OrchestratorSettings, TelemetrySettings
from swarmd.services.executor import build_executor
from swarmd.services.orchestrator import Orchestrator, build_orchestrator
from swarmd.services.result_store.testing import serve_result_store
from swarmd.services.telemetry import Telemetry
from swarmd.v1 import (
    common_pb2,
    coordinator_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
)

__all__ = [
    "SwarmServices",
    "fast_config",
    "plan",
    "serve_swarm_services",
    "subtask",
    "test_plugins",
    "wait_terminal",
]


def test_plugins(extra: Iterable[object] = (), *, builtins: bool = False) -> Plugins:
    """The fake executor and the scripted provider; with ``builtins``, also
    the built-in local executor, providers and tools (not kubernetes/remote)."""
    blocked = "kubernetes,remote" if builtins else "builtin-tools,local,kubernetes,remote"
    return load_plugins(
        [fake_scripted_executor, ScriptedProviderPlugin(), *extra],
        env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": blocked},
    )


test_plugins.__test__ = False  # type: ignore[attr-defined]


@dataclass
class SwarmServices:
    """A result store, an executor service and an orchestrator, all real."""

    orchestrator: Orchestrator
    orchestrator_host: ServiceHost
    executor_host: ServiceHost
    store_address: str
    stub: orchestrator_pb2_grpc.OrchestratorServiceStub
    coordinator: coordinator_pb2_grpc.CoordinatorServiceStub
    channel: grpc.aio.Channel
    spans: InMemorySpanExporter
    executor_spans: InMemorySpanExporter
    db_path: Path
    plugins: Plugins

    async def submit(self, **request: Any) -> orchestrator_pb2.SubmitSwarmResponse:
        return await self.stub.SubmitSwarm(
            orchestrator_pb2.SubmitSwarmRequest(**request), timeout=20
        )

    async def get(self, swarm_id: str) -> common_pb2.Swarm:
        return (
            await self.stub.GetSwarm(
                orchestrator_pb2.GetSwarmRequest(swarm_id=swarm_id), timeout=10
            )
        ).swarm

    async def events(
        self, swarm_id: str, after: int = 0, history_only: bool = False
    ) -> list[common_pb2.SwarmEvent]:
        call = self.stub.WatchSwarm(
            orchestrator_pb2.WatchSwarmRequest(
                swarm_id=swarm_id, after_sequence=after, history_only=history_only
            ),
            timeout=30,
        )
        return [reply.event async for reply in call]


def plan(*subtasks: common_pb2.SubTask) -> common_pb2.Plan:
    return common_pb2.Plan(subtasks=subtasks)


def subtask(
    sid: str, *deps: str, name: str = "", instruction: str = "", **script: Any
) -> common_pb2.SubTask:
    """A plan subtask scripted through ``fake.*`` labels."""
    labels = {
        f"fake.{k}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in script.items()
    }
    return common_pb2.SubTask(
        id=sid,
        name=name or sid,
        instruction=instruction or f"do {sid}",
        dependencies=deps,
        labels=labels,
    )


def fast_config(**overrides: Any) -> common_pb2.SwarmConfig:
    """A config for quick tests: scripted model, no stagger, no worktrees."""
    base: dict[str, Any] = {
        "model": "scripted/planner",
        "executor": "fake",
        "request_delay_ms": 0,
        "worktree_enabled": False,
        "max_concurrent": 8,
    }
    base.update(overrides)
    return common_pb2.SwarmConfig(**base)


async def wait_terminal(
    services: SwarmServices, swarm_id: str, timeout: float = 20
) -> common_pb2.Swarm:
    """Poll GetSwarm until the swarm is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        swarm = await services.get(swarm_id)
        if swarm.state in (
            common_pb2.SWARM_STATE_SUCCEEDED,
            common_pb2.SWARM_STATE_FAILED,
            common_pb2.SWARM_STATE_CANCELLED,
        ):
            return swarm
        if time.monotonic() > deadline:
            raise AssertionError(
                f"swarm {swarm_id} still {common_pb2.SwarmState.Name(swarm.state)}"
            )
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serve_swarm_services(
    tmp_path: Path,
    *,
    extra_plugins: Sequence[object] = (),
    sleep: Callable[[float], Any] | None = None,
    rng: Any = None,
    store_address: str | None = None,
    orchestrator_settings: dict[str, Any] | None = None,
    executor_capacity: int = 0,
    resume: bool = True,
    cancel_grace_secs: float = 2.0,
    builtins: bool = False,
) -> AsyncIterator[SwarmServices]:
    """Serve store + executor (fake plugin) + orchestrator on 127.0.0.1:0."""
    JOURNAL.reset()
    plugins = test_plugins(extra_plugins, builtins=builtins)
    db_path = tmp_path / "swarmd.db"
    async with contextlib.AsyncExitStack() as stack:
        if store_address is None:
            served = await stack.enter_async_context(serve_result_store(db_path))
            store_address = served.address
        exec_settings = ExecutorSettings(
            default_executor="fake", grace_period_secs=0, capacity=executor_capacity
        )
        executor_spans = InMemorySpanExporter()
        exec_telemetry = Telemetry(
            "swarmd-executor",
            TelemetrySettings(enabled=True),
            span_processors=[SimpleSpanProcessor(executor_spans)],
        )
        exec_host = ServiceHost("executor", exec_settings, telemetry=exec_telemetry)
        await build_executor(exec_host, exec_settings, plugins)
        await exec_host.start()
        stack.push_async_callback(exec_host.stop, 0)
        spans = InMemorySpanExporter()
        orch_settings = OrchestratorSettings(
            result_store_address=store_address,
            executor_address=exec_host.address,
            grace_period_secs=0,
            rpc_timeout_secs=5,
            **{"journal_path": tmp_path / "orchestrator-journal.db", **(orchestrator_settings or {})},
        )
        telemetry = Telemetry(
            "swarmd-orchestrator",
            TelemetrySettings(enabled=True),
            span_processors=[SimpleSpanProcessor(spans)],
        )
        orch_host = ServiceHost("orchestrator", orch_settings, telemetry=telemetry)
        kwargs: dict[str, Any] = {"resume": resume, "cancel_grace_secs": cancel_grace_secs}
        if sleep is not None:
            kwargs["sleep"] = sleep
        if rng is not None:
            kwargs["rng"] = rng
        orchestrator = await build_orchestrator(orch_host, orch_settings, plugins, **kwargs)
        # A config without repo_path means this directory, never the checkout
        # the tests run from (its state is not the tests' business).
        orchestrator._deps.cwd = str(tmp_path)
        await orch_host.start()
        stack.push_async_callback(orch_host.stop, 0)
        channel = grpc.aio.insecure_channel(orch_host.address)
        stack.push_async_callback(channel.close)
        yield SwarmServices(
            orchestrator=orchestrator,
            orchestrator_host=orch_host,
            executor_host=exec_host,
            store_address=store_address,
            stub=orchestrator_pb2_grpc.OrchestratorServiceStub(channel),
            coordinator=coordinator_pb2_grpc.CoordinatorServiceStub(channel),
            channel=channel,
            spans=spans,
            executor_spans=executor_spans,
            db_path=db_path,
            plugins=plugins,
        )
