"""Client CPU per model call, for the HTTP clients a provider could use.

On a two-core machine the executor's HTTP client shares the CPU with
everything else, so its cost per request matters. Each variant sends the
same chat-completion body (a realistic conversation with the tool schemas)
to the fake model server at zero latency, 50 requests in flight, and the
CPU this process spent is divided by the requests:

* ``swarmd openai provider`` — :class:`~swarmd.plugins.providers.openai.OpenAIProvider`
  end to end (body building, httpx, response parsing), one provider;
* ``httpx, one client`` — a shared ``httpx.AsyncClient``;
* ``httpx, client per sub-agent`` — a new ``AsyncClient`` every 5 requests,
  as when each sub-agent attempt makes its own provider;
* ``aiohttp`` — when it is installed;
* ``raw asyncio streams`` — a minimal keep-alive HTTP/1.1 client: the floor.

Run by the benchmark in its own process::

    python -m benchmarks.http_clients < {"url": "http://127.0.0.1:PORT", "requests": 500}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from swarmd.plugins.manager import load_plugins
from swarmd.plugins.model import CompletionRequest, Message, ToolSpec
from swarmd.plugins.providers.openai import OpenAIProvider
from swarmd.plugins.providers.wire import request_to_openai

__all__ = ["compare"]

CONCURRENCY = 50


def _request() -> CompletionRequest:
    tools = [
        ToolSpec(c.name, c.description, dict(c.parameters))
        for c in (e.cls for e in load_plugins().tools)
    ]
    messages = [
        Message("system", "You are a coding sub-agent. " * 40),
        Message("user", "Complete this task: benchmark [[fake-model id=h steps=1000 tool=list]]"),
    ]
    return CompletionRequest(messages=messages, tools=tools, max_tokens=1024)


async def _drive(n: int, one: Callable[[], Awaitable[Any]]) -> None:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _measure(
    name: str, n: int, setup: Callable[[], Awaitable[tuple[Callable[[], Awaitable[Any]], Any]]]
) -> dict[str, Any]:
    one, close = await setup()
    await _drive(min(n, 50), one)  # warm up: connections, caches
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await _drive(n, one)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close()
    return {"client": name, "requests": n, "cpu_us_per_request": cpu / n * 1e6, "wall_s": wall}


async def compare(url: str, n: int) -> list[dict[str, Any]]:
    request = _request()
    body = json.dumps(request_to_openai(request, "fake-model")).encode()
    endpoint = url + "/v1/chat/completions"
    rows: list[dict[str, Any]] = []

    async def provider() -> tuple[Callable[[], Awaitable[Any]], Any]:
        p = OpenAIProvider("fake-model", {"base_url": url + "/v1", "api_key": "sk-x"})
        return (lambda: p.complete(request)), p.aclose

    async def shared() -> tuple[Callable[[], Awaitable[Any]], Any]:
        client = httpx.AsyncClient(timeout=60)

        async def one() -> Any:
            r = await client.post(
                endpoint, content=body, headers={"content-type": "application/json"}
            )
            return r.json()

        return one, client.aclose

    async def per_agent() -> tuple[Callable[[], Awaitable[Any]], Any]:
        async def one_agent() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                for _ in range(5):
                    r = await client.post(
                        endpoint, content=body, headers={"content-type": "application/json"}
                    )
                    r.json()

        counter = {"i": 0}

        async def one() -> None:
            counter["i"] += 1
            if counter["i"] % 5 == 0:
                await one_agent()

        async def close() -> None:
            return None

        return one, close

    async def raw() -> tuple[Callable[[], Awaitable[Any]], Any]:
        host, port = url.removeprefix("http://").split(":")
        pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body

        async def one() -> Any:
            conn = pool.pop() if pool else await asyncio.open_connection(host, int(port))
            reader, writer = conn
            writer.write(head)
            headers = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in headers.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            data = await reader.readexactly(length)
            pool.append(conn)
            return json.loads(data)

        async def close() -> None:
            for _r, w in pool:
                w.close()

        return one, close

    rows.append(await _measure("swarmd openai provider (httpx)", n, provider))
    rows.append(await _measure("httpx, one client", n, shared))
    rows.append(await _measure("httpx, client per sub-agent (5 calls)", n, per_agent))
    try:
        import aiohttp
    except ImportError:
        aiohttp = None  # type: ignore[assignment]
    if aiohttp is not None:

        async def aio() -> tuple[Callable[[], Awaitable[Any]], Any]:
            session = aiohttp.ClientSession()

            async def one() -> Any:
                async with session.post(
                    endpoint, data=body, headers={"content-type": "application/json"}
                ) as r:
                    return json.loads(await r.read())

            return one, session.close

        rows.append(await _measure("aiohttp, one session", n, aio))
    rows.append(await _measure("raw asyncio streams (floor)", n, raw))
    return rows


def main() -> int:
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(compare(spec["url"], int(spec["requests"]))), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
