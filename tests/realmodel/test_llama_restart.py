"""A llama-cpp-python server killed in the middle of a call, and started again.

Each test has its own server (the session's shared one stays up). The calls
are made long (a prompt of a few thousand tokens) so that the kill lands while
the server is working on them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from realmodel.llama_process import LlamaServer

from swarmd.plugins import (
    CompletionRequest,
    Message,
    ProviderTimeoutError,
    ToolContext,
    TransientProviderError,
)
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.loop import AgentLoop, LoopConfig, OutcomeKind
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS

pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(300)]

LONG_TEXT = "Summarise this text in one word. " + "the quick brown fox jumps over the lazy dog " * 120


async def kill_when_busy(server: LlamaServer, call: asyncio.Task[object]) -> None:
    """Kill the server once ``call`` has been under way for a moment (and is not done)."""
    await asyncio.sleep(0.3)
    assert not call.done(), "the call finished before the kill; make it longer"
    await asyncio.to_thread(server.kill)


async def test_a_killed_server_is_a_clear_transient_error_and_recovery_follows(own_llama_server: LlamaServer) -> None:
    server = own_llama_server
    request = CompletionRequest(messages=[Message("user", LONG_TEXT)], temperature=0.0, max_tokens=8)
    async with OpenAIProvider("smollm2", {"base_url": server.base_url}) as provider:
        call = asyncio.ensure_future(provider.complete(request))
        await kill_when_busy(server, call)
        with pytest.raises(TransientProviderError) as died:
            await call
        assert not isinstance(died.value, ProviderTimeoutError)
        assert server.base_url in str(died.value) and "closed the connection" in str(died.value), died.value

        # Down: connection refused, transient too.
        with pytest.raises(TransientProviderError, match="cannot reach"):
            await provider.complete(request)

        # Back on the same port: the same provider (and its pooled client) works again.
        await asyncio.to_thread(server.start, server.port)
        response = await provider.complete(request)
    assert response.status == 200 and response.usage.prompt_tokens > 500


async def test_a_sub_agent_rides_out_a_restart_with_the_default_retries(
    own_llama_server: LlamaServer, tmp_path: Path
) -> None:
    server = own_llama_server
    async with OpenAIProvider("smollm2", {"base_url": server.base_url, "tool_choice": "none"}) as provider:
        loop = AgentLoop(
            provider,
            Toolbox(BUILTIN_TOOLS, ToolContext(workdir=tmp_path)),
            system_prompt="You are a helpful assistant.",
            user_prompt=LONG_TEXT,
            # One step, cut at 8 tokens: the test is about that step's model call surviving.
            config=LoopConfig(temperature=0.0, max_output_tokens=8, context_window=100_000, max_steps=1),
            events=EventEmitter("s", "t", None),
        )
        run = asyncio.ensure_future(loop.run())
        await kill_when_busy(server, run)
        await asyncio.to_thread(server.start, server.port)
        outcome = await run
    # The step's call was answered after the restart (then the step limit ends the loop).
    assert outcome.kind is OutcomeKind.MAX_STEPS, outcome.error
    assert outcome.steps == 1 and outcome.output and loop.model_retries >= 1
    assert server.requests_answered(200) == 1
