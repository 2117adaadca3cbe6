"""Example model-provider plugin: ``echo/ANY`` answers without a model server.

When the orchestrator plans (option ``subtask_id`` is ``"orchestrator"``)
it answers a one-subtask plan; a sub-agent gets one ``list`` tool call
first, then a final answer echoing its instruction. Load it with
``SWARMD_PLUGINS=swarmd_example_provider``; run
``swarmd run "say hello" --model echo/any``.
"""

from __future__ import annotations

import json

from swarmd.plugins import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelProvider,
    PermanentProviderError,
    ToolCall,
    Usage,
    hookimpl,
)


class EchoProvider(ModelProvider):
    """Plans one subtask, lists the worktree once, then echoes the instruction."""

    name = "echo"
    description = "answers from the request itself (an example plugin)"

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        if not request.messages:
            raise PermanentProviderError("no messages to answer", status=400)
        usage = Usage(prompt_tokens=len(request.messages), completion_tokens=1, total_tokens=len(request.messages) + 1)
        last_user = next((m.content or "" for m in reversed(request.messages) if m.role == "user"), "")
        if self.options.get("subtask_id") == "orchestrator":
            plan = {"subtasks": [{"id": "echo", "name": "Echo", "instruction": last_user or "echo"}]}
            return CompletionResponse(Message("assistant", json.dumps(plan)), "stop", usage)
        offered = {tool.name for tool in request.tools}
        used_a_tool = any(m.role == "tool" for m in request.messages)
        if "list" in offered and not used_a_tool:
            call = ToolCall(id="call-1", name="list", arguments=json.dumps({"path": "."}))
            return CompletionResponse(Message("assistant", None, [call]), "tool_calls", usage)
        return CompletionResponse(Message("assistant", f"echo: {last_user}"), "stop", usage)


@hookimpl
def swarmd_register_providers(registry: object) -> None:
    registry.add(EchoProvider)  # type: ignore[attr-defined]
