"""The loop with the orchestrator's rate governor and budgets, over real gRPC
(an in-memory OrchestratorService double records what the loop asked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fakes.fake_openai_server import FakeOpenAIServer, reply_error, reply_text, reply_tool_calls

from swarmd.plugins import ToolContext
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.loop import AgentLoop, LoopConfig, OutcomeKind
from swarmd.plugins.runtime.permits import Governor
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS
from swarmd.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc


class GovernorDouble(coordinator_pb2_grpc.CoordinatorServiceServicer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.permits_left: int | None = None
        self.tool_calls_left: int | None = None
        self.permit_status = grpc.StatusCode.OK

    async def AcquirePermit(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(("acquire", request))
        if self.permit_status != grpc.StatusCode.OK:
            await context.abort(self.permit_status, "orchestrator says no")
        if self.permits_left is not None:
            if self.permits_left <= 0:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "swarm token budget exhausted (1000 of 1000)")
            self.permits_left -= 1
        n = sum(1 for kind, _ in self.calls if kind == "acquire")
        return coordinator_pb2.AcquirePermitResponse(permit_id=f"p{n}", waited_ms=1500 if n == 1 else 0, lease_ms=60000)

    async def ReportOutcome(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(("report", request))
        return coordinator_pb2.ReportOutcomeResponse(retry_after_ms=0)

    async def ReserveBudget(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(("reserve", request))
        if self.tool_calls_left is not None:
            if request.tool_calls > self.tool_calls_left:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "tool-call budget exhausted (1500)")
            self.tool_calls_left -= request.tool_calls
        return coordinator_pb2.ReserveBudgetResponse(tool_calls_remaining=self.tool_calls_left or 0)

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]


@pytest.fixture
async def orchestrator() -> AsyncIterator[tuple[GovernorDouble, str]]:
    double = GovernorDouble()
    server = grpc.aio.server()
    coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(double, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield double, f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as s:
        yield s


async def run_loop(server: FakeOpenAIServer, address: str, workdir: Path, **cfg: Any) -> tuple[Any, list[Any]]:
    events: list[common_pb2.SwarmEvent] = []
    async with (
        OpenAIProvider("m", {"base_url": server.base_url, "api_key": "sk-1"}) as provider,
        grpc.aio.insecure_channel(address) as channel,
    ):
        governor = Governor(channel, swarm_id="s1", subtask_id="t1", key=provider.rate_limit_key(), rpc_timeout=5)
        loop = AgentLoop(
            provider,
            Toolbox(BUILTIN_TOOLS, ToolContext(workdir=workdir)),
            system_prompt="sys",
            user_prompt="task",
            config=LoopConfig(**cfg),
            events=EventEmitter("s1", "t1", events.append),
            governor=governor,
        )
        return await loop.run(), events


async def test_permit_report_and_429_requeue(
    orchestrator: tuple[GovernorDouble, str], server: FakeOpenAIServer, tmp_path: Path
) -> None:
    double, address = orchestrator
    server.push(
        reply_tool_calls([("write", {"path": "a.txt", "content": "x"})], usage=(30, 4)),
        reply_error(429, "slow down", headers={"retry-after": "7", "x-ratelimit-remaining-tokens": "0"}),
        reply_text("done", usage=(40, 2), headers={"x-ratelimit-remaining-requests": "41"}),
    )
    outcome, events = await run_loop(server, address, tmp_path)
    assert outcome.success and outcome.steps == 2
    assert double.kinds() == ["acquire", "report", "reserve", "acquire", "report", "acquire", "report"]

    acquire = double.calls[0][1]
    assert (acquire.swarm_id, acquire.subtask_id) == ("s1", "t1")
    assert acquire.key.provider == "openai" and acquire.key.model == "m" and acquire.key.base_url == server.base_url
    assert len(acquire.key.api_key_fingerprint) == 12 and "sk-1" not in str(acquire)
    assert acquire.estimated_tokens > 4096  # the prompt plus the reply's reserve

    first = double.calls[1][1]
    assert first.permit_id == "p1" and first.outcome == coordinator_pb2.CALL_OUTCOME_SUCCESS
    assert first.http_status == 200 and first.usage.prompt_tokens == 30
    reserve = double.calls[2][1]
    assert reserve.tool_calls == 1
    limited = double.calls[4][1]
    assert limited.outcome == coordinator_pb2.CALL_OUTCOME_RATE_LIMITED and limited.http_status == 429
    assert limited.headers["retry-after"] == "7" and limited.headers["x-ratelimit-remaining-tokens"] == "0"
    last = double.calls[6][1]
    assert last.outcome == coordinator_pb2.CALL_OUTCOME_SUCCESS
    assert last.headers["x-ratelimit-remaining-requests"] == "41" and last.usage.completion_tokens == 2

    rate_events = [e.rate_limited for e in events if e.HasField("rate_limited")]
    # The first permit waited 1.5 s in line; the 429 went back in line without sleeping.
    assert [(r.http_status, r.waited_ms) for r in rate_events] == [(0, 1500), (429, 0)]


async def test_exhausted_permit_ends_with_budget_exhausted(
    orchestrator: tuple[GovernorDouble, str], server: FakeOpenAIServer, tmp_path: Path
) -> None:
    double, address = orchestrator
    double.permits_left = 1
    server.push(reply_tool_calls([("write", {"path": "kept.txt", "content": "x"})], content="Step one."))
    outcome, _ = await run_loop(server, address, tmp_path)
    assert outcome.kind is OutcomeKind.BUDGET_EXHAUSTED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED
    assert "swarm token budget exhausted" in outcome.error
    assert outcome.output == "Step one." and outcome.tool_calls == 1
    assert (tmp_path / "kept.txt").exists()
    assert len(server.requests) == 1


async def test_exhausted_tool_budget_runs_no_tool(
    orchestrator: tuple[GovernorDouble, str], server: FakeOpenAIServer, tmp_path: Path
) -> None:
    double, address = orchestrator
    double.tool_calls_left = 1
    server.push(
        reply_tool_calls(
            [("write", {"path": "a.txt", "content": "x"}), ("write", {"path": "b.txt", "content": "y"})]
        )
    )
    outcome, _ = await run_loop(server, address, tmp_path)
    assert outcome.kind is OutcomeKind.BUDGET_EXHAUSTED and "tool-call budget" in outcome.error
    assert outcome.tool_calls == 0 and not (tmp_path / "a.txt").exists()


async def test_unavailable_orchestrator_is_transient(
    orchestrator: tuple[GovernorDouble, str], server: FakeOpenAIServer, tmp_path: Path
) -> None:
    double, address = orchestrator
    double.permit_status = grpc.StatusCode.UNAVAILABLE
    outcome, _ = await run_loop(server, address, tmp_path)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    assert "AcquirePermit failed" in outcome.error
    double.permit_status = grpc.StatusCode.INVALID_ARGUMENT
    outcome, _ = await run_loop(server, address, tmp_path)
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_PERMANENT


async def test_provider_error_is_reported_as_error(
    orchestrator: tuple[GovernorDouble, str], server: FakeOpenAIServer, tmp_path: Path
) -> None:
    double, address = orchestrator
    server.push(reply_error(500, "boom", headers={"x-request-id": "abc"}))
    outcome, _ = await run_loop(server, address, tmp_path, model_retries=0)
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    report = double.calls[1][1]
    assert report.outcome == coordinator_pb2.CALL_OUTCOME_ERROR and report.http_status == 500
    assert report.headers["x-request-id"] == "abc"
