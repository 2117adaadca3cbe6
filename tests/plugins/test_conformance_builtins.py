"""The conformance kit (swarmd.plugins.testing) passes swarmd's built-in
executor, providers and tools."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import FakeOpenAIServer, reply_error, reply_text, reply_tool_calls

from swarmd.plugins import (
    ExecutorContext,
    PermanentProviderError,
    RateLimitError,
    TransientProviderError,
)
from swarmd.plugins.executors.local import LocalExecutor
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.providers.replay import ReplayProvider
from swarmd.plugins.testing import (
    ScriptedProvider,
    check_executor,
    check_provider,
    check_provider_error,
    check_tool,
    script,
    tool_call_reply,
)
from swarmd.plugins.tool import ToolContext


async def test_the_local_executor_passes(
    swarmd_executor_context: ExecutorContext, swarmd_request: Callable[..., Any]
) -> None:
    await check_executor(
        LocalExecutor,
        swarmd_executor_context,
        quick=swarmd_request(model="scripted/done"),
        slow=swarmd_request(model="scripted/hang", subtask_id="slow"),
    )


async def test_the_scripted_provider_passes() -> None:
    model = script("read-readme", [tool_call_reply("read", '{"path": "README.md"}')]).split("/", 1)[1]
    response = await check_provider(ScriptedProvider, model, expect_tool_call=True)
    assert response.message.tool_calls[0].name == "read"


async def test_the_openai_provider_passes() -> None:
    async with FakeOpenAIServer() as server:
        options = {"base_url": server.base_url, "api_key": "sk-test"}
        server.push(reply_text("hello"), reply_tool_calls([("read", {"path": "README.md"})]))
        await check_provider(OpenAIProvider, "gpt-test", options)
        await check_provider(OpenAIProvider, "gpt-test", options, expect_tool_call=True)
        for status, expected in ((429, RateLimitError), (503, TransientProviderError), (400, PermanentProviderError)):
            server.push(reply_error(status, "scripted failure"))
            error = await check_provider_error(OpenAIProvider, "gpt-test", {**options, "max_retries": "0"}, expected=expected)
            assert error.status == status


async def test_the_replay_provider_passes(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    cassette.write_text(json.dumps({"key": "t1", "step": 1, "content": "done"}) + "\n")
    await check_provider(ReplayProvider, str(cassette), {"subtask_id": "t1"})


VALID: dict[str, dict[str, Any]] = {
    "read": {"path": "README.md"},
    "write": {"path": "notes.txt", "content": "hi\n"},
    "edit": {"path": "README.md", "old_string": "# conformance", "new_string": "# checked"},
    "multiedit": {"edits": [{"path": "README.md", "old_string": "# conformance", "new_string": "# checked"}]},
    "list": {"path": "."},
    "glob": {"pattern": "*.md"},
    "grep": {"pattern": "conformance"},
}


@pytest.mark.parametrize("name", sorted(VALID))
async def test_the_built_in_file_tools_pass(name: str, swarmd_plugins: Any, swarmd_tool_context: ToolContext) -> None:
    await check_tool(swarmd_plugins.tools.get(name), swarmd_tool_context, valid=VALID[name])
