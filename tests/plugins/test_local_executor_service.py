"""The ``local`` executor behind the real executor service, over real gRPC,
with two sub-agents sharing a result through the real result store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import swarmd.plugins.executors.local as local_mod
import swarmd.plugins.providers.openai as openai_mod
import swarmd.plugins.providers.replay as replay_mod
import swarmd.plugins.tools as tools_mod
from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings, TelemetrySettings
from swarmd.services.executor import build_executor
from swarmd.services.result_store.testing import serve_result_store
from swarmd.services.telemetry import Telemetry
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

BLOCK = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}


@pytest.fixture
async def executor_service() -> AsyncIterator[tuple[str, InMemorySpanExporter]]:
    plugins = load_plugins([openai_mod, replay_mod, tools_mod, local_mod], env=BLOCK)
    settings = ExecutorSettings(default_executor="local", grace_period_secs=0, options={"capacity": "4"})
    exporter = InMemorySpanExporter()
    telemetry = Telemetry("swarmd-executor", TelemetrySettings(enabled=True), span_processors=[SimpleSpanProcessor(exporter)])
    host = ServiceHost("executor", settings, telemetry=telemetry)
    await build_executor(host, settings, plugins)
    await host.start()
    yield host.address, exporter
    await host.stop(0)


def request(model: str, repo: Path, subtask_id: str, store: str) -> executor_pb2.ExecuteSubTaskRequest:
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id="swarm9",
        subtask=common_pb2.SubTask(id=subtask_id, name=subtask_id, instruction="share things", read_only=True),
        config=common_pb2.SwarmConfig(model=model, executor="local"),
        attempt=1,
        workspace=executor_pb2.Workspace(repo_path=str(repo)),
        result_store_address=store,
    )


async def run(stub: Any, req: executor_pb2.ExecuteSubTaskRequest) -> tuple[list[Any], Any]:
    events, result = [], None
    async for message in stub.ExecuteSubTask(req, timeout=30):
        if message.HasField("event"):
            events.append(message.event)
        else:
            result = message.result
    return events, result


async def test_two_agents_share_a_result_through_the_store(
    executor_service: tuple[str, InMemorySpanExporter], tmp_path: Path
) -> None:
    address, exporter = executor_service
    repo = tmp_path / "repo"
    repo.mkdir()
    cassette = tmp_path / "swarm.jsonl"
    lines = [
        {"key": "reader", "step": 1, "tool_calls": [{"name": "swarm_share", "arguments": {"action": "wait", "key": "schema", "timeout_secs": 20}}]},
        {"key": "reader", "step": 2, "content": "Got the schema."},
        {"key": "writer", "step": 1, "tool_calls": [{"name": "swarm_share", "arguments": {"action": "publish", "key": "schema", "value": {"tables": ["users"]}, "tags": ["db"]}}]},
        {"key": "writer", "step": 2, "content": "Published."},
    ]
    cassette.write_text("".join(json.dumps(line) + "\n" for line in lines))
    model = f"replay/{cassette}"
    async with serve_result_store(tmp_path / "store.db") as store, grpc.aio.insecure_channel(address) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        reader = asyncio.create_task(run(stub, request(model, repo, "reader", store.address)))
        await asyncio.sleep(0.3)
        assert not reader.done()
        writer_events, writer = await run(stub, request(model, repo, "writer", store.address))
        reader_events, result = await asyncio.wait_for(reader, 20)
    assert writer.success and writer.result == "Published."
    assert result.success and result.result == "Got the schema."
    waited = next(e.agent_tool_call_detail for e in reader_events if e.HasField("agent_tool_call_detail"))
    assert waited.success and '"tables"' in waited.output_preview and '"producer": "writer"' in waited.output_preview
    published = next(e.agent_tool_call_detail for e in writer_events if e.HasField("agent_tool_call_detail"))
    assert published.output_preview == "Published result 'schema' (type: object)"
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"swarmd.subtask.attempt", "swarmd.model.complete", "swarmd.tool swarm_share"} <= names


async def test_cancel_through_the_service(executor_service: tuple[str, InMemorySpanExporter], tmp_path: Path) -> None:
    address, _ = executor_service
    repo = tmp_path / "repo"
    repo.mkdir()
    cassette = tmp_path / "c.jsonl"
    # The agent waits for a key nobody publishes, until it is cancelled.
    wait = {"name": "swarm_share", "arguments": {"action": "wait", "key": "never", "timeout_secs": 60}}
    cassette.write_text(json.dumps({"key": "slow", "step": 1, "tool_calls": [wait]}) + "\n")
    async with serve_result_store(tmp_path / "store.db") as store, grpc.aio.insecure_channel(address) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        req = request(f"replay/{cassette}", repo, "slow", store.address)
        running = asyncio.create_task(run(stub, req))
        await asyncio.sleep(0.5)
        reply = await stub.CancelSubTask(
            executor_pb2.ExecutorServiceCancelSubTaskRequest(swarm_id="swarm9", subtask_id="slow", reason="stop"),
            timeout=5,
        )
        assert reply.cancelled
        _, result = await asyncio.wait_for(running, 10)
    assert result.status == common_pb2.SUB_TASK_STATUS_CANCELLED and "stop" in result.error
