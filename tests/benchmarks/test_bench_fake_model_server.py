"""The benchmark's fake model server: wire format, scripts, rate limits, connections."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.fake_model_behaviour import (  # noqa: E402
    LatencyModel,
    RateLimit,
    ServerConfig,
    TokenBucket,
    directive,
    go_duration,
    parse_directive,
)
from benchmarks.fake_model_server import FakeModelServer  # noqa: E402
from swarmd.plugins.model import CompletionRequest, Message, RateLimitError  # noqa: E402
from swarmd.plugins.providers.openai import OpenAIProvider  # noqa: E402
from swarmd.services.orchestrator.ratelimit_headers import parse_duration, parse_headers  # noqa: E402


def _user(text: str) -> list[Message]:
    return [Message("system", "be brief"), Message("user", text)]


async def test_scripted_conversation_speaks_the_openai_wire_format() -> None:
    config = ServerConfig(tokens_per_response=7, tool="list")
    async with (
        FakeModelServer(config) as server,
        OpenAIProvider("fake", {"base_url": server.base_url}) as provider,
    ):
        messages = _user("Do it. " + directive(id="s1", steps=3))
        finishes = []
        for _ in range(3):
            response = await provider.complete(CompletionRequest(messages=list(messages)))
            finishes.append(response.finish_reason)
            assert response.usage.completion_tokens == 7
            assert response.usage.prompt_tokens > 0
            messages.append(response.message)
            for call in response.message.tool_calls:
                assert call.name == "list"
                assert json.loads(call.arguments) == {"path": "."}
                messages.append(Message("tool", "a\nb", tool_call_id=call.id, name=call.name))
        assert finishes == ["tool_calls", "tool_calls", "stop"]
        assert response.message.tool_calls == []
        assert response.message.content and response.message.content.startswith("s1 done.")
        stats = server.stats()
        assert stats["completions"] == 3
        assert stats["connections_total"] == 1  # keep-alive: one connection for the conversation
        assert [(row[2], row[3], row[4]) for row in server.log] == [
            ("s1", 1, 200),
            ("s1", 2, 200),
            ("s1", 3, 200),
        ]


async def test_directive_overrides_tool_and_calls_per_step() -> None:
    async with (
        FakeModelServer(ServerConfig(steps=5)) as server,
        OpenAIProvider("fake", {"base_url": server.base_url}) as provider,
    ):
        response = await provider.complete(
            CompletionRequest(messages=_user(directive(id="w", steps=2, tool="write", calls=3)))
        )
        calls = response.message.tool_calls
        assert [c.name for c in calls] == ["write"] * 3
        assert len({c.id for c in calls}) == 3
        assert json.loads(calls[0].arguments)["path"].startswith("bench/w/")


async def test_rate_limit_answers_429_with_openai_headers() -> None:
    config = ServerConfig(rate_limit=RateLimit(requests_per_minute=60, burst=1))
    async with (
        FakeModelServer(config) as server,
        OpenAIProvider("fake", {"base_url": server.base_url}) as provider,
    ):
        ok = await provider.complete(CompletionRequest(messages=_user(directive(id="r", steps=1))))
        assert ok.headers["x-ratelimit-limit-requests"] == "60"
        assert ok.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(RateLimitError) as caught:
            await provider.complete(CompletionRequest(messages=_user(directive(id="r", steps=1))))
        err = caught.value
        assert err.status == 429
        assert 0 < (err.retry_after or 0) <= 1.0
        assert int(err.headers["retry-after"]) == 1
        snapshot = parse_headers(err.headers)
        assert snapshot.limit_requests == 60
        assert snapshot.remaining_requests == 0
        assert 0 < (snapshot.reset_requests_s or 0) <= 1.0
        assert snapshot.retry_after_s == pytest.approx(err.retry_after)
        stats = server.stats()
        assert (stats["completions"], stats["rate_limited"]) == (1, 1)
        assert [row[4] for row in server.log] == [200, 429]


def test_token_bucket_refills_continuously_and_never_beyond_capacity() -> None:
    bucket = TokenBucket(rate=1.0, capacity=2, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.wait_for_one(0.0) == pytest.approx(1.0)
    assert not bucket.take(0.5)
    assert bucket.wait_for_one(0.5) == pytest.approx(0.5)
    assert bucket.take(1.0)
    assert bucket.time_to_full(1.0) == pytest.approx(2.0)
    bucket.take(100.0)
    assert bucket.tokens == pytest.approx(1.0)  # refilled to 2, then one taken


@pytest.mark.parametrize("seconds", [0.02, 0.5, 1.0, 1.5, 59.0, 360.0, 61.25])
def test_go_durations_read_back_by_swarmds_header_parser(seconds: float) -> None:
    assert parse_duration(go_duration(seconds)) == pytest.approx(seconds, abs=0.001)
    assert go_duration(360.0) == "6m0s"


def test_latency_models_have_the_configured_mean() -> None:
    rng = random.Random(3)
    for kind, spread in (
        ("constant", 0.0),
        ("uniform", 0.4),
        ("exponential", 0.0),
        ("lognormal", 0.5),
    ):
        model = LatencyModel(kind=kind, mean=1.0, spread=spread)
        samples = [model.sample(rng) for _ in range(20000)]
        assert sum(samples) / len(samples) == pytest.approx(1.0, rel=0.05), kind
        assert min(samples) >= 0
    assert LatencyModel(mean=0.5, per_token=0.01).sample(rng, tokens=10) == pytest.approx(0.6)
    assert LatencyModel(mean=0.5).sample(rng, mean=2.0) == 2.0


def test_directives_round_trip() -> None:
    text = (
        "Complete this task:\n\nfirst "
        + directive(id="a1", steps=4, latency=0.5)
        + " then "
        + directive(id="zz")
    )
    assert parse_directive(text) == {"id": "a1", "steps": "4", "latency": "0.5"}
    assert parse_directive("nothing here") == {}


async def test_bad_requests_get_clear_http_errors() -> None:
    async with (
        FakeModelServer() as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http,
    ):
        bad = await http.post("/v1/chat/completions", content=b"{not json")
        assert (
            bad.status_code == 400
            and "bad chat completion request" in bad.json()["error"]["message"]
        )
        assert (await http.get("/v1/chat/completions")).status_code == 405
        assert (await http.get("/nowhere")).status_code == 404
        assert (await http.get("/v1/models")).json()["data"][0]["id"] == "fake-model"
        config = ServerConfig(steps=4, latency=LatencyModel(mean=0.0)).to_json()
        assert (await http.post("/bench/config", json=config)).json()["steps"] == 4
        assert server.config.steps == 4
        assert (await http.post("/bench/config", json={"nonsense": 1})).status_code == 400
        stats = (await http.get("/bench/stats")).json()
        assert stats["errors"] == 0 and "cpu_seconds" in stats


async def test_chunked_bodies_are_refused_not_hung() -> None:
    async with FakeModelServer() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 501")
        writer.close()


async def test_accepts_a_thousand_concurrent_keep_alive_connections() -> None:
    config = ServerConfig(latency=LatencyModel(mean=0.3), steps=1)
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": directive(id="c")}]}
    ).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )

    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        statuses = []
        for _ in range(2):  # two requests on the same connection
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line for line in head.split(b"\r\n") if line.startswith(b"content-length")
                ).split(b":")[1]
            )
            await reader.readexactly(length)
            statuses.append(int(head.split(b" ")[1]))
        writer.close()
        return max(statuses)

    async with FakeModelServer(config) as server:
        statuses = await asyncio.gather(*(one() for _ in range(1000)))
        stats = server.stats()
    assert set(statuses) == {200}
    assert stats["completions"] == 2000
    assert stats["connections_total"] == 1000
    assert stats["max_open_connections"] >= 1000
