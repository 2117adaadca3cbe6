"""A fake OpenAI-compatible model server for benchmarking swarmd.

A test double, not a model: a real HTTP/1.1 server on loopback that answers
``POST /v1/chat/completions`` in the Chat Completions wire format, with

* a configurable **latency distribution** per call (constant, uniform,
  exponential, lognormal; plus an optional cost per completion token),
  answered with ``loop.call_later`` so a thousand slow calls in flight cost
  no task and no thread;
* **tokens per response** (``usage.completion_tokens`` and a final text of
  that many words);
* **scripted tool-call sequences of N steps**: the server is stateless; it
  counts the assistant messages already in the conversation, so call *k* of
  an N-step conversation is a tool call while ``k < N`` and the final answer
  when ``k == N``. A subtask can carry its own script in its instruction as
  a directive, e.g. ``[[fake-model id=a7 steps=10 latency=1.0 tool=list]]``
  (keys: ``id``, ``steps``, ``latency`` seconds, ``tool``, ``calls`` per step);
* **rate limits** with 429s and OpenAI's headers: a token bucket of
  ``requests_per_minute`` (capacity ``burst``), ``x-ratelimit-limit-requests``
  / ``-remaining-requests`` / ``-reset-requests`` (Go durations such as
  ``6m0s``) on every answer, ``retry-after`` and ``retry-after-ms`` on a 429.

It must never be the bottleneck: ``asyncio.Protocol`` connections with no
per-request task, keep-alive, a listen backlog of 4096 and the open-file
limit raised to its hard maximum, so 1,000+ concurrent connections are
accepted. It reports its own CPU use (``GET /bench/stats``) so a run can
show it was not saturated, and keeps a log of every call (arrival, answer,
subtask id, step, status) that the benchmark reads (``GET /bench/log``).

The scenario data it plays (latency models, rate limits, directives, the
server configuration) lives in :mod:`benchmarks.fake_model_behaviour`.

Control endpoints: ``GET /bench/stats``, ``GET /bench/log``,
``POST /bench/config`` (a :class:`ServerConfig` as JSON),
``POST /bench/reset`` (counters and log), ``GET /health``.

Run it alone (the benchmark does, so its CPU is its own)::

    python -m benchmarks.fake_model_server --port 0
    # prints: fake-model-server listening on http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import resource
import signal
import sys
import time
from http import HTTPStatus
from typing import Any

from benchmarks.fake_model_behaviour import ServerConfig, TokenBucket, go_duration, parse_directive

__all__ = [
    "FakeModelServer",
    "main",
    "raise_open_file_limit",
]

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_BACKLOG = 4096

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def _tool_arguments(tool: str, sid: str, step: int, index: int) -> dict[str, Any]:
    if tool == "write":
        return {"path": f"bench/{sid}/step{step}-{index}.txt", "content": f"{sid} step {step}\n"}
    if tool == "read":
        return {"path": "README.md"}
    if tool == "glob":
        return {"pattern": "*"}
    if tool == "grep":
        return {"pattern": "bench"}
    if tool == "bash":
        return {"command": "true"}
    if tool == "list":
        return {"path": "."}
    return {}


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are answered in order."""

    def __init__(self, server: FakeModelServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered; reading is paused
        self.closing = False
        self.pending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None:
            self.pending.cancel()
        self.server._connection_closed(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Parse and answer the next complete request in the buffer, if any."""
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                self._fail(431, "request headers too large")
            return
        head = bytes(buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._fail(400, "bad request line")
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._fail(501, "chunked request bodies are not supported; send Content-Length")
            return
        try:
            length = int(headers.get("content-length", "0") or "0")
        except ValueError:
            self._fail(400, "bad Content-Length")
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self._fail(413, "request body too large")
            return
        if len(buf) < end + 4 + length:
            return
        body = bytes(buf[end + 4 : end + 4 + length])
        del buf[: end + 4 + length]
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        self.busy = True
        assert self.transport is not None
        self.transport.pause_reading()
        status, extra, payload, delay = self.server._handle(method, target, body)
        self.closing = not keep_alive
        if delay > 0:
            loop = asyncio.get_running_loop()
            self.pending = loop.call_later(delay, self._send, status, extra, payload)
        else:
            self._send(status, extra, payload)

    def _send(self, status: int, extra: dict[str, str], payload: bytes) -> None:
        self.pending = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        head = [_status_line(status)]
        head.append(b"content-type: application/json\r\n")
        head.append(f"content-length: {len(payload)}\r\n".encode("ascii"))
        for name, value in extra.items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(
            b"connection: close\r\n\r\n" if self.closing else b"connection: keep-alive\r\n\r\n"
        )
        transport.write(b"".join(head) + payload)
        self.server._answered()
        if self.closing:
            transport.close()
            return
        self.busy = False
        transport.resume_reading()
        if self.buffer:
            self._next()

    def _fail(self, status: int, message: str) -> None:
        self.closing = True
        self.busy = True
        self._send(
            status,
            {},
            json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode(),
        )


class FakeModelServer:
    """The fake model server (see the module docstring).

    ``async with FakeModelServer(config) as server:`` starts it on
    ``127.0.0.1:0`` in the running loop; ``server.base_url`` is the
    ``OPENAI_BASE_URL`` to use.
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        self.config = config or ServerConfig()
        self.host = host
        self.port = port
        self.backlog = backlog
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()
        self.reset()

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> FakeModelServer:
        raise_open_file_limit()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            backlog=self.backlog,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.close()
        await server.wait_closed()

    async def __aenter__(self) -> FakeModelServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- state ---------------------------------------------------------------

    def configure(self, config: ServerConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Zero the counters and the log; refill the rate-limit bucket."""
        self.rng = random.Random(self.config.seed)
        now = time.monotonic()
        rl = self.config.rate_limit
        self.bucket = (
            TokenBucket(rl.requests_per_minute / 60.0, rl.burst, now)
            if rl.requests_per_minute > 0
            else None
        )
        self.requests = 0
        self.completions = 0
        self.rate_limited = 0
        self.errors = 0
        self.answered = 0
        self.max_open = len(getattr(self, "_connections", ()))
        self.connections_total = 0
        #: (arrival wall time, answer due wall time, subtask id, step, status)
        self.log: list[tuple[float, float, str, int, int]] = []
        self._cpu0 = time.process_time()
        self._wall0 = time.monotonic()

    def stats(self) -> dict[str, Any]:
        wall = time.monotonic() - self._wall0
        cpu = time.process_time() - self._cpu0
        return {
            "requests": self.requests,
            "completions": self.completions,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "answered": self.answered,
            "open_connections": len(self._connections),
            "max_open_connections": self.max_open,
            "connections_total": self.connections_total,
            "cpu_seconds": round(cpu, 4),
            "wall_seconds": round(wall, 4),
            "cpu_utilisation": round(cpu / wall, 4) if wall > 0 else 0.0,
        }

    def _connection_opened(self, conn: _Connection) -> None:
        self._connections.add(conn)
        self.connections_total += 1
        self.max_open = max(self.max_open, len(self._connections))

    def _connection_closed(self, conn: _Connection) -> None:
        self._connections.discard(conn)

    def _answered(self) -> None:
        self.answered += 1

    # -- routing ---------------------------------------------------------------

    def _handle(
        self, method: str, target: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes, float]:
        path = target.split("?", 1)[0]
        if path.endswith("/chat/completions"):
            if method != "POST":
                return self._error(405, f"{method} is not allowed on {path}")
            return self._chat(body)
        if path == "/health":
            return 200, {}, b'{"status":"ok"}', 0.0
        if path.endswith("/models") and method == "GET":
            return (
                200,
                {},
                json.dumps(
                    {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
                ).encode(),
                0.0,
            )
        if path == "/bench/stats":
            return 200, {}, json.dumps(self.stats()).encode(), 0.0
        if path == "/bench/log":
            return 200, {}, json.dumps(self.log).encode(), 0.0
        if path == "/bench/reset" and method == "POST":
            self.reset()
            return 200, {}, b"{}", 0.0
        if path == "/bench/config" and method == "POST":
            try:
                self.configure(ServerConfig.from_json(json.loads(body)))
            except (ValueError, TypeError) as exc:
                return self._error(400, f"bad config: {exc}")
            return 200, {}, json.dumps(self.config.to_json()).encode(), 0.0
        return self._error(404, f"no route {method} {path}")

    def _error(
        self, status: int, message: str, extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes, float]:
        body = json.dumps(
            {"error": {"message": message, "type": "fake_model_error", "code": None}}
        ).encode()
        return status, dict(extra or {}), body, 0.0

    def _rate_headers(self, now: float) -> dict[str, str]:
        bucket = self.bucket
        if bucket is None:
            return {}
        rpm = self.config.rate_limit.requests_per_minute
        return {
            "x-ratelimit-limit-requests": str(int(rpm)),
            "x-ratelimit-remaining-requests": str(int(bucket.tokens)),
            "x-ratelimit-reset-requests": go_duration(bucket.time_to_full(now)),
        }

    def _chat(self, body: bytes) -> tuple[int, dict[str, str], bytes, float]:
        self.requests += 1
        arrival = time.time()
        try:
            data = json.loads(body)
            messages = data["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            self.errors += 1
            return self._error(400, f"bad chat completion request: {exc}")
        script: dict[str, str] = {}
        assistant = 0
        for message in messages:
            role = message.get("role") if isinstance(message, dict) else None
            if role == "assistant":
                assistant += 1
            elif role == "user" and not script and isinstance(message.get("content"), str):
                script = parse_directive(message["content"])
        cfg = self.config
        sid = script.get("id", "")
        step = assistant + 1
        now = time.monotonic()
        if self.bucket is not None and not self.bucket.take(now):
            self.rate_limited += 1
            wait = self.bucket.wait_for_one(now)
            headers = self._rate_headers(now)
            headers["retry-after"] = str(max(1, math.ceil(wait)))
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            self.log.append((arrival, arrival, sid, step, 429))
            return self._error(429, "Rate limit reached for requests (fake model server)", headers)
        try:
            steps = int(script.get("steps", cfg.steps))
            mean = float(script["latency"]) if "latency" in script else None
            calls = int(script.get("calls", cfg.calls))
        except ValueError as exc:
            self.errors += 1
            return self._error(400, f"bad fake-model directive: {exc}")
        tool = script.get("tool", cfg.tool)
        tokens = cfg.tokens_per_response
        message: dict[str, Any]
        if step < steps and tool != "none":
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{step}_{i}",
                        "type": "function",
                        "function": {
                            "name": tool,
                            "arguments": json.dumps(_tool_arguments(tool, sid, step, i)),
                        },
                    }
                    for i in range(max(1, calls))
                ],
            }
            finish = "tool_calls"
        else:
            words = " ".join(_WORDS[i % len(_WORDS)] for i in range(max(0, tokens - 2)))
            message = {"role": "assistant", "content": f"{sid or 'agent'} done. {words}".strip()}
            finish = "stop"
        prompt_tokens = max(1, len(body) // 4)
        payload = json.dumps(
            {
                "id": f"chatcmpl-fake-{self.requests}",
                "object": "chat.completion",
                "created": int(arrival),
                "model": str(data.get("model", "fake-model")),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": tokens,
                    "total_tokens": prompt_tokens + tokens,
                },
            }
        ).encode()
        delay = cfg.latency.sample(self.rng, mean, tokens)
        self.completions += 1
        self.log.append((arrival, arrival + delay, sid, step, 200))
        return 200, self._rate_headers(now), payload, delay


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (1,000+ sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


async def _serve(args: argparse.Namespace) -> None:
    server = FakeModelServer(host=args.host, port=args.port, backlog=args.backlog)
    await server.start()
    print(f"fake-model-server listening on http://{server.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fake_model_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=DEFAULT_BACKLOG)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
