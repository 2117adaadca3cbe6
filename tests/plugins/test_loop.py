"""The agent loop driven through the real ``openai`` provider and a fake
OpenAI server on loopback, with the real tools in a temporary worktree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import (
    FakeOpenAIServer,
    Reply,
    completion,
    reply_error,
    reply_text,
    reply_tool_calls,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarmd.plugins import ToolContext
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.loop import (
    AgentLoop,
    LoopConfig,
    OutcomeKind,
    salvage_textual_tool_calls,
)
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS
from swarmd.v1 import common_pb2


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
async def provider(server: FakeOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    async with OpenAIProvider("fake-model", {"base_url": server.base_url, "api_key": "k"}) as p:
        yield p


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "wt"
    d.mkdir()
    (d / "notes.txt").write_text("one\ntwo\n")
    return d.resolve()


def make_loop(
    provider: OpenAIProvider, workdir: Path, events: list[common_pb2.SwarmEvent] | None = None, **cfg: Any
) -> AgentLoop:
    toolbox = Toolbox(BUILTIN_TOOLS, ToolContext(workdir=workdir))
    sink = events.append if events is not None else None
    return AgentLoop(
        provider,
        toolbox,
        system_prompt="You are a test agent.",
        user_prompt="Complete this task:\n\nwrite hello.txt",
        config=LoopConfig(**cfg),
        events=EventEmitter("swarm-1", "task-1", sink),
    )


def kinds(events: list[common_pb2.SwarmEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


async def test_writes_a_file_then_finishes(server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path) -> None:
    events: list[common_pb2.SwarmEvent] = []
    server.push(
        reply_tool_calls([("write", {"path": "hello.txt", "content": "hi\n"})], content="Writing it.", usage=(100, 20)),
        reply_text("Created hello.txt.", usage=(150, 10), cached_tokens=100),
    )
    outcome = await make_loop(provider, workdir, events).run()
    assert outcome.kind is OutcomeKind.COMPLETED and outcome.success
    assert (workdir / "hello.txt").read_text() == "hi\n"
    assert (outcome.steps, outcome.tool_calls) == (2, 1)
    assert outcome.output == "Writing it.\nCreated hello.txt."
    assert (outcome.usage.prompt_tokens, outcome.usage.completion_tokens) == (250, 30)
    assert outcome.usage.cache_read_tokens == 100
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_UNSPECIFIED

    second = server.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["tool_calls"][0]["function"]["name"] == "write"
    assert second[3] == {"role": "tool", "tool_call_id": "call_0", "content": "Created hello.txt (3 bytes)"}
    assert {t["function"]["name"] for t in server.requests[0].json["tools"]} == {
        "read", "write", "edit", "multiedit", "list", "glob", "grep", "bash"
    }

    assert kinds(events) == [
        "agent_step", "agent_message", "agent_tool_call", "agent_tool_call_detail", "agent_step", "agent_message"
    ]
    detail = events[3].agent_tool_call_detail
    assert detail.tool_name == "write" and detail.success and detail.step == 1
    assert json.loads(detail.input_preview)["path"] == "hello.txt"
    assert events[0].agent_step.usage.prompt_tokens == 100 and events[0].agent_step.finish_reason == "tool_calls"
    assert events[1].agent_message.is_tool_call and not events[5].agent_message.is_tool_call
    assert all(e.swarm_id == "swarm-1" and e.sequence == 0 and e.time.seconds > 0 for e in events)


async def test_stop_with_tool_calls_still_runs_the_tools(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    server.push(
        reply_tool_calls([("write", {"path": "a.txt", "content": "x"})], finish_reason="stop"),
        reply_text("done"),
    )
    outcome = await make_loop(provider, workdir).run()
    assert outcome.success and (workdir / "a.txt").exists() and outcome.steps == 2


async def test_length_asks_the_model_to_continue(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    server.push(reply_text("The first half", finish_reason="length"), reply_text(" and the rest."))
    outcome = await make_loop(provider, workdir).run()
    assert outcome.success and outcome.steps == 2
    assert outcome.output == "The first half and the rest."
    last = server.requests[1].json["messages"][-1]
    assert last["role"] == "user" and "cut off" in last["content"]


async def test_max_steps(server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path) -> None:
    server.fallback = lambda _body: reply_tool_calls([("list", {})])
    outcome = await make_loop(provider, workdir, max_steps=3).run()
    assert outcome.kind is OutcomeKind.MAX_STEPS
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_MAX_STEPS
    assert outcome.error == "Sub-agent hit max steps (3)"
    assert (outcome.steps, outcome.tool_calls) == (3, 3)
    assert len(server.requests) == 3


async def test_429_goes_back_in_line_without_failing(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    events: list[common_pb2.SwarmEvent] = []
    server.push(
        reply_error(429, "Too many requests", headers={"retry-after": "0.1", "x-ratelimit-remaining-requests": "0"}),
        reply_error(429, "Too many requests", headers={"retry-after": "0"}),
        reply_text("done"),
    )
    loop = make_loop(provider, workdir, events)
    outcome = await loop.run()
    assert outcome.success and outcome.steps == 1
    assert loop.rate_limit_hits == 2
    limited = [e.rate_limited for e in events if e.HasField("rate_limited")]
    assert [r.http_status for r in limited] == [429, 429]
    assert limited[0].waited_ms == 100 and limited[0].key.startswith("openai|")


@pytest.mark.parametrize(
    "reply,kind,text",
    [
        (reply_error(503, "overloaded"), common_pb2.FAILURE_KIND_TRANSIENT, "overloaded"),
        (reply_error(400, "bad tools"), common_pb2.FAILURE_KIND_PERMANENT, "bad tools"),
        (Reply(body=b"not json"), common_pb2.FAILURE_KIND_PERMANENT, "malformed JSON"),
    ],
)
async def test_provider_errors_are_classified(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path, reply: Reply, kind: int, text: str
) -> None:
    server.push(reply_tool_calls([("list", {})], content="Looking first."), reply)
    outcome = await make_loop(provider, workdir, model_retries=0).run()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failure_kind == kind and text in outcome.error
    # What was done is kept.
    assert outcome.steps == 2 and outcome.tool_calls == 1 and outcome.output == "Looking first."


async def test_call_timeout_is_transient(server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path) -> None:
    server.push(reply_text("late", delay=3))
    outcome = await make_loop(provider, workdir, call_timeout_secs=0.3).run()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    assert "timed out after 0.3s" in outcome.error


async def test_idle_timeout_times_out(server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path) -> None:
    server.push(reply_tool_calls([("bash", {"command": "sleep 5; echo late > late.txt"})]))
    outcome = await make_loop(provider, workdir, idle_timeout_secs=0.5).run()
    assert outcome.kind is OutcomeKind.TIMED_OUT
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TIMEOUT
    assert "timed out after 0.5s" in outcome.error
    await asyncio.sleep(0.1)
    assert not (workdir / "late.txt").exists()


async def test_bad_tool_calls_are_shown_to_the_model(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    events: list[common_pb2.SwarmEvent] = []
    server.push(
        reply_tool_calls(
            [
                ("delete_everything", {}),
                ("read", "{broken"),
                ("read", {"file": "notes.txt"}),
                ("read", {"path": "../../etc/passwd"}),
                ("read", {"path": "notes.txt"}),
            ]
        ),
        reply_text("ok"),
    )
    outcome = await make_loop(provider, workdir, events).run()
    assert outcome.success and outcome.tool_calls == 5
    tool_msgs = [m for m in server.requests[1].json["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [f"call_{i}" for i in range(5)]
    assert "unknown tool 'delete_everything'" in tool_msgs[0]["content"]
    assert "not valid JSON" in tool_msgs[1]["content"]
    assert "'path' is a required property" in tool_msgs[2]["content"]
    assert "outside the worktree" in tool_msgs[3]["content"]
    assert tool_msgs[4]["content"].startswith("     1\tone")
    details = [e.agent_tool_call_detail for e in events if e.HasField("agent_tool_call_detail")]
    assert [d.success for d in details] == [False, False, False, False, True]


async def test_big_tool_output_is_cut_with_the_marker(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    (workdir / "big.txt").write_text("".join(f"line {i:05d} of the file\n" for i in range(3000)))
    server.push(reply_tool_calls([("read", {"path": "big.txt"})]), reply_text("ok"))
    await make_loop(provider, workdir).run()
    content = server.requests[1].json["messages"][-1]["content"]
    assert len(content) < 6200
    assert "[OUTPUT TRUNCATED: " in content and "chars to fit context limit]" in content


async def test_token_budget_stops_before_the_next_call(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    server.push(reply_tool_calls([("write", {"path": "a.txt", "content": "x"})], usage=(10, 5)))
    outcome = await make_loop(provider, workdir, max_total_tokens=15).run()
    assert outcome.kind is OutcomeKind.BUDGET_EXHAUSTED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED
    assert "used 15 of 15 tokens" in outcome.error
    assert outcome.steps == 1 and (workdir / "a.txt").exists() and len(server.requests) == 1


async def test_cost_budget(server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path) -> None:
    server.push(reply_tool_calls([("list", {})], usage=(1_000_000, 0)))
    outcome = await make_loop(provider, workdir, max_cost_usd=1.0, price_prompt_per_mtok=2.0).run()
    assert outcome.kind is OutcomeKind.BUDGET_EXHAUSTED and outcome.cost_usd == 2.0
    assert "cost budget exhausted" in outcome.error


async def test_textual_tool_calls_are_salvaged(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    text = 'Let me write it.\n<tool_call>{"name": "write", "arguments": {"path": "t.txt", "content": "salvaged"}}</tool_call>'
    server.push(reply_text(text), reply_text("done"))
    outcome = await make_loop(provider, workdir).run()
    assert outcome.success and (workdir / "t.txt").read_text() == "salvaged"
    sent = server.requests[1].json["messages"]
    assert sent[2]["content"] == "Let me write it." and sent[2]["tool_calls"][0]["function"]["name"] == "write"
    assert sent[3]["tool_call_id"] == "text_call_1_0"
    remaining, calls = salvage_textual_tool_calls("<tool_call>{bad}</tool_call> <tool_call>{\"name\": \"nope\"}</tool_call>", {"read"}, 1)
    assert calls == [] and remaining.startswith("<tool_call>")


async def test_spans_for_model_and_tool_calls(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    server.push(reply_tool_calls([("read", {"path": "missing.txt"})], usage=(7, 3)), reply_text("done"))
    loop = make_loop(provider, workdir)
    loop.tracer = tp.get_tracer("test")
    await loop.run()
    tp.shutdown()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["swarmd.model.complete", "swarmd.tool read", "swarmd.model.complete"]
    model = spans[0]
    assert model.attributes["gen_ai.usage.input_tokens"] == 7
    assert model.attributes["gen_ai.request.model"] == "fake-model"
    tool = spans[1]
    assert tool.attributes["swarmd.tool.success"] is False
    assert tool.status.status_code.name == "ERROR"


async def test_cancellation_keeps_what_was_done(
    server: FakeOpenAIServer, provider: OpenAIProvider, workdir: Path
) -> None:
    server.push(reply_tool_calls([("write", {"path": "a.txt", "content": "x"})]), reply_text("never", delay=30))
    loop = make_loop(provider, workdir)
    task = asyncio.create_task(loop.run())
    for _ in range(500):
        if len(server.requests) >= 2:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcome = loop.outcome(OutcomeKind.CANCELLED, "cancelled by test")
    assert outcome.steps == 2 and outcome.tool_calls == 1
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_CANCELLED


def test_fake_completion_helper() -> None:
    body = completion("x", [("read", {"path": "a"})], usage=None)
    assert "usage" not in body and body["choices"][0]["finish_reason"] == "tool_calls"
