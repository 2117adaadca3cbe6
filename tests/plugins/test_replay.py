"""The replay provider, record mode and the provider factory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.fake_openai_server import FakeOpenAIServer, completion, reply_text, reply_tool_calls

import swarmd.plugins.providers.openai as openai_mod
import swarmd.plugins.providers.replay as replay_mod
from swarmd.plugins import (
    CompletionRequest,
    Message,
    PermanentProviderError,
    ToolCall,
    ToolSpec,
)
from swarmd.plugins.manager import Plugins, load_plugins
from swarmd.plugins.providers import UnknownProviderError, create_provider
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.providers.recording import RecordingProvider
from swarmd.plugins.providers.replay import ReplayProvider
from swarmd.plugins.providers.wire import request_digest

BLOCK = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}
TOOLS = [ToolSpec("write", "w", {"type": "object"}), ToolSpec("read", "r", {"type": "object"})]


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins([openai_mod, replay_mod], env=BLOCK)


def write_cassette(path: Path, *lines: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def req(*extra: Message) -> CompletionRequest:
    return CompletionRequest([Message("system", "s"), Message("user", "u"), *extra], tools=TOOLS)


async def test_hand_written_short_form(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "c.jsonl",
        {"key": "writer", "step": 1, "content": "Writing.", "tool_calls": [{"name": "write", "arguments": {"path": "a"}}]},
        {"key": "writer", "step": 2, "content": "Done.", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
        {"key": "other", "step": 1, "content": "not mine"},
    )
    provider = ReplayProvider(str(cassette), {"subtask_id": "id-123", "subtask_name": "writer"})
    first = await provider.complete(req())
    assert first.message.content == "Writing." and first.finish_reason == "tool_calls"
    assert first.message.tool_calls == [ToolCall("call_1_0", "write", '{"path": "a"}')]
    second = await provider.complete(req())
    assert second.message.content == "Done." and second.finish_reason == "stop"
    assert (second.usage.prompt_tokens, second.usage.total_tokens) == (5, 6)
    with pytest.raises(PermanentProviderError, match=r"exhausted: key 'writer' has no step 3 \(it records 2 steps\)"):
        await provider.complete(req())
    # A new instance (a retry) starts again from step 1.
    again = ReplayProvider(str(cassette), {"subtask_id": "id-123", "subtask_name": "writer"})
    assert (await again.complete(req())).message.content == "Writing."
    assert again.rate_limit_key() == ("replay", "", str(cassette), "")


async def test_id_wins_over_name_and_key_overrides(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "c.jsonl",
        {"key": "t-1", "step": 1, "content": "by id"},
        {"key": "writer", "step": 1, "content": "by name"},
        {"key": "orchestrator", "step": 1, "content": "[]"},
    )
    by_id = ReplayProvider(str(cassette), {"subtask_id": "t-1", "subtask_name": "writer"})
    assert (await by_id.complete(req())).message.content == "by id"
    by_key = ReplayProvider(str(cassette), {"subtask_id": "t-1", "key": "orchestrator"})
    assert (await by_key.complete(req())).message.content == "[]"
    missing = ReplayProvider(str(cassette), {"subtask_id": "t-9", "subtask_name": "reader"})
    with pytest.raises(PermanentProviderError, match="no entries for key 't-9' or 'reader'.*orchestrator, t-1, writer"):
        await missing.complete(req())


async def test_full_form_and_divergence(tmp_path: Path) -> None:
    good = request_digest(req())
    cassette = write_cassette(
        tmp_path / "c.jsonl",
        {"key": "k", "step": 1, "response": completion("ok"), "request_digest": good},
        {"key": "k", "step": 2, "response": completion("next"), "request_digest": "sha256:0000"},
    )
    provider = ReplayProvider(str(cassette), {"subtask_id": "k"})
    assert (await provider.complete(req())).message.content == "ok"
    with pytest.raises(PermanentProviderError, match=r"diverged at key 'k' step 2 \(line 2\)"):
        await provider.complete(req(Message("assistant", "x")))


def test_digest_is_structural() -> None:
    a = req(Message("assistant", None, [ToolCall("c1", "write", '{"path": "/tmp/wt-1/a"}')]), Message("tool", "ok", tool_call_id="c1"))
    b = req(Message("assistant", None, [ToolCall("zz", "write", '{"path": "/other/wt-2/a"}')]), Message("tool", "different", tool_call_id="zz"))
    assert request_digest(a) == request_digest(b)
    c = req(Message("assistant", None, [ToolCall("c1", "read", "{}")]), Message("tool", "ok", tool_call_id="c1"))
    assert request_digest(a) != request_digest(c)
    assert request_digest(req()) != request_digest(CompletionRequest(req().messages, tools=TOOLS[:1]))


@pytest.mark.parametrize(
    "content,error",
    [
        ("not json\n", "invalid JSON"),
        ('{"step": 1, "content": "x"}\n', "'key' must be a non-empty string"),
        ('{"key": "k", "step": 0, "content": "x"}\n', "'step' must be an integer >= 1"),
        ('{"key": "k", "step": 2, "content": "x"}\n', "key 'k' has no step 1"),
        ('{"key": "k", "step": 1, "response": {"choices": []}}\n', "no 'choices'"),
        ('{"key": "k", "step": 1, "tool_calls": [{"arguments": {}}]}\n', "tool_calls\\[0\\] needs a 'name'"),
    ],
)
def test_bad_cassettes_name_the_line(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("# comment\n\n" + content)
    with pytest.raises(PermanentProviderError, match=error):
        ReplayProvider(str(path), {"subtask_id": "k"})


def test_missing_cassette_and_relative_paths(tmp_path: Path) -> None:
    with pytest.raises(PermanentProviderError, match="does not exist"):
        ReplayProvider(str(tmp_path / "nope.jsonl"), {})
    write_cassette(tmp_path / "rel.jsonl", {"key": "k", "step": 1, "content": "x"})
    provider = ReplayProvider("rel.jsonl", {"subtask_id": "k", "cassette_dir": str(tmp_path)})
    assert provider.key == "k"


def test_factory(plugins: Plugins, tmp_path: Path) -> None:
    cassette = write_cassette(tmp_path / "c.jsonl", {"key": "orchestrator", "step": 1, "content": "plan"})
    provider = create_provider(plugins, f"replay/{cassette}", key="orchestrator")
    assert isinstance(provider, ReplayProvider) and provider.key == "orchestrator"
    named = create_provider(plugins, f"replay/{cassette}", key="t1", subtask_name="orchestrator")
    assert isinstance(named, ReplayProvider) and named.key == "orchestrator"
    oa = create_provider(plugins, "openai/gpt-4o", key="t1", options={"base_url": "http://x/v1"})
    assert isinstance(oa, OpenAIProvider) and oa.model == "gpt-4o" and oa.base_url == "http://x/v1"
    nested = create_provider(plugins, "openai/openai/gpt-5", key="t1")
    assert nested.model == "openai/gpt-5"
    with pytest.raises(UnknownProviderError, match=r"unknown model provider 'anthropic'.*available providers: openai, replay"):
        create_provider(plugins, "anthropic/claude", key="t1")
    with pytest.raises(UnknownProviderError, match="names no provider; write provider/model, e.g. openai/gpt-4o"):
        create_provider(plugins, "gpt-4o", key="t1")
    with pytest.raises(UnknownProviderError, match="no model given"):
        create_provider(plugins, "  ", key="t1")
    recorder = create_provider(plugins, "openai/m", key="t1", record_path=str(tmp_path / "rec" / "out.jsonl"))
    assert isinstance(recorder, RecordingProvider) and recorder.key == "t1"
    assert recorder.rate_limit_key() == recorder.inner.rate_limit_key()


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as s:
        yield s


async def test_record_then_replay_gives_the_same_responses(
    plugins: Plugins, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl"
    server.push(
        reply_tool_calls([("write", {"path": "a.txt", "content": "x"})], content="Writing", usage=(10, 3), cached_tokens=4),
        reply_text("All done", usage=(20, 2)),
    )
    conversation = [req(), req(Message("assistant", None, [ToolCall("call_0", "write", "{}")]), Message("tool", "ok", tool_call_id="call_0"))]
    recorder = create_provider(plugins, "openai/m", key="t1", options={"base_url": server.base_url}, record_path=str(path))
    recorded = [await recorder.complete(r) for r in conversation]
    await recorder.aclose()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["key"], line["step"]) for line in lines] == [("t1", 1), ("t1", 2)]
    assert lines[0]["response"]["object"] == "chat.completion"
    assert lines[0]["request_digest"] == request_digest(conversation[0])

    replayer = create_provider(plugins, f"replay/{path}", key="t1")
    replayed = [await replayer.complete(r) for r in conversation]
    for a, b in zip(recorded, replayed, strict=True):
        assert (a.message, a.finish_reason, a.usage) == (b.message, b.finish_reason, b.usage)
    # Replaying a different conversation is caught.
    diverging = create_provider(plugins, f"replay/{path}", key="t1")
    with pytest.raises(PermanentProviderError, match="diverged"):
        await diverging.complete(req(Message("user", "extra")))


async def test_concurrent_recorders_write_whole_lines(plugins: Plugins, server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    big = "x" * 20_000
    server.fallback = lambda _body: reply_text(big)
    recorders = [
        create_provider(plugins, "openai/m", key=f"t{i}", options={"base_url": server.base_url}, record_path=str(path))
        for i in range(6)
    ]

    async def run(p: object) -> None:
        for _ in range(3):
            await p.complete(req())  # type: ignore[attr-defined]

    await asyncio.gather(*(run(r) for r in recorders))
    for r in recorders:
        await r.aclose()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 18
    assert sorted((line["key"], line["step"]) for line in lines) == sorted((f"t{i}", s) for i in range(6) for s in (1, 2, 3))
