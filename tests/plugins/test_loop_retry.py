"""In-place retries of failed model calls, through the real ``openai``
provider and a fake OpenAI server on loopback.

A transient failure (5xx, connection refused) is retried by the sub-agent
itself, so nothing it did is lost; a server error repeated word for word is
permanent after one repeat; a timeout is not repeated in place. The delays
are scaled down here (``model_retry_base_secs``); the default schedule is
checked on its own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import (
    FakeOpenAIServer,
    Reply,
    reply_error,
    reply_text,
    reply_tool_calls,
)

from swarmd.plugins import ToolContext
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.loop import AgentLoop, LoopConfig, OutcomeKind
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS
from swarmd.v1 import common_pb2

FAST = {"model_retry_base_secs": 0.01, "model_retry_max_secs": 0.05}


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as s:
        yield s


def make_loop(provider: OpenAIProvider, workdir: Path, **cfg: Any) -> AgentLoop:
    return AgentLoop(
        provider,
        Toolbox(BUILTIN_TOOLS, ToolContext(workdir=workdir)),
        system_prompt="You are a test agent.",
        user_prompt="Complete this task:\n\nlist the files",
        config=LoopConfig(**{**FAST, **cfg}),
        events=EventEmitter("swarm-1", "task-1", None),
    )


async def test_a_transient_failure_is_retried_in_place_keeping_progress(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.push(
        reply_tool_calls([("list", {})], content="Looking first."),
        reply_error(503, "loading model"),
        reply_error(502, "bad gateway"),
        reply_text("done"),
    )
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        loop = make_loop(provider, tmp_path)
        outcome = await loop.run()
    assert outcome.kind is OutcomeKind.COMPLETED, outcome.error
    assert loop.model_retries == 2
    # One step per answered call: the retries are not steps, and the first tool call was not redone.
    assert outcome.steps == 2 and outcome.tool_calls == 1
    assert server.completions == 4
    # The retried request is the same conversation, tool result included.
    assert server.requests[3].json["messages"] == server.requests[1].json["messages"]


async def test_a_restarting_server_is_waited_for(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """Connection refused while the server is down, then it is back on the same port."""
    port = server.port
    await server.stop()
    server.push(reply_text("back"))

    async def come_back() -> None:
        await asyncio.sleep(0.5)
        await server.start(port)

    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        loop = make_loop(provider, tmp_path, model_retry_base_secs=0.1, model_retry_max_secs=0.4, model_retries=10)
        back = asyncio.create_task(come_back())
        try:
            outcome = await loop.run()
        finally:
            await back
    assert outcome.kind is OutcomeKind.COMPLETED, outcome.error
    assert loop.model_retries >= 1 and server.completions == 1


async def test_an_identical_500_is_permanent_after_one_repeat(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.fallback = lambda _body: reply_error(500, "Internal Server Error: 'NoneType' object is not iterable")
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        loop = make_loop(provider, tmp_path)
        outcome = await loop.run()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert "deterministic server error" in outcome.error and "NoneType" in outcome.error
    assert server.completions == 2 and loop.model_retries == 1


async def test_a_500_whose_body_changes_stays_transient(server: FakeOpenAIServer, tmp_path: Path) -> None:
    counter = iter(range(1000))
    server.fallback = lambda _body: reply_error(500, f"worker {next(counter)} crashed")
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        loop = make_loop(provider, tmp_path, model_retries=3)
        outcome = await loop.run()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    assert "still failing after 3 retries" in outcome.error
    assert server.completions == 4


async def test_repeated_503s_stay_transient(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.fallback = lambda _body: reply_error(503, "overloaded")
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        loop = make_loop(provider, tmp_path, model_retries=2)
        outcome = await loop.run()
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    assert server.completions == 3


async def test_a_timeout_is_not_repeated_in_place(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.push(Reply(body=b"{}", delay=3), reply_text("too late to matter"))
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        outcome = await make_loop(provider, tmp_path, call_timeout_secs=0.3).run()
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    assert "timed out after 0.3s" in outcome.error
    assert server.completions == 1


async def test_no_max_tokens_is_sent_unless_set(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.push(reply_text("one"), reply_text("two"))
    async with OpenAIProvider("m", {"base_url": server.base_url}) as provider:
        await make_loop(provider, tmp_path).run()
        await make_loop(provider, tmp_path, max_output_tokens=300).run()
    assert "max_tokens" not in server.requests[0].json
    assert server.requests[1].json["max_tokens"] == 300


def test_default_schedule_outlasts_a_server_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """0.5, 1, 2, 4, 8 s less up to a quarter: at least 11 s in all (a restart takes 3 to 9 s),
    at most 15.5 s, and the first retry within half a second."""
    cfg = LoopConfig()
    monkeypatch.setattr(random, "uniform", lambda a, b: a)
    low = [cfg.model_retry_delay(n) for n in range(cfg.model_retries)]
    monkeypatch.setattr(random, "uniform", lambda a, b: b)
    high = [cfg.model_retry_delay(n) for n in range(cfg.model_retries)]
    assert high == [0.5, 1, 2, 4, 8]
    assert sum(low) >= 11 and sum(high) <= 15.5 and high[0] <= 0.5
