"""A fake OpenAI-compatible Chat Completions server for tests.

A real HTTP/1.1 server on ``127.0.0.1:0`` (``asyncio.start_server`` and a
small parser; keep-alive supported), so the ``openai`` provider is tested
through its real HTTP client. Tests script the replies in order::

    async with FakeOpenAIServer() as server:
        server.push(reply_tool_calls([("write", {"path": "a", "content": "x"})]))
        server.push(reply_text("done", usage=(10, 2)))
        server.push(reply_error(429, "slow down", headers={"retry-after": "2"}))
        ...
        server.requests  # what the server received (method, path, headers, json)

When the script is empty, ``server.fallback`` (a callable taking the request
JSON) decides; by default it answers 500 "no scripted response".
:func:`agent_responder` makes a fallback that plays a whole sub-agent
without scripting each request, so many sub-agents can run at once::

    server.fallback = agent_responder()   # list "." first, then a final text
    server.fallback = agent_responder(act=lambda turn: [("bash", {"command": "echo hi"})] if turn.turn == 1 else None)

``server.rate_limit = RateLimit(requests=20, window=1.0)`` turns on a fixed
window limit: the first ``requests`` chat completions of each window are
served (with ``x-ratelimit-*`` headers), the rest get 429 with
``x-ratelimit-*``, ``retry-after`` and ``retry-after-ms``, without consuming
the script. Every chat completion is logged in ``server.calls`` (arrival
time and status); ``server.completions`` and ``server.rejected`` count them.
``RateLimit(..., success_headers={...}, refusal_headers={...})`` sends fixed
header sets instead of the computed ones (servers and proxies whose headers
describe some other window than the one they enforce).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = [
    "AgentTurn",
    "Call",
    "FakeOpenAIServer",
    "RateLimit",
    "Reply",
    "ReceivedRequest",
    "agent_responder",
    "completion",
    "reply_error",
    "reply_raw",
    "reply_text",
    "reply_tool_calls",
]


@dataclass
class Reply:
    """One scripted HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (slow responses, timeouts)
    drop: bool = False  # close the connection without answering


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def completion(
    content: str | None = None,
    tool_calls: list[tuple[str, Any]] | None = None,
    *,
    finish_reason: str | None = None,
    usage: tuple[int, int] | dict[str, Any] | None = (10, 5),
    cached_tokens: int = 0,
    call_ids: list[str] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object. ``tool_calls`` are (name, arguments) pairs;
    arguments given as a non-string are JSON-encoded."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": (call_ids[i] if call_ids else f"call_{i}"),
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for i, (name, args) in enumerate(tool_calls)
        ]
    obj: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}
        ],
    }
    if isinstance(usage, dict):
        obj["usage"] = usage
    elif usage is not None:
        obj["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        if cached_tokens:
            obj["usage"]["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return obj


def reply_text(content: str, **kwargs: Any) -> Reply:
    headers = kwargs.pop("headers", {})
    delay = kwargs.pop("delay", 0.0)
    return Reply(body=json.dumps(completion(content, **kwargs)).encode(), headers=headers, delay=delay)


def reply_tool_calls(calls: list[tuple[str, Any]], content: str | None = None, **kwargs: Any) -> Reply:
    headers = kwargs.pop("headers", {})
    delay = kwargs.pop("delay", 0.0)
    return Reply(body=json.dumps(completion(content, calls, **kwargs)).encode(), headers=headers, delay=delay)


def reply_error(status: int, message: str, *, headers: dict[str, str] | None = None, delay: float = 0.0) -> Reply:
    body = json.dumps({"error": {"message": message, "type": "fake_error", "code": None}}).encode()
    return Reply(status=status, body=body, headers=dict(headers or {}), delay=delay)


def reply_raw(body: bytes | str, *, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=body.encode() if isinstance(body, str) else body, headers=dict(headers or {}))


@dataclass
class RateLimit:
    """A fixed-window request limit: ``requests`` chat completions per ``window`` seconds.

    Windows are counted from the first chat completion the limit sees.
    Rejected requests do not count against the window (as with OpenAI).
    ``headers_on_success`` adds the ``x-ratelimit-*`` headers to served
    responses too (real servers do). ``success_headers`` and
    ``refusal_headers``, when given, are sent as they are instead of the
    computed headers on served and refused calls respectively: the limit
    enforced stays ``requests`` per ``window`` whatever they say.
    """

    requests: int
    window: float = 1.0
    headers_on_success: bool = True
    success_headers: dict[str, str] | None = None
    refusal_headers: dict[str, str] | None = None
    _epoch: float | None = field(default=None, repr=False)
    _index: int = field(default=-1, repr=False)
    _used: int = field(default=0, repr=False)

    def admit(self, now: float) -> tuple[bool, dict[str, str]]:
        """Count a request arriving at ``now``; (served?, rate-limit headers)."""
        if self._epoch is None:
            self._epoch = now
        index = math.floor((now - self._epoch) / self.window)
        if index != self._index:
            self._index, self._used = index, 0
        served = self._used < self.requests
        if served:
            self._used += 1
        reset = max(0.001, self._epoch + (index + 1) * self.window - now)
        headers = {
            "x-ratelimit-limit-requests": str(self.requests),
            "x-ratelimit-remaining-requests": str(self.requests - self._used),
            "x-ratelimit-reset-requests": f"{math.ceil(reset * 1000)}ms",
        }
        if not served:
            headers["retry-after"] = str(math.ceil(reset))
            headers["retry-after-ms"] = str(math.ceil(reset * 1000))
        fixed = self.success_headers if served else self.refusal_headers
        if fixed is not None:
            headers = dict(fixed)
        return served, headers


@dataclass(frozen=True)
class Call:
    """One chat completion the server answered: when it arrived (monotonic) and its status."""

    at: float
    status: int


@dataclass(frozen=True)
class AgentTurn:
    """What :func:`agent_responder` knows about the conversation it answers."""

    subtask_id: str  # from the system prompt's "(ID: ...)", "" when absent
    instruction: str  # the user prompt after "Complete this task:"
    turn: int  # 1 for the first call of a conversation, then 2, 3, ...
    tool_results: list[str]  # contents of the tool messages so far, in order
    body: Any  # the whole request JSON


_ID = re.compile(r"\(ID: ([^)\s]+)\)")


def _turn_of(body: Any) -> AgentTurn:
    messages = body.get("messages", []) if isinstance(body, dict) else []
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    match = _ID.search(system if isinstance(system, str) else "")
    instruction = user.split("Complete this task:", 1)[-1].strip() if isinstance(user, str) else ""
    return AgentTurn(
        subtask_id=match.group(1) if match else "",
        instruction=instruction,
        turn=1 + sum(1 for m in messages if m.get("role") == "assistant"),
        tool_results=[m.get("content") or "" for m in messages if m.get("role") == "tool"],
        body=body,
    )


def agent_responder(
    act: Callable[[AgentTurn], list[tuple[str, Any]] | None] | None = None,
    finish: Callable[[AgentTurn], str] | None = None,
    *,
    usage: tuple[int, int] = (10, 5),
) -> Callable[[Any], Reply]:
    """A fallback answering every sub-agent deterministically from its conversation.

    ``act(turn)`` gives the tool calls of this turn; None (or an empty list)
    ends the conversation with the text ``finish(turn)``. By default the
    first turn lists ``.`` and the second finishes with
    ``"<subtask id> done"``. Call ids are unique per turn (``call_<turn>_<i>``).
    """

    def default_act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
        return [("list", {"path": "."})] if turn.turn == 1 else None

    def default_finish(turn: AgentTurn) -> str:
        return f"{turn.subtask_id} done"

    act = act or default_act
    finish = finish or default_finish

    def respond(body: Any) -> Reply:
        turn = _turn_of(body)
        calls = act(turn)
        if calls:
            ids = [f"call_{turn.turn}_{i}" for i in range(len(calls))]
            return reply_tool_calls(calls, usage=usage, call_ids=ids)
        return reply_text(finish(turn), usage=usage)

    return respond


class FakeOpenAIServer:
    """Scriptable Chat Completions server (see the module docstring)."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[ReceivedRequest] = []
        self.fallback: Callable[[Any], Reply] = lambda _body: reply_error(500, "no scripted response")
        self.rate_limit: RateLimit | None = None
        self.calls: list[Call] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    @property
    def completions(self) -> int:
        """Chat completion requests answered (served or rejected)."""
        return len(self.calls)

    @property
    def rejected(self) -> int:
        """Chat completion requests answered 429."""
        return sum(1 for c in self.calls if c.status == 429)

    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (0: a free one; the old port again to model a restart)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _read_request(self, reader: asyncio.StreamReader) -> ReceivedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return ReceivedRequest(method, path, headers, body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                arrived = time.monotonic()
                limit_headers: dict[str, str] = {}
                if request.method != "POST" or not request.path.endswith("/chat/completions"):
                    reply = reply_error(404, f"no route {request.method} {request.path}")
                else:
                    served = True
                    if self.rate_limit is not None:
                        served, limit_headers = self.rate_limit.admit(arrived)
                    if not served:
                        reply = reply_error(429, "Rate limit reached for requests", headers=limit_headers)
                    elif self.script:
                        reply = self.script.pop(0)
                    else:
                        try:
                            parsed = request.json
                        except ValueError:
                            parsed = None
                        reply = self.fallback(parsed)
                    if served and self.rate_limit is not None and self.rate_limit.headers_on_success:
                        reply = Reply(
                            status=reply.status,
                            body=reply.body,
                            headers={**limit_headers, **reply.headers},
                            delay=reply.delay,
                            drop=reply.drop,
                        )
                    self.calls.append(Call(arrived, reply.status))
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                if reply.drop:
                    return
                try:
                    reason = HTTPStatus(reply.status).phrase
                except ValueError:
                    reason = "Unknown"
                headers = {"content-type": "application/json", **{k.lower(): v for k, v in reply.headers.items()}}
                headers["content-length"] = str(len(reply.body))
                head = f"HTTP/1.1 {reply.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(head.encode("latin-1") + b"\r\n" + reply.body)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
