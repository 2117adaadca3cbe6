"""A scripted model provider for orchestrator tests: it stands for the planner
model, playing replies a test sets with :meth:`ScriptedProvider.script`."""

from __future__ import annotations

from typing import Any

from swarmd.plugins import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelProvider,
    ProviderError,
    Usage,
    hookimpl,
)

__all__ = ["ScriptedProvider", "ScriptedProviderPlugin"]


class ScriptedProvider(ModelProvider):
    """Plays :attr:`replies` in order: a string answers, an exception raises,
    an async function is awaited for the reply (a slow model)."""

    name = "scripted"
    description = "scripted replies for tests"
    replies: list[Any] = []
    requests: list[CompletionRequest] = []
    closed = 0

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        type(self).requests.append(request)
        if not type(self).replies:
            raise ProviderError("no scripted reply left")
        reply = type(self).replies.pop(0)
        if callable(reply):
            reply = await reply()
        if isinstance(reply, BaseException):
            raise reply
        return CompletionResponse(
            message=Message("assistant", reply),
            usage=Usage(prompt_tokens=100, completion_tokens=50, total_tokens=150),
        )

    async def aclose(self) -> None:
        type(self).closed += 1

    @classmethod
    def script(cls, *replies: Any) -> None:
        cls.replies = list(replies)
        cls.requests = []
        cls.closed = 0


class ScriptedProviderPlugin:
    @hookimpl
    def swarmd_register_providers(self, registry: Any) -> None:
        registry.add(ScriptedProvider)
