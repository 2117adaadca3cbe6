"""The conformance kit fails, naming the broken rule, for plugins that break
the executor, provider and tool contracts."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from swarmd.plugins import (
    CompletionResponse,
    Executor,
    ExecutorContext,
    Message,
    ModelProvider,
    RateLimitError,
    Tool,
    ToolContext,
    ToolResult,
)
from swarmd.plugins.executor import unfinished_result
from swarmd.plugins.testing import (
    ContractViolation,
    check_executor,
    check_provider,
    check_provider_error,
    check_tool,
)
from swarmd.v1 import common_pb2, executor_pb2


def _result(request: Any, status: int = common_pb2.SUB_TASK_STATUS_COMPLETED, **kw: Any) -> executor_pb2.ExecuteSubTaskResponse:
    return executor_pb2.ExecuteSubTaskResponse(
        result=common_pb2.SubTaskResult(
            subtask_id=request.subtask.id, status=status, success=status == common_pb2.SUB_TASK_STATUS_COMPLETED, **kw
        )
    )


def _started(request: Any) -> executor_pb2.ExecuteSubTaskResponse:
    return executor_pb2.ExecuteSubTaskResponse(
        event=common_pb2.SwarmEvent(
            swarm_id=request.swarm_id,
            agent_started=common_pb2.AgentStarted(subtask_id=request.subtask.id, agent_name="a"),
        )
    )


class FakeGoodExecutor(Executor):
    """Test double that follows every rule: "hang" models run until cancelled or closed."""

    name = "good"

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        self.running: dict[tuple[str, str], asyncio.Event] = {}

    @property
    def in_flight(self) -> int:
        return len(self.running)

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        key = (request.swarm_id, request.subtask.id)
        stop = self.running[key] = asyncio.Event()
        try:
            yield _started(request)
            if request.config.model.endswith("/hang"):
                await stop.wait()
                yield unfinished_result(
                    request, "cancelled", kind=common_pb2.FAILURE_KIND_CANCELLED, status=common_pb2.SUB_TASK_STATUS_CANCELLED
                )
                return
            yield _result(request, result="done")
        finally:
            self.running.pop(key, None)

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        stop = self.running.get((swarm_id, subtask_id))
        if stop is None:
            return False
        stop.set()
        return True


class FakeTwoResultsExecutor(FakeGoodExecutor):
    name = "two-results"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _result(request)
        yield _result(request)


class FakeNoResultExecutor(FakeGoodExecutor):
    name = "no-result"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _started(request)


class FakeEventAfterResultExecutor(FakeGoodExecutor):
    name = "event-after"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _result(request)
        yield _started(request)


class FakeGarbageExecutor(FakeGoodExecutor):
    name = "garbage"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield "done"


class FakeSilentFailureExecutor(FakeGoodExecutor):
    name = "silent-failure"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        yield _result(request, common_pb2.SUB_TASK_STATUS_FAILED)


class FakeCancelAlwaysTrueExecutor(FakeGoodExecutor):
    name = "cancel-true"

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        await super().cancel(swarm_id, subtask_id, reason)
        return True


class FakeIgnoresCancelExecutor(FakeGoodExecutor):
    name = "ignores-cancel"

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        return (swarm_id, subtask_id) in self.running


class FakeCompletedOnCancelExecutor(FakeGoodExecutor):
    name = "completed-on-cancel"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        key = (request.swarm_id, request.subtask.id)
        stop = self.running[key] = asyncio.Event()
        try:
            yield _started(request)
            if request.config.model.endswith("/hang"):
                await stop.wait()
            yield _result(request)
        finally:
            self.running.pop(key, None)


class FakeLeaksOnCloseExecutor(FakeGoodExecutor):
    name = "leaks-on-close"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        key = (request.swarm_id, request.subtask.id)
        stop = self.running[key] = asyncio.Event()
        yield _started(request)
        if request.config.model.endswith("/hang"):
            await stop.wait()
            self.running.pop(key, None)
            yield unfinished_result(
                request, "cancelled", kind=common_pb2.FAILURE_KIND_CANCELLED, status=common_pb2.SUB_TASK_STATUS_CANCELLED
            )
            return
        self.running.pop(key, None)
        yield _result(request)


class FakeLeavesAProcessExecutor(FakeGoodExecutor):
    """Stops its own bookkeeping on close but leaves the process it started running."""

    name = "leaves-a-process"
    procs: list[subprocess.Popen[bytes]] = []

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        if request.config.model.endswith("/hang"):
            self.procs.append(subprocess.Popen(["sleep", "300"], start_new_session=True))  # noqa: ASYNC220 (a fake: the process is the point)
        async for message in super().submit(request):
            yield message


class FakeNegativeCapacityExecutor(FakeGoodExecutor):
    name = "negative-capacity"

    @property
    def capacity(self) -> int:
        return -1


class FakeCloseTwiceFailsExecutor(FakeGoodExecutor):
    name = "close-twice"
    closed = False

    async def aclose(self) -> None:
        if self.closed:
            raise RuntimeError("already closed")
        self.closed = True


async def test_a_good_executor_passes(swarmd_executor_context: ExecutorContext, swarmd_request: Callable[..., Any]) -> None:
    await check_executor(
        FakeGoodExecutor, swarmd_executor_context, quick=swarmd_request(), slow=swarmd_request(model="scripted/hang", subtask_id="slow")
    )


@pytest.mark.parametrize(
    ("cls", "rule", "says"),
    [
        (FakeTwoResultsExecutor, "one-result", "2 results"),
        (FakeNoResultExecutor, "one-result", "without a result"),
        (FakeEventAfterResultExecutor, "one-result", "follow the result"),
        (FakeGarbageExecutor, "well-formed", "is a str"),
        (FakeSilentFailureExecutor, "result-fields", "say why"),
        (FakeCancelAlwaysTrueExecutor, "cancel-unknown", "must return False"),
        (FakeIgnoresCancelExecutor, "cancel", "cancel grace"),
        (FakeCompletedOnCancelExecutor, "cancel", "not CANCELLED"),
        (FakeLeaksOnCloseExecutor, "close-stops", "in_flight is still 1"),
        (FakeLeavesAProcessExecutor, "close-stops", "the attempt started still run"),
        (FakeNegativeCapacityExecutor, "capacity", "capacity is -1"),
        (FakeCloseTwiceFailsExecutor, "aclose-twice", "already closed"),
    ],
)
async def test_each_broken_executor_rule_is_named(
    cls: type[Executor], rule: str, says: str, swarmd_executor_context: ExecutorContext, swarmd_request: Callable[..., Any]
) -> None:
    with pytest.raises(ContractViolation) as info:
        await check_executor(
            cls,
            swarmd_executor_context,
            quick=swarmd_request(),
            slow=swarmd_request(model="scripted/hang", subtask_id="slow"),
            cancel_grace=0.5,
        )
    assert info.value.rule == rule
    assert str(info.value).startswith(f"[{rule}] {cls.name}:") and says in str(info.value)


class FakeWrongShapeProvider(ModelProvider):
    name = "wrong-shape"

    async def complete(self, request):  # type: ignore[no-untyped-def,override]
        return {"content": "hi"}


class FakeUserRoleProvider(ModelProvider):
    name = "user-role"

    async def complete(self, request):  # type: ignore[no-untyped-def,override]
        return CompletionResponse(Message("user", "hi"))


class FakeUnclassifiedErrorProvider(ModelProvider):
    name = "unclassified"

    async def complete(self, request):  # type: ignore[no-untyped-def,override]
        raise ConnectionError("socket closed")


@pytest.mark.parametrize(
    ("cls", "says"), [(FakeWrongShapeProvider, "not a CompletionResponse"), (FakeUserRoleProvider, "role 'assistant'")]
)
async def test_a_malformed_completion_is_named(cls: type[ModelProvider], says: str) -> None:
    with pytest.raises(ContractViolation, match=rf"^\[response\] {cls.name}: .*{says}"):
        await check_provider(cls, "m")


async def test_an_unclassified_provider_error_is_named() -> None:
    with pytest.raises(ContractViolation, match=r"^\[errors\] unclassified: raised ConnectionError, not a ProviderError"):
        await check_provider_error(FakeUnclassifiedErrorProvider, "m", expected=RateLimitError)


class FakeEscapingTool(Tool):
    """Test double: writes wherever it is told, ignoring ctx.resolve()."""

    name = "escaping_write"
    description = "writes a file without confining the path"
    parameters = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        target = ctx.workdir / args["path"] if not args["path"].startswith("/") else __import__("pathlib").Path(args["path"])
        target.write_text("escaped\n")
        return ToolResult("written")


class FakeCrashingTool(FakeEscapingTool):
    name = "crashing"
    parameters = {"type": "object", "properties": {"path": {"type": "string"}}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult("ok") if args.get("path") == "README.md" else ToolResult(str(1 / 0))


class FakeBadSchemaTool(FakeEscapingTool):
    name = "bad_schema"
    parameters = {"type": "object", "properties": {"path": {"type": 7}}}


@pytest.mark.parametrize(
    ("cls", "rule"), [(FakeEscapingTool, "paths"), (FakeCrashingTool, "paths"), (FakeBadSchemaTool, "schema")]
)
async def test_each_broken_tool_rule_is_named(cls: type[Tool], rule: str, swarmd_tool_context: ToolContext) -> None:
    with pytest.raises(ContractViolation) as info:
        await check_tool(cls, swarmd_tool_context, valid={"path": "README.md"})
    assert info.value.rule == rule and str(info.value).startswith(f"[{rule}] {cls.name}:")


@pytest.fixture(autouse=True)
def _reap_left_processes() -> Any:
    yield
    for proc in FakeLeavesAProcessExecutor.procs:
        proc.kill()
        proc.wait()
    FakeLeavesAProcessExecutor.procs.clear()
