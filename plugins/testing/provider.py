"""``check_provider`` and ``check_provider_error``: the model-provider contract.

Rules: ``class`` (a ``name``, built as ``cls(model, options)``),
``response`` (a :class:`CompletionResponse` whose message is the
assistant's, a known ``finish_reason``, non-negative integer usage, an int
status, lower-cased header names), ``tool-calls`` (each call has an id, names
an offered tool, and its arguments are a JSON object as text;
``finish_reason`` is ``tool_calls`` when there are calls) and ``errors``
(failures are :class:`ProviderError` subclasses of the expected class, with
an int status and lower-cased headers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelProvider,
    ProviderError,
    ToolSpec,
)
from swarmd.plugins.testing.errors import ContractViolation

__all__ = ["FINISH_REASONS", "check_provider", "check_provider_class", "check_provider_error", "sample_request"]

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "error"})

_READ_TOOL = ToolSpec(
    "read",
    "Read a file of the worktree.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def sample_request(*, with_tools: bool = True) -> CompletionRequest:
    """A small request (a system and a user message, the ``read`` tool offered)."""
    return CompletionRequest(
        messages=[Message("system", "You are a sub-agent."), Message("user", "Read README.md and summarise it.")],
        tools=[_READ_TOOL] if with_tools else [],
    )


def check_provider_class(cls: type[ModelProvider], model: str, options: Mapping[str, str] | None = None) -> ModelProvider:
    """Rule ``class``: the class has a name and is built as ``cls(model, options)``."""
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise ContractViolation(cls, "class", "a provider class needs a non-empty `name`")
    provider = cls(model, dict(options or {}))
    if provider.model != model:
        raise ContractViolation(cls, "class", f"provider.model is {provider.model!r}, not the model it was built with")
    return provider


def check_response(provider: object, request: CompletionRequest, response: object) -> CompletionResponse:
    """Rules ``response`` and ``tool-calls`` for one response."""
    if not isinstance(response, CompletionResponse):
        raise ContractViolation(provider, "response", f"complete() returned a {type(response).__name__}, not a CompletionResponse")
    if not isinstance(response.message, Message) or response.message.role != "assistant":
        raise ContractViolation(provider, "response", "response.message must be a Message with role 'assistant'")
    if response.finish_reason not in FINISH_REASONS:
        raise ContractViolation(provider, "response", f"finish_reason {response.finish_reason!r} is not one of {sorted(FINISH_REASONS)}")
    usage = response.usage
    for field in ("prompt_tokens", "completion_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens"):
        value = getattr(usage, field, None)
        if not isinstance(value, int) or value < 0:
            raise ContractViolation(provider, "response", f"usage.{field} is {value!r}, not a non-negative int")
    if not isinstance(response.status, int):
        raise ContractViolation(provider, "response", f"status is {response.status!r}, not an int")
    if any(name != name.lower() for name in response.headers):
        raise ContractViolation(provider, "response", "header names must be lower-cased")
    offered = {tool.name for tool in request.tools}
    calls = response.message.tool_calls
    for call in calls:
        if not call.id:
            raise ContractViolation(provider, "tool-calls", "a tool call has no id")
        if call.name not in offered:
            raise ContractViolation(provider, "tool-calls", f"a tool call names {call.name!r}, which was not offered")
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            raise ContractViolation(provider, "tool-calls", f"the arguments of {call.name} are not JSON: {call.arguments!r}") from None
        if not isinstance(arguments, dict):
            raise ContractViolation(provider, "tool-calls", f"the arguments of {call.name} are not a JSON object")
    if calls and response.finish_reason != "tool_calls":
        raise ContractViolation(provider, "tool-calls", f"finish_reason is {response.finish_reason!r} with tool calls; it must be 'tool_calls'")
    return response


async def check_provider(
    cls: type[ModelProvider],
    model: str,
    options: Mapping[str, str] | None = None,
    *,
    request: CompletionRequest | None = None,
    expect_tool_call: bool = False,
) -> CompletionResponse:
    """Build the provider, run one completion (``request``, default
    :func:`sample_request`) and check the answer; returns it.

    :param expect_tool_call: the answer must ask for a tool call.
    :raises ContractViolation: naming the rule broken.
    """
    request = request or sample_request()
    async with check_provider_class(cls, model, options) as provider:
        response = check_response(provider, request, await provider.complete(request))
    if expect_tool_call and not response.message.tool_calls:
        raise ContractViolation(cls, "tool-calls", "the answer asks for no tool call")
    return response


async def check_provider_error(
    cls: type[ModelProvider],
    model: str,
    options: Mapping[str, str] | None = None,
    *,
    expected: type[ProviderError],
    request: CompletionRequest | None = None,
) -> ProviderError:
    """Rule ``errors``: with this model and these options (pointing at a
    backend that fails), ``complete()`` raises ``expected``; returns it."""
    async with check_provider_class(cls, model, options) as provider:
        try:
            response = await provider.complete(request or sample_request())
        except ProviderError as exc:
            if not isinstance(exc, expected):
                raise ContractViolation(cls, "errors", f"raised {type(exc).__name__}, expected {expected.__name__}") from exc
            if not isinstance(exc.status, int) or any(k != k.lower() for k in exc.headers):
                raise ContractViolation(cls, "errors", "an error needs an int status and lower-cased header names") from exc
            return exc
        except Exception as exc:
            raise ContractViolation(cls, "errors", f"raised {type(exc).__name__}, not a ProviderError: {exc}") from exc
    raise ContractViolation(cls, "errors", f"complete() returned {type(response).__name__} instead of raising {expected.__name__}")
