"""Executor plugins that break the contract are named in the failed result:
a stream that raises, yields something other than a response, ends without a
result, yields two results or an event after its result, and a constructor
that raises."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from swarmd.plugins import Executor, hookimpl
from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings
from swarmd.services.executor import build_executor
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc


def _event(request: executor_pb2.ExecuteSubTaskRequest) -> executor_pb2.ExecuteSubTaskResponse:
    return executor_pb2.ExecuteSubTaskResponse(
        event=common_pb2.SwarmEvent(
            swarm_id=request.swarm_id,
            agent_started=common_pb2.AgentStarted(subtask_id=request.subtask.id, agent_name="a"),
        )
    )


class RaisingMidStreamExecutor(Executor):
    name = "raises"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _event(request)
        raise RuntimeError("the sandbox fell over")


class GarbageExecutor(Executor):
    name = "garbage"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _event(request)
        yield {"result": "done"}


class EmptyMessageExecutor(Executor):
    name = "empty"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield executor_pb2.ExecuteSubTaskResponse()


class NoResultExecutor(Executor):
    name = "noresult"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _event(request)


def _result(request: executor_pb2.ExecuteSubTaskRequest) -> executor_pb2.ExecuteSubTaskResponse:
    return executor_pb2.ExecuteSubTaskResponse(
        result=common_pb2.SubTaskResult(
            subtask_id=request.subtask.id, success=True, status=common_pb2.SUB_TASK_STATUS_COMPLETED
        )
    )


class TwoResultsExecutor(Executor):
    name = "tworesults"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _result(request)
        yield _result(request)


class EventAfterResultExecutor(Executor):
    name = "eventafter"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _result(request)
        yield _event(request)


class LingeringExecutor(Executor):
    """Yields its result and then neither yields nor ends."""

    name = "lingers"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _event(request)
        yield _result(request)
        await asyncio.Event().wait()


class BrokenConstructorExecutor(Executor):
    name = "brokenctor"

    def __init__(self, context: Any) -> None:
        raise ValueError("option k8s_namespace is required")

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _event(request)


class MisbehavingPlugin:
    @hookimpl
    def swarmd_register_executors(self, registry: Any) -> None:
        for cls in (
            RaisingMidStreamExecutor,
            GarbageExecutor,
            EmptyMessageExecutor,
            NoResultExecutor,
            TwoResultsExecutor,
            EventAfterResultExecutor,
            LingeringExecutor,
            BrokenConstructorExecutor,
        ):
            registry.add(cls)


@pytest.fixture
async def host():  # type: ignore[no-untyped-def]
    plugins = load_plugins([MisbehavingPlugin()], env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
    settings = ExecutorSettings(default_executor="raises", grace_period_secs=5)
    host = ServiceHost("executor", settings)
    await build_executor(host, settings, plugins)
    await host.start()
    yield host
    await host.stop(grace=0)


async def _run(host: ServiceHost, executor: str) -> list[executor_pb2.ExecuteSubTaskResponse]:
    request = executor_pb2.ExecuteSubTaskRequest(
        swarm_id="s1",
        subtask=common_pb2.SubTask(id="t1", instruction="do it"),
        config=common_pb2.SwarmConfig(model="replay/x.jsonl", executor=executor),
        attempt=1,
    )
    async with grpc.aio.insecure_channel(host.address) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        return [r async for r in stub.ExecuteSubTask(request, timeout=10)]


@pytest.mark.parametrize(
    ("executor", "says", "kind"),
    [
        ("raises", "raised RuntimeError: the sandbox fell over", common_pb2.FAILURE_KIND_PERMANENT),
        ("garbage", "broke the executor contract: it yielded a dict, not an ExecuteSubTaskResponse", common_pb2.FAILURE_KIND_PERMANENT),
        ("empty", "broke the executor contract: it yielded an ExecuteSubTaskResponse with no event", common_pb2.FAILURE_KIND_PERMANENT),
        ("noresult", "ended the stream without a result", common_pb2.FAILURE_KIND_TRANSIENT),
        ("tworesults", "broke the executor contract: it yielded a second result", common_pb2.FAILURE_KIND_PERMANENT),
        ("eventafter", "broke the executor contract: it yielded an event after its result", common_pb2.FAILURE_KIND_PERMANENT),
    ],
)
async def test_a_misbehaving_stream_fails_the_subtask_naming_the_plugin(
    host: ServiceHost, executor: str, says: str, kind: int
) -> None:
    replies = await _run(host, executor)
    result = replies[-1].result
    assert replies[-1].HasField("result") and not result.success
    assert result.status == common_pb2.SUB_TASK_STATUS_FAILED and result.failure_kind == kind
    assert f"executor plugin {executor!r} (module {__name__})" in result.error
    assert says in result.error
    assert sum(r.HasField("result") for r in replies) == 1


async def test_a_raising_constructor_is_failed_precondition_naming_the_plugin(host: ServiceHost) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _run(host, "brokenctor")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "executor plugin 'brokenctor'" in (info.value.details() or "")
    assert "ValueError: option k8s_namespace is required" in (info.value.details() or "")


async def test_a_stream_that_lingers_after_its_result_is_taken_at_its_result(host: ServiceHost) -> None:
    replies = await _run(host, "lingers")
    assert replies[-1].HasField("result") and replies[-1].result.success
    assert sum(r.HasField("result") for r in replies) == 1
