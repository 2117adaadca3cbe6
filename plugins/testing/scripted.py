"""A scripted model provider for testing plugins without a model server.

``scripted/NAME`` plays the responses stored under ``NAME`` with
:func:`script`, one per call, in order; past the end it answers ``"done"``.
Two names are built in: ``scripted/done`` answers ``"done"`` at once, and
``scripted/hang`` never answers (until the call is cancelled), for testing
cancellation. Register it with :data:`scripted_plugin`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from swarmd.plugins import hookimpl
from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelProvider,
    ToolCall,
    Usage,
)

__all__ = ["ScriptedProvider", "script", "scripted_plugin", "text_reply", "tool_call_reply"]

_counter = itertools.count(1)


def text_reply(text: str) -> CompletionResponse:
    """A final answer with no tool calls."""
    return CompletionResponse(Message("assistant", text), "stop", Usage(10, 5, 15))


def tool_call_reply(name: str, arguments: str) -> CompletionResponse:
    """An answer asking for one tool call (``arguments``: a JSON object as text)."""
    call = ToolCall(f"call-{next(_counter)}", name, arguments)
    return CompletionResponse(Message("assistant", None, [call]), "tool_calls", Usage(10, 5, 15))


class ScriptedProvider(ModelProvider):
    """Plays scripted responses (``scripted/NAME``); see the module docstring."""

    name = "scripted"
    description = "plays scripted responses (swarmd.plugins.testing)"
    #: Scripts by name; :func:`script` fills it.
    scripts: ClassVar[dict[str, list[CompletionResponse]]] = {}
    #: Every request each scripted model received, by model name.
    requests: ClassVar[dict[str, list[CompletionRequest]]] = {}

    def __init__(self, model: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(model, options)
        self._step = 0

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.setdefault(self.model, []).append(request)
        if self.model == "hang":
            await asyncio.Event().wait()
        steps = self.scripts.get(self.model, [])
        self._step += 1
        if self._step <= len(steps):
            return steps[self._step - 1]
        return text_reply("done")


def script(name: str, responses: Sequence[CompletionResponse]) -> str:
    """Store ``responses`` under ``name``; returns the model string ``scripted/NAME``."""
    ScriptedProvider.scripts[name] = list(responses)
    ScriptedProvider.requests.pop(name, None)
    return f"scripted/{name}"


class _ScriptedPlugin:
    """The pluggy plugin that registers :class:`ScriptedProvider`."""

    @hookimpl
    def swarmd_register_providers(self, registry: Any) -> None:
        registry.add(ScriptedProvider)


#: Pass to ``load_plugins([scripted_plugin])`` to make ``scripted/...`` models available.
scripted_plugin = _ScriptedPlugin()
