"""The OpenAI Chat Completions wire format, shared by every built-in provider.

The ``openai`` provider speaks it over HTTP, the ``replay`` provider reads it
from cassettes and the recorder writes it, so one module owns the mapping
between swarmd's :mod:`~swarmd.plugins.model` dataclasses and the JSON:

* :func:`request_to_openai` - a :class:`CompletionRequest` as a request body;
* :func:`response_from_openai` - a ``chat.completion`` object as a
  :class:`CompletionResponse` (malformed bodies raise
  :class:`PermanentProviderError` with a message that says what is wrong);
* :func:`response_to_openai` - the reverse, for cassettes;
* :func:`request_digest` - a structural fingerprint of a request that is
  stable across runs (see its docstring).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    Message,
    PermanentProviderError,
    ToolCall,
    Usage,
)

__all__ = [
    "FINISH_REASONS",
    "message_to_openai",
    "request_digest",
    "request_to_openai",
    "response_from_openai",
    "response_to_openai",
    "tool_call_from_openai",
    "usage_from_openai",
    "usage_to_openai",
]

#: Finish reasons swarmd passes on; anything else is kept verbatim.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "error")


def message_to_openai(message: Message) -> dict[str, Any]:
    """One chat message as the Chat Completions API expects it."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content or ""}
    out: dict[str, Any] = {"role": message.role}
    if message.role == "assistant" and message.tool_calls:
        # The API itself returns ``null`` here, but strict servers (llama.cpp's
        # among them) answer 500 to null or a missing key; ``""`` is accepted everywhere.
        out["content"] = message.content or ""
        out["tool_calls"] = [
            {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
            for tc in message.tool_calls
        ]
    else:
        out["content"] = message.content or ""
    return out


def request_to_openai(request: CompletionRequest, model: str, *, tool_choice: Any = "auto") -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` (non-streaming).

    ``tool_choice`` goes along whenever tools are offered (``None``: never):
    some servers ignore ``tools`` without it (llama.cpp's function-calling
    chat formats). ``max_tokens`` only when the request sets it.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_to_openai(m) for m in request.messages],
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
            }
            for t in request.tools
        ]
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    return body


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def usage_from_openai(data: Any) -> Usage:
    """Token counts from a ``usage`` object; unknown or missing fields count 0.

    Prompt-cache figures come in several dialects: OpenAI's
    ``prompt_tokens_details.cached_tokens``, DeepSeek's
    ``prompt_cache_hit_tokens`` and the Anthropic-style
    ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` that some
    gateways pass through.
    """
    if not isinstance(data, Mapping):
        return Usage()
    prompt = _int(data.get("prompt_tokens"))
    completion = _int(data.get("completion_tokens"))
    total = _int(data.get("total_tokens")) or prompt + completion
    details = data.get("prompt_tokens_details")
    cache_read = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cache_read = cache_read or _int(data.get("prompt_cache_hit_tokens")) or _int(data.get("cache_read_input_tokens"))
    cache_write = _int(data.get("cache_creation_input_tokens"))
    return Usage(prompt, completion, total, cache_read, cache_write)


def usage_to_openai(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        out["cache_creation_input_tokens"] = usage.cache_write_tokens
    return out


def _content_text(content: Any) -> str | None:
    """Message content as text: a string, null, or a list of content parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    raise ValueError(f"message content has type {type(content).__name__}")


def tool_call_from_openai(data: Any, fallback_id: str) -> ToolCall:
    """One ``tool_calls`` entry; ``arguments`` given as an object is re-encoded."""
    if not isinstance(data, Mapping):
        raise ValueError("a tool call is not an object")
    function = data.get("function")
    if not isinstance(function, Mapping):
        raise ValueError("a tool call has no 'function' object")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a tool call has no function name")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        # Some servers (Ollama among them) send the arguments as an object.
        arguments = json.dumps(arguments)
    call_id = data.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = fallback_id
    return ToolCall(id=call_id, name=name, arguments=arguments)


def response_from_openai(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None, source: str = "response"
) -> CompletionResponse:
    """Parse a ``chat.completion`` object.

    :raises PermanentProviderError: when the object has no usable choice,
        naming what is missing (``source`` says where the object came from).
    """
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}

    def bad(why: str) -> PermanentProviderError:
        return PermanentProviderError(f"malformed chat completion in {source}: {why}", status=status, headers=hdrs)

    if not isinstance(data, Mapping):
        raise bad(f"expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise bad("no 'choices'")
    choice = choices[0]
    if not isinstance(choice, Mapping) or not isinstance(choice.get("message"), Mapping):
        raise bad("choices[0] has no 'message' object")
    raw = choice["message"]
    try:
        content = _content_text(raw.get("content"))
        raw_calls = raw.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise ValueError("'tool_calls' is not a list")
        calls = [tool_call_from_openai(tc, f"call_{i}") for i, tc in enumerate(raw_calls)]
        legacy = raw.get("function_call")
        if not calls and isinstance(legacy, Mapping):
            calls = [tool_call_from_openai({"function": legacy}, "call_0")]
    except ValueError as exc:
        raise bad(str(exc)) from None
    finish = choice.get("finish_reason")
    if not isinstance(finish, str) or not finish:
        finish = "tool_calls" if calls else "stop"
    return CompletionResponse(
        message=Message(role="assistant", content=content, tool_calls=calls),
        finish_reason=finish,
        usage=usage_from_openai(data.get("usage")),
        status=status,
        headers=hdrs,
    )


def response_to_openai(response: CompletionResponse, model: str, response_id: str = "") -> dict[str, Any]:
    """A :class:`CompletionResponse` as a ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": response.message.content}
    if response.message.tool_calls:
        message["tool_calls"] = [
            {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
            for tc in response.message.tool_calls
        ]
    return {
        "id": response_id or "chatcmpl-swarmd",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": response.finish_reason}],
        "usage": usage_to_openai(response.usage),
    }


def request_digest(request: CompletionRequest) -> str:
    """A fingerprint of the *shape* of a request, stable across runs.

    Only structure goes in: the number of messages, each message's role and
    the names of the tools its tool calls invoke, and the names of the tools
    offered. Text never does, because prompts and tool results contain
    worktree paths, timestamps and ids that change from run to run; a
    replayed conversation that takes a different turn (another tool, an
    extra message) still changes the digest.
    """
    shape = {
        "n": len(request.messages),
        "messages": [[m.role, [tc.name for tc in m.tool_calls]] for m in request.messages],
        "tools": sorted(t.name for t in request.tools),
    }
    encoded = json.dumps(shape, separators=(",", ":"), sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()[:32]
