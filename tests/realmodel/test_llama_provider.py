"""The ``openai`` provider and the agent loop against llama-cpp-python's server
(``--chat_format chatml-function-calling``, SmolLM2-135M, temperature 0).

These check the protocol and the error paths, not the answers: a 135M model
answers badly, but its tool calls, usage and errors are real.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from realmodel.llama_process import LlamaServer

from swarmd.plugins import (
    CompletionRequest,
    Message,
    PermanentProviderError,
    ToolContext,
    ToolSpec,
    Usage,
)
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.loop import AgentLoop, LoopConfig, OutcomeKind
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS
from swarmd.v1 import common_pb2

pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(300)]

PATH_ARG = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
TOOLS = [ToolSpec("list", "List the files in a directory", PATH_ARG), ToolSpec("read", "Read a file", PATH_ARG)]
ASK = [
    Message("system", "You are a coding agent. Use the tools."),
    Message("user", "List the files in the current directory with the list tool."),
]


def ask(*messages: Message, max_tokens: int | None = 64) -> CompletionRequest:
    return CompletionRequest(messages=list(messages or ASK), tools=TOOLS, temperature=0.0, max_tokens=max_tokens)


def provider_for(server: LlamaServer, **options: str) -> OpenAIProvider:
    return OpenAIProvider("smollm2", {"base_url": server.base_url, **options})


def wait_for_answers(server: LlamaServer, count: int, status: int | None = None) -> int:
    """The access log's count once it reaches ``count`` (it is written just after the answer)."""
    deadline = time.monotonic() + 10
    while server.requests_answered(status) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.requests_answered(status)


async def test_tools_come_back_as_tool_calls(llama_server: LlamaServer) -> None:
    async with provider_for(llama_server) as provider:
        response = await provider.complete(ask())
        # The server ignores tools unless tool_choice is sent: without it, never a tool call.
        async with provider_for(llama_server, tool_choice="omit") as without:
            plain = await without.complete(ask())
    assert response.finish_reason == "tool_calls"
    assert response.message.tool_calls, response.message
    for call in response.message.tool_calls:
        assert call.name in {"list", "read"} and call.id
        assert isinstance(json.loads(call.arguments), dict)
    assert plain.message.tool_calls == [] and plain.finish_reason != "tool_calls"


async def test_a_multi_turn_tool_conversation_is_accepted(llama_server: LlamaServer) -> None:
    async with provider_for(llama_server) as provider:
        first = await provider.complete(ask())
        [call, *_] = first.message.tool_calls
        assert first.message.content in (None, "")  # what the server itself returns next to tool calls
        conversation = [
            *ASK,
            Message("assistant", first.message.content, first.message.tool_calls[:1]),
            Message("tool", "README.md\nsrc/\n", tool_call_id=call.id, name=call.name),
        ]
        second = await provider.complete(ask(*conversation))
        assert second.status == 200 and second.usage.prompt_tokens > first.usage.prompt_tokens
        # The same conversation with the API's own null content is a 500 from this server:
        # what swarmd sent before it sent "".
        body = provider.build_body(ask(*conversation))
        assert body["messages"][2]["content"] == ""
        body["messages"][2]["content"] = None
        async with httpx.AsyncClient() as client:
            raw = await client.post(provider.url, json=body, timeout=60)
        assert raw.status_code == 500


async def test_usage_is_the_servers(llama_server: LlamaServer) -> None:
    async with provider_for(llama_server) as provider:
        request = ask()
        async with httpx.AsyncClient() as client:
            raw = await client.post(provider.url, json=provider.build_body(request), timeout=60)
        expected = raw.json()["usage"]
        response = await provider.complete(request)
    # Temperature 0: the same request gets the same answer, so the same counts.
    assert response.usage == Usage(expected["prompt_tokens"], expected["completion_tokens"], expected["total_tokens"])
    assert response.usage.prompt_tokens > 50 and response.usage.completion_tokens > 0


async def test_a_context_overflow_is_permanent_after_one_request(llama_server: LlamaServer, tmp_path: Path) -> None:
    before, before_400 = llama_server.requests_answered(), llama_server.requests_answered(400)
    events: list[common_pb2.SwarmEvent] = []
    async with provider_for(llama_server) as provider:
        loop = AgentLoop(
            provider,
            Toolbox(BUILTIN_TOOLS, ToolContext(workdir=tmp_path)),
            system_prompt="You are a coding agent.",
            user_prompt="Summarise this: " + "lorem ipsum dolor sit amet " * 1200,
            # A window far bigger than the server's, so swarmd sends the whole conversation.
            config=LoopConfig(context_window=1_000_000, temperature=0.0),
            events=EventEmitter("s", "t", events.append),
        )
        outcome = await loop.run()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert "HTTP 400" in outcome.error and "context" in outcome.error, outcome.error
    assert loop.model_retries == 0
    assert wait_for_answers(llama_server, before_400 + 1, 400) == before_400 + 1
    assert llama_server.requests_answered() == before + 1


async def test_permanent_errors_carry_the_servers_message(llama_server: LlamaServer) -> None:
    async with provider_for(llama_server) as provider:
        with pytest.raises(PermanentProviderError, match="maximum context length") as info:
            await provider.complete(ask(Message("user", "word " * 6000)))
    assert info.value.status == 400
