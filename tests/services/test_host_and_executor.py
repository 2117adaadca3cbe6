"""ServiceHost (health, reflection, graceful shutdown) and the executor service."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.plugins import Executor, hookimpl
from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings
from swarmd.services.errors import InvalidArgument
from swarmd.services.executor import build_executor
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc


class FakeSleepyExecutor(Executor):
    """Test double: emits one event, sleeps `labels.sleep` seconds, succeeds."""

    name = "sleepy"
    description = "test executor that sleeps"
    cancelled: set[str] = set()

    def __init__(self, context):  # type: ignore[no-untyped-def]
        super().__init__(context)
        self._tasks: dict[str, asyncio.Event] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def submit(self, request):  # type: ignore[override]
        st = request.subtask
        stop = self._tasks.setdefault(st.id, asyncio.Event())
        try:
            yield executor_pb2.ExecuteSubTaskResponse(
                event=common_pb2.SwarmEvent(
                    swarm_id=request.swarm_id,
                    agent_started=common_pb2.AgentStarted(subtask_id=st.id, agent_name=f"agent-{st.id}"),
                )
            )
            try:
                await asyncio.wait_for(stop.wait(), float(st.labels.get("sleep", "0")))
                status = common_pb2.SUB_TASK_STATUS_CANCELLED
            except TimeoutError:
                status = common_pb2.SUB_TASK_STATUS_COMPLETED
            yield executor_pb2.ExecuteSubTaskResponse(
                result=common_pb2.SubTaskResult(
                    subtask_id=st.id,
                    success=status == common_pb2.SUB_TASK_STATUS_COMPLETED,
                    status=status,
                    result="slept",
                )
            )
        finally:
            self._tasks.pop(st.id, None)

    async def cancel(self, swarm_id, subtask_id, reason=""):  # type: ignore[no-untyped-def]
        event = self._tasks.get(subtask_id)
        if event is None:
            return False
        event.set()
        return True


class SleepyPlugin:
    @hookimpl
    def swarmd_register_executors(self, registry):  # type: ignore[no-untyped-def]
        registry.add(FakeSleepyExecutor)


def request(subtask_id: str = "a", sleep: float = 0.0, **kw) -> executor_pb2.ExecuteSubTaskRequest:  # type: ignore[no-untyped-def]
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id="s1",
        subtask=common_pb2.SubTask(id=subtask_id, instruction="do it", labels={"sleep": str(sleep)}),
        config=common_pb2.SwarmConfig(model="replay/x.jsonl", executor=kw.pop("executor", "sleepy")),
        attempt=1,
        **kw,
    )


@pytest.fixture
async def executor_host():  # type: ignore[no-untyped-def]
    plugins = load_plugins([SleepyPlugin()], env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": "builtin-tools,local,openai,replay"})
    settings = ExecutorSettings(default_executor="sleepy", grace_period_secs=5)
    host = ServiceHost("executor", settings)
    await build_executor(host, settings, plugins)
    await host.start()
    yield host
    await host.stop(grace=0)


async def test_health_serving_then_not_serving(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "swarmd.v1.ExecutorService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING



async def test_grpcurl_lists_services(executor_host: ServiceHost) -> None:
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
    assert grpcurl, "grpcurl missing"
    proc = await asyncio.create_subprocess_exec(
        grpcurl, "-plaintext", executor_host.address, "list",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    names = out.decode().split()
    assert "swarmd.v1.ExecutorService" in names
    assert "grpc.health.v1.Health" in names
    proc = await asyncio.create_subprocess_exec(
        grpcurl, "-plaintext", executor_host.address, "describe", "swarmd.v1.ExecutorService",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert "ExecuteSubTask" in out.decode()


async def test_execute_streams_events_then_result(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        replies = [r async for r in stub.ExecuteSubTask(request(), timeout=10)]
    assert replies[0].HasField("event") and replies[0].event.agent_started.subtask_id == "a"
    assert replies[-1].HasField("result") and replies[-1].result.success


async def test_describe_reports_plugins_and_load(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request(sleep=5), timeout=10)
        await call.read()  # agent_started: the attempt is running
        reply = await stub.Describe(executor_pb2.DescribeRequest(), timeout=5)
        assert reply.default_executor == "sleepy"
        assert reply.in_flight == 1
        names = {e.name: e for e in reply.executors}
        assert names["sleepy"].in_flight == 1 and names["sleepy"].description == "test executor that sleeps"
        cancel = await stub.CancelSubTask(
            executor_pb2.ExecutorServiceCancelSubTaskRequest(swarm_id="s1", subtask_id="a"), timeout=5
        )
        assert cancel.cancelled
        last = await call.read()
        assert last.result.status == common_pb2.SUB_TASK_STATUS_CANCELLED
        again = await stub.CancelSubTask(
            executor_pb2.ExecutorServiceCancelSubTaskRequest(swarm_id="s1", subtask_id="a"), timeout=5
        )
        assert not again.cancelled  # idempotent: nothing left to cancel


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r.subtask.ClearField("id"), "subtask.id"),
        (lambda r: setattr(r.subtask, "instruction", "  "), "empty instruction"),
        (lambda r: setattr(r.subtask, "instruction", "x" * 100_001), "100001 characters"),
        (lambda r: setattr(r, "swarm_id", "../evil"), "swarm_id"),
        (lambda r: setattr(r.config, "executor", "no-such"), "unknown executor 'no-such'"),
        (lambda r: r.config.ClearField("model"), "config.model"),
    ],
)
async def test_bad_requests_are_invalid_argument(executor_host: ServiceHost, mutate, needle) -> None:  # type: ignore[no-untyped-def]
    req = request()
    mutate(req)
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.ExecuteSubTask(req, timeout=5):
                pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.details()


async def test_graceful_shutdown_lets_in_flight_stream_finish(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        call = stub.ExecuteSubTask(request(sleep=0.5), timeout=10)
        await call.read()  # started
        stopping = asyncio.create_task(executor_host.stop(grace=5))
        await asyncio.sleep(0.1)
        # Health flipped to NOT_SERVING first; new work is refused meanwhile.
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        except grpc.aio.AioRpcError as exc:  # the server already stopped accepting calls
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
        last = await call.read()
        assert last.result.success and last.result.result == "slept"
        await stopping


async def test_unknown_default_executor_refused() -> None:
    plugins = load_plugins(env={"SWARMD_BLOCK_PLUGINS": "builtin-tools,local,openai,replay"})
    host = ServiceHost("executor", ExecutorSettings(default_executor="nope"))
    with pytest.raises(InvalidArgument, match="default executor 'nope'"):
        await build_executor(host, ExecutorSettings(default_executor="nope"), plugins)


async def test_remote_executor_forwards_and_survives_a_dead_peer(executor_host: ServiceHost) -> None:
    """The remote plugin forwards to another executor service; a dead peer is a TRANSIENT failure."""
    plugins = load_plugins(env={"SWARMD_BLOCK_PLUGINS": "builtin-tools,local,openai,replay"})
    settings = ExecutorSettings(default_executor="remote", options={"remote_address": executor_host.address, "remote_executor": "sleepy"})
    front = ServiceHost("executor", settings)
    await build_executor(front, settings, plugins)
    await front.start()
    try:
        async with grpc.aio.insecure_channel(front.address) as ch:
            stub = executor_pb2_grpc.ExecutorServiceStub(ch)
            replies = [r async for r in stub.ExecuteSubTask(request(executor="remote"), timeout=10)]
            assert replies[-1].result.success and replies[-1].result.result == "slept"
            await executor_host.stop(grace=0)
            replies = [r async for r in stub.ExecuteSubTask(request("b", executor="remote"), timeout=10)]
            result = replies[-1].result
            assert not result.success
            assert result.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
            assert "UNAVAILABLE" in result.error
    finally:
        await front.stop(grace=0)
