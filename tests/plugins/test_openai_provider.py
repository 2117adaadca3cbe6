"""The ``openai`` provider against a real HTTP server on loopback."""

from __future__ import annotations

import email.utils
import hashlib
import json
import time

import pytest
from fakes.fake_openai_server import (
    FakeOpenAIServer,
    Reply,
    completion,
    reply_error,
    reply_raw,
    reply_text,
    reply_tool_calls,
)

from swarmd.plugins import (
    CompletionRequest,
    Message,
    PermanentProviderError,
    RateLimitError,
    ToolCall,
    ToolSpec,
    TransientProviderError,
)
from swarmd.plugins.providers.openai import OpenAIProvider, parse_retry_after

TOOLS = [ToolSpec("read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})]


def request(*messages: Message, tools: list[ToolSpec] | None = None) -> CompletionRequest:
    msgs = list(messages) or [Message("system", "sys"), Message("user", "hi")]
    return CompletionRequest(messages=msgs, tools=TOOLS if tools is None else tools, max_tokens=64)


@pytest.fixture
async def server():  # type: ignore[no-untyped-def]
    async with FakeOpenAIServer() as s:
        yield s


@pytest.fixture
async def provider(server: FakeOpenAIServer):  # type: ignore[no-untyped-def]
    async with OpenAIProvider("gpt-test", {"base_url": server.base_url, "api_key": "sk-test"}) as p:
        yield p


async def test_text_reply_usage_headers_and_request_body(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(
        reply_text(
            "hello",
            usage=(120, 7),
            cached_tokens=100,
            headers={"X-RateLimit-Remaining-Requests": "99", "X-RateLimit-Reset-Tokens": "6m0s"},
        )
    )
    resp = await provider.complete(request())
    assert resp.message.role == "assistant" and resp.message.content == "hello"
    assert resp.finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (120, 7, 127)
    assert resp.usage.cache_read_tokens == 100
    assert resp.status == 200
    assert resp.headers["x-ratelimit-remaining-requests"] == "99"
    assert resp.headers["x-ratelimit-reset-tokens"] == "6m0s"

    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    body = sent.json
    assert body["model"] == "gpt-test"
    assert body["max_tokens"] == 64
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    assert body["tools"][0] == {
        "type": "function",
        "function": {"name": "read", "description": "Read a file", "parameters": TOOLS[0].parameters},
    }


async def test_tool_calls_round_trip(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_tool_calls([("read", {"path": "a.py"}), ("read", {"path": "b.py"})], content="looking"))
    resp = await provider.complete(request())
    assert resp.finish_reason == "tool_calls"
    assert resp.message.content == "looking"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in resp.message.tool_calls] == [
        ("call_0", "read", {"path": "a.py"}),
        ("call_1", "read", {"path": "b.py"}),
    ]
    # The assistant message and tool results go back in the next request as the API expects.
    server.push(reply_text("done"))
    await provider.complete(
        request(
            Message("user", "hi"),
            resp.message,
            Message("tool", "contents", tool_call_id="call_0", name="read"),
        )
    )
    msgs = server.requests[1].json["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "content": "looking",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.py"}'}},
            {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": '{"path": "b.py"}'}},
        ],
    }
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_0", "content": "contents"}


async def test_stop_with_tool_calls_keeps_the_calls(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_tool_calls([("read", {"path": "x"})], finish_reason="stop"))
    resp = await provider.complete(request())
    assert resp.finish_reason == "stop"
    assert [c.name for c in resp.message.tool_calls] == ["read"]


async def test_arguments_as_object_and_missing_ids_are_normalised(
    server: FakeOpenAIServer, provider: OpenAIProvider
) -> None:
    body = completion(None)
    body["choices"][0]["message"]["tool_calls"] = [{"function": {"name": "read", "arguments": {"path": "p"}}}]
    body["choices"][0]["finish_reason"] = None
    server.push(reply_raw(json.dumps(body)))
    resp = await provider.complete(request())
    assert resp.message.tool_calls == [ToolCall("call_0", "read", '{"path": "p"}')]
    assert resp.finish_reason == "tool_calls"


async def test_429_is_a_rate_limit_error_with_retry_after_seconds(
    server: FakeOpenAIServer, provider: OpenAIProvider
) -> None:
    server.push(
        reply_error(
            429,
            "Rate limit reached for requests",
            headers={"Retry-After": "2", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"},
        )
    )
    with pytest.raises(RateLimitError) as info:
        await provider.complete(request())
    err = info.value
    assert err.status == 429 and err.retry_after == 2.0
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.headers["retry-after"] == "2"
    assert "Rate limit reached" in err.message


async def test_429_with_an_http_date(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.push(reply_error(429, "later", headers={"Retry-After": when}))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(request())
    assert info.value.retry_after is not None and 25 <= info.value.retry_after <= 31


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "0.5"}) == 0.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_server_errors_are_transient(server: FakeOpenAIServer, provider: OpenAIProvider, status: int) -> None:
    server.push(reply_error(status, "upstream is overloaded", headers={"x-request-id": "r1"}))
    with pytest.raises(TransientProviderError) as info:
        await provider.complete(request())
    assert info.value.status == status
    assert info.value.headers["x-request-id"] == "r1"
    assert "overloaded" in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_4xx_are_permanent_with_the_server_message(
    server: FakeOpenAIServer, provider: OpenAIProvider, status: int
) -> None:
    server.push(reply_error(status, "Invalid value for 'tools'"))
    with pytest.raises(PermanentProviderError) as info:
        await provider.complete(request())
    assert info.value.status == status
    assert "Invalid value for 'tools'" in str(info.value)


async def test_malformed_json_is_permanent(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_raw("<html>gateway</html>", headers={"content-type": "text/html"}))
    with pytest.raises(PermanentProviderError, match="malformed JSON") as info:
        await provider.complete(request())
    assert info.value.status == 200


@pytest.mark.parametrize(
    "body,why",
    [
        ({"object": "chat.completion"}, "no 'choices'"),
        ({"choices": []}, "no 'choices'"),
        ({"choices": [{"index": 0}]}, "no 'message'"),
        ([1, 2], "expected a JSON object"),
        ({"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}, "no function name"),
    ],
)
async def test_missing_choices_is_permanent(
    server: FakeOpenAIServer, provider: OpenAIProvider, body: object, why: str
) -> None:
    server.push(reply_raw(json.dumps(body)))
    with pytest.raises(PermanentProviderError, match="malformed chat completion") as info:
        await provider.complete(request())
    assert why in str(info.value)


async def test_error_object_in_a_200(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_raw(json.dumps({"error": {"message": "upstream down", "code": 502}})))
    with pytest.raises(TransientProviderError, match="upstream down"):
        await provider.complete(request())
    server.push(reply_raw(json.dumps({"error": {"message": "no such model", "code": "model_not_found"}})))
    with pytest.raises(PermanentProviderError, match="no such model"):
        await provider.complete(request())


async def test_slow_response_times_out_as_transient(server: FakeOpenAIServer) -> None:
    server.push(Reply(body=json.dumps(completion("late")).encode(), delay=2.0))
    async with OpenAIProvider("m", {"base_url": server.base_url, "timeout": "0.2"}) as p:
        started = time.monotonic()
        with pytest.raises(TransientProviderError, match="timed out"):
            await p.complete(request())
        assert time.monotonic() - started < 1.5


async def test_slow_but_in_time_succeeds(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_text("eventually", delay=0.2))
    resp = await provider.complete(request())
    assert resp.message.content == "eventually"


async def test_connection_refused_and_dropped_are_transient(server: FakeOpenAIServer) -> None:
    server.push(Reply(drop=True))
    async with OpenAIProvider("m", {"base_url": server.base_url}) as p:
        with pytest.raises(TransientProviderError, match="closed the connection before answering"):
            await p.complete(request())
    dead = FakeOpenAIServer()
    await dead.start()
    url = dead.base_url
    await dead.stop()
    async with OpenAIProvider("m", {"base_url": url}) as p:
        with pytest.raises(TransientProviderError, match="cannot reach") as info:
            await p.complete(request())
        assert info.value.status == 0 and info.value.headers == {}


async def test_bad_base_url_is_permanent() -> None:
    async with OpenAIProvider("m", {"base_url": "ftp://example.invalid/v1"}) as p:
        with pytest.raises(PermanentProviderError, match="bad base URL"):
            await p.complete(request())


def test_bad_timeout_option() -> None:
    with pytest.raises(PermanentProviderError, match="timeout"):
        OpenAIProvider("m", {"timeout": "soon"})


async def test_environment_configuration_like_the_sdk(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    server.push(reply_text("ok"))
    async with OpenAIProvider("gpt-env") as p:
        assert p.base_url == server.base_url
        await p.complete(request())
        fingerprint = hashlib.sha256(b"sk-env").hexdigest()[:12]
        assert p.rate_limit_key() == ("openai", server.base_url, "gpt-env", fingerprint)
    assert server.requests[-1].headers["authorization"] == "Bearer sk-env"

    # Options win over the environment.
    monkeypatch.setenv("OTHER_KEY", "sk-other")
    p2 = OpenAIProvider("m", {"api_key_env": "OTHER_KEY", "base_url": "http://h/v1"})
    assert (p2.api_key, p2.base_url) == ("sk-other", "http://h/v1")
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    p3 = OpenAIProvider("m")
    assert p3.base_url == "https://api.openai.com/v1" and p3.api_key == ""
    assert p3.rate_limit_key()[3] == ""


async def test_no_key_sends_no_authorization(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.push(reply_text("ok"))
    async with OpenAIProvider("m", {"base_url": server.base_url}) as p:
        await p.complete(request(tools=[]))
    assert "authorization" not in server.requests[0].headers
    assert "tools" not in server.requests[0].json


async def test_max_tokens_param_option(server: FakeOpenAIServer) -> None:
    server.push(reply_text("ok"))
    async with OpenAIProvider("o3", {"base_url": server.base_url, "max_tokens_param": "max_completion_tokens"}) as p:
        await p.complete(request())
    body = server.requests[0].json
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body


async def test_keep_alive_reuses_the_connection(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_text("one"), reply_text("two"), reply_text("three"))
    outs = [(await provider.complete(request())).message.content for _ in range(3)]
    assert outs == ["one", "two", "three"]
    await provider.aclose()
    await provider.aclose()  # idempotent


async def test_tool_choice_auto_goes_with_the_tools(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_text("a"), reply_text("b"))
    await provider.complete(request())
    await provider.complete(request(tools=[]))
    assert server.requests[0].json["tool_choice"] == "auto"
    assert "tool_choice" not in server.requests[1].json and "tools" not in server.requests[1].json


@pytest.mark.parametrize(
    "option,sent",
    [
        ("omit", None),
        ("required", "required"),
        ("none", "none"),
        ("function:read", {"type": "function", "function": {"name": "read"}}),
    ],
)
async def test_tool_choice_option(server: FakeOpenAIServer, option: str, sent: object) -> None:
    server.push(reply_text("ok"))
    async with OpenAIProvider("m", {"base_url": server.base_url, "tool_choice": option}) as p:
        await p.complete(request())
    assert server.requests[0].json.get("tool_choice") == sent


def test_bad_tool_choice_option() -> None:
    with pytest.raises(PermanentProviderError, match="tool_choice"):
        OpenAIProvider("m", {"tool_choice": "sometimes"})


async def test_assistant_tool_call_message_has_empty_string_content(
    server: FakeOpenAIServer, provider: OpenAIProvider
) -> None:
    """Strict servers (llama.cpp's) answer 500 to null or missing content next to tool calls."""
    server.push(reply_text("done"))
    call = ToolCall("call_0", "read", '{"path": "a.py"}')
    await provider.complete(
        request(
            Message("user", "hi"),
            Message("assistant", None, [call]),
            Message("tool", "contents", tool_call_id="call_0", name="read"),
        )
    )
    sent = server.requests[0].json["messages"][1]
    assert sent["content"] == "" and sent["tool_calls"][0]["id"] == "call_0"


async def test_no_max_tokens_when_the_request_sets_none(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(reply_text("ok"))
    await provider.complete(CompletionRequest(messages=[Message("user", "hi")]))
    assert "max_tokens" not in server.requests[0].json


async def test_a_500_repeated_word_for_word_is_permanent(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(*[reply_error(500, "'NoneType' object has no attribute 'get'")] * 2)
    with pytest.raises(TransientProviderError):
        await provider.complete(request())
    with pytest.raises(PermanentProviderError, match="deterministic server error") as info:
        await provider.complete(request())
    assert info.value.status == 500 and "NoneType" in str(info.value)


async def test_a_500_is_transient_when_anything_differs(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    same = "'NoneType' object has no attribute 'get'"
    server.push(
        reply_error(500, same),
        reply_error(500, "another message"),  # another body
        reply_error(500, "another message", headers={}),
        reply_text("ok"),  # a success in between forgets the error
        reply_error(500, same),
    )
    for _ in range(2):
        with pytest.raises(TransientProviderError):
            await provider.complete(request())
    with pytest.raises(TransientProviderError):  # the same body, but to another request
        await provider.complete(request(Message("user", "something else")))
    await provider.complete(request())
    with pytest.raises(TransientProviderError):
        await provider.complete(request())


async def test_repeated_503s_stay_transient(server: FakeOpenAIServer, provider: OpenAIProvider) -> None:
    server.push(*[reply_error(503, "loading model")] * 3)
    for _ in range(3):
        with pytest.raises(TransientProviderError) as info:
            await provider.complete(request())
        assert not isinstance(info.value, PermanentProviderError)
