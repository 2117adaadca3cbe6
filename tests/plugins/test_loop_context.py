"""Context-window management: estimates, truncation, and dropping whole
assistant+tool groups so a tool result never loses its call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import FakeOpenAIServer, reply_text, reply_tool_calls

from swarmd.plugins import Message, ToolCall, ToolContext, ToolSpec
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.runtime.context import (
    CONTEXT_NOTE_PREFIX,
    estimate_message_tokens,
    estimate_text_tokens,
    fit_context,
    shrink_tool_output,
    truncate_single_result,
)
from swarmd.plugins.runtime.loop import AgentLoop, LoopConfig
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS


def test_estimates() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("a" * 7) == 2
    assert estimate_text_tokens("é" * 7) == 4  # bytes, not characters
    assert estimate_message_tokens(Message("user", "a" * 7)) == 6
    call = ToolCall("id", "read", "{}")
    assert estimate_message_tokens(Message("assistant", None, [call])) == 4 + 1 + 2 + 1 + 10
    assert estimate_message_tokens(Message("tool", "abc", tool_call_id="id")) == 4 + 1 + 1 + 6


def test_truncate_single_result_cuts_at_a_line() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    out = truncate_single_result(text, 100)
    kept = out.split("...\n\n[OUTPUT TRUNCATED")[0]
    assert kept.endswith("line 12") and len(kept) <= 100
    assert out.endswith(f"[OUTPUT TRUNCATED: {len(text)} → {len(kept)} chars to fit context limit]")
    assert truncate_single_result("x" * 50, 10).startswith("x" * 10 + "...")
    assert shrink_tool_output("short") == "short"
    big = "y\n" * 40_000  # over 50,000 characters: truncated too
    assert "[OUTPUT TRUNCATED: 80000 →" in shrink_tool_output(big)


def conversation(turns: int, result_chars: int = 400) -> list[Message]:
    msgs = [Message("system", "sys " * 50), Message("user", "task " * 50)]
    for i in range(turns):
        calls = [ToolCall(f"c{i}a", "read", '{"path": "x"}'), ToolCall(f"c{i}b", "grep", '{"pattern": "y"}')]
        msgs.append(Message("assistant", f"turn {i}", calls))
        msgs.append(Message("tool", "r" * result_chars, tool_call_id=f"c{i}a", name="read"))
        msgs.append(Message("tool", "g" * result_chars, tool_call_id=f"c{i}b", name="grep"))
    msgs.append(Message("user", "please continue"))
    return msgs


def assert_valid(messages: list[Message]) -> None:
    """Every tool message answers a call of the nearest preceding assistant message."""
    open_calls: set[str] = set()
    for m in messages:
        if m.role == "assistant":
            open_calls = {c.id for c in m.tool_calls}
        elif m.role == "tool":
            assert m.tool_call_id in open_calls, f"orphaned tool result {m.tool_call_id}"
            open_calls.discard(m.tool_call_id)
        else:
            open_calls = set()


def test_under_target_nothing_changes() -> None:
    msgs = conversation(3)
    before = [(m.role, m.content) for m in msgs]
    report = fit_context(msgs, context_window=100_000, reserve_tokens=1000)
    assert not report.changed and [(m.role, m.content) for m in msgs] == before


def test_big_results_are_truncated_first() -> None:
    msgs = conversation(2, result_chars=30_000)
    report = fit_context(msgs, context_window=20_000, reserve_tokens=1000)
    assert report.results_truncated == 4 and report.messages_dropped == 0
    assert all(len(m.content or "") < 6200 for m in msgs if m.role == "tool")
    assert report.tokens_after <= report.target


def test_whole_groups_are_dropped_from_the_middle() -> None:
    msgs = conversation(20)
    report = fit_context(msgs, context_window=2_000, reserve_tokens=200)
    assert report.messages_dropped > 0 and report.messages_dropped % 3 == 0
    assert [m.role for m in msgs[:3]] == ["system", "user", "user"]
    note = msgs[2].content or ""
    assert note.startswith(f"{CONTEXT_NOTE_PREFIX}{report.messages_dropped} earlier messages removed")
    assert note.endswith("Tools used in truncated history: read, grep")
    assert msgs[-1].content == "please continue"  # the newest group stays
    assert_valid(msgs)
    assert report.tokens_after <= report.target

    # A second squeeze updates the same note instead of stacking notes.
    msgs.extend(conversation(10)[2:])
    report2 = fit_context(msgs, context_window=2_000, reserve_tokens=200)
    notes = [m for m in msgs if (m.content or "").startswith(CONTEXT_NOTE_PREFIX)]
    assert len(notes) == 1 and msgs[2] is notes[0]
    assert f"{report.messages_dropped + report2.messages_dropped} earlier messages removed" in (notes[0].content or "")
    assert_valid(msgs)


def test_tool_definitions_count() -> None:
    msgs = conversation(1)
    spec = ToolSpec("big", "d" * 60_000, {"type": "object"})
    assert not fit_context(list(msgs), context_window=20_000, reserve_tokens=0).changed
    assert fit_context(msgs, context_window=20_000, reserve_tokens=0, tools=[spec]).changed


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as s:
        yield s


async def test_loop_requests_stay_valid_under_pressure(server: FakeOpenAIServer, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("".join(f"record {i} " * 8 + "\n" for i in range(400)))
    for i in range(12):
        server.push(reply_tool_calls([("read", {"path": "data.txt", "offset": 1 + i * 30, "limit": 30}), ("list", {})]))
    server.push(reply_text("finished"))
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        loop = AgentLoop(
            provider,
            Toolbox(BUILTIN_TOOLS, ToolContext(workdir=tmp_path.resolve())),
            system_prompt="sys",
            user_prompt="task",
            config=LoopConfig(context_window=12_000, max_output_tokens=1000),
        )
        outcome = await loop.run()
    assert outcome.success and outcome.steps == 13
    dropped_somewhere = False
    for received in server.requests:
        body: dict[str, Any] = json.loads(received.body)
        msgs = [
            Message(
                m["role"],
                m.get("content"),
                [ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in m.get("tool_calls", [])],
                m.get("tool_call_id"),
            )
            for m in body["messages"]
        ]
        assert_valid(msgs)
        assert msgs[0].role == "system" and msgs[1].content == "task"
        dropped_somewhere |= any((m.content or "").startswith(CONTEXT_NOTE_PREFIX) for m in msgs)
    assert dropped_somewhere
