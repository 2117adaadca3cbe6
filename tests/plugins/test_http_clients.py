"""Shared HTTP clients: leasing, reuse across providers, closing."""

from __future__ import annotations

import httpx
import pytest
from fakes.fake_openai_server import FakeOpenAIServer, reply_text

from swarmd.plugins import CompletionRequest, Message
from swarmd.plugins.providers.factory import create_provider
from swarmd.plugins.providers.http_clients import HttpClientPool
from swarmd.plugins.providers.openai import OpenAIProvider


def _request() -> CompletionRequest:
    return CompletionRequest(messages=[Message("user", "hi")], tools=[], max_tokens=8)


async def test_lease_reuses_a_client_until_it_is_full() -> None:
    pool = HttpClientPool(per_client=2, keep_idle=1)
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    a = pool.lease("k", factory)
    b = pool.lease("k", factory)
    c = pool.lease("k", factory)
    other = pool.lease("other", factory)
    assert a is b and c is not a and other not in (a, c)
    assert len(made) == 3
    await pool.release(a)
    await pool.release(b)
    assert not a.is_closed  # one idle client of a kind is kept
    await pool.release(c)
    assert c.is_closed or a.is_closed  # the second idle one is let go
    assert pool.lease("k", factory) in (a, c)
    await pool.aclose()
    assert all(client.is_closed for client in made)
    assert pool.closed and pool.lease("k", factory) is None


async def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        HttpClientPool(per_client=0)


async def test_providers_share_a_connection_and_the_pool_closes_it() -> None:
    pool = HttpClientPool()
    async with FakeOpenAIServer() as server:
        clients = []
        for _ in range(2):
            server.push(reply_text("ok"))
            provider = create_provider(
                _PluginsWithOpenAI(),
                "openai/gpt-test",
                key="t1",
                options={"base_url": server.base_url, "api_key": "sk-test"},
                http_clients=pool,
            )
            assert isinstance(provider, OpenAIProvider)
            response = await provider.complete(_request())
            assert response.message.content == "ok"
            clients.append(provider._client)
            await provider.aclose()
        assert clients[0] is clients[1] and not clients[0].is_closed
        assert server.requests[0].headers["authorization"] == "Bearer sk-test"
        # A different key never shares the client (nor its credentials).
        server.push(reply_text("ok"))
        other = OpenAIProvider("gpt-test", {"base_url": server.base_url, "api_key": "sk-other"})
        other.http_clients = pool
        await other.complete(_request())
        assert other._client is not clients[0]
        assert server.requests[-1].headers["authorization"] == "Bearer sk-other"
        await other.aclose()
        await pool.aclose()
        assert clients[0].is_closed


async def test_a_closed_pool_leaves_the_provider_its_own_client() -> None:
    pool = HttpClientPool()
    await pool.aclose()
    async with FakeOpenAIServer() as server:
        server.push(reply_text("ok"))
        provider = OpenAIProvider("gpt-test", {"base_url": server.base_url})
        provider.http_clients = pool
        await provider.complete(_request())
        client = provider._client
        await provider.aclose()
        assert client is not None and client.is_closed


class _Registry:
    def names(self) -> list[str]:
        return ["openai"]

    def __contains__(self, name: object) -> bool:
        return name == "openai"

    def get(self, name: str) -> type[OpenAIProvider]:
        return OpenAIProvider


class _PluginsWithOpenAI:
    providers = _Registry()
