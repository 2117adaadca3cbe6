"""The ``replay`` provider: plays model responses from a JSONL cassette.

``replay/<cassette path>`` selects it; relative paths are resolved against
the ``cassette_dir`` option, else the process's working directory.

Cassette format: one JSON object per line (blank lines and lines starting
with ``#`` are ignored)::

    {"key": "<subtask id or name, or 'orchestrator'>", "step": 1,
     "response": {<an OpenAI chat.completion object>},
     "request_digest": "<optional; see wire.request_digest>"}

or, written by hand, the short form::

    {"key": "writer", "step": 1, "content": "Writing the file.",
     "tool_calls": [{"name": "write", "arguments": {"path": "a.txt", "content": "hi"}}],
     "finish_reason": "tool_calls", "usage": {"prompt_tokens": 10, "completion_tokens": 5}}

``finish_reason`` defaults to ``tool_calls`` when there are tool calls and
``stop`` otherwise; tool-call ids default to ``call_<step>_<index>``.

A provider instance is created per sub-agent attempt with the options
``subtask_id`` and ``subtask_name`` (``key`` overrides both). It serves the
lines of the first of (id, name) that the cassette has, step 1, 2, ... in
call order; a new instance (a retry) starts from step 1 again, so a replay
is deterministic. When one (key, step) appears more than once the last line
wins, which makes a recording of a retried attempt replay its final attempt.

A cassette that runs out, or whose recorded ``request_digest`` differs from
the digest of the request being made, raises
:class:`PermanentProviderError` naming the cassette, key and step.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmd.plugins import hookimpl
from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    ModelProvider,
    PermanentProviderError,
)
from swarmd.plugins.providers.wire import request_digest, response_from_openai

__all__ = ["Cassette", "CassetteEntry", "ReplayProvider", "load_cassette", "swarmd_register_providers"]


@dataclass(frozen=True)
class CassetteEntry:
    """One recorded model response."""

    key: str
    step: int
    response: Mapping[str, Any]  # an OpenAI chat.completion object
    request_digest: str | None
    line: int


@dataclass(frozen=True)
class Cassette:
    """A parsed cassette: ``entries[key][step]``."""

    path: Path
    entries: Mapping[str, Mapping[int, CassetteEntry]]

    def steps(self, key: str) -> int:
        return len(self.entries.get(key, {}))


def _short_form(obj: Mapping[str, Any], step: int) -> dict[str, Any]:
    """Expand the hand-written form into a chat.completion object."""
    calls = []
    raw_calls = obj.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ValueError("'tool_calls' must be a list")
    for i, call in enumerate(raw_calls):
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise ValueError(f"tool_calls[{i}] needs a 'name'")
        args = call.get("arguments", {})
        calls.append(
            {
                "id": call.get("id") or f"call_{step}_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
        )
    content = obj.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("'content' must be a string")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    finish = obj.get("finish_reason") or ("tool_calls" if calls else "stop")
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": obj.get("usage") or {},
    }


def _parse(path: Path, text: str) -> Cassette:
    entries: dict[str, dict[int, CassetteEntry]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise PermanentProviderError(f"replay cassette {where}: invalid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise PermanentProviderError(f"replay cassette {where}: each line must be a JSON object")
        key, step = obj.get("key"), obj.get("step")
        if not isinstance(key, str) or not key:
            raise PermanentProviderError(f"replay cassette {where}: 'key' must be a non-empty string")
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise PermanentProviderError(f"replay cassette {where}: 'step' must be an integer >= 1")
        try:
            response = obj["response"] if "response" in obj else _short_form(obj, step)
        except ValueError as exc:
            raise PermanentProviderError(f"replay cassette {where}: {exc}") from None
        # Validate now, so a bad line is reported with its line number up front.
        response_from_openai(response, source=where)
        digest = obj.get("request_digest")
        entries.setdefault(key, {})[step] = CassetteEntry(
            key, step, response, digest if isinstance(digest, str) and digest else None, lineno
        )
    for key, steps in entries.items():
        missing = [n for n in range(1, max(steps) + 1) if n not in steps]
        if missing:
            raise PermanentProviderError(
                f"replay cassette {path}: key {key!r} has no step {missing[0]} (steps must be 1, 2, 3, ...)"
            )
    return Cassette(path, entries)


_cache: dict[Path, tuple[tuple[int, int], Cassette]] = {}
_cache_lock = threading.Lock()


def load_cassette(path: str | Path) -> Cassette:
    """Read and validate a cassette (cached until the file changes)."""
    p = Path(path).resolve()
    try:
        st = p.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with _cache_lock:
            hit = _cache.get(p)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PermanentProviderError(f"replay cassette {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentProviderError(f"cannot read replay cassette {p}: {exc}") from None
    cassette = _parse(p, text)
    with _cache_lock:
        _cache[p] = (stamp, cassette)
    return cassette


class ReplayProvider(ModelProvider):
    """Serves recorded responses for one key, step by step (module docstring)."""

    name = "replay"
    description = "Plays model responses from a JSONL cassette (deterministic tests, demos, whole-swarm replay)"

    def __init__(self, model: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(model, options)
        if not model:
            raise PermanentProviderError("replay needs a cassette path: replay/<path to .jsonl>")
        path = Path(model).expanduser()
        if not path.is_absolute() and self.options.get("cassette_dir"):
            path = Path(self.options["cassette_dir"]) / path
        self.cassette = load_cassette(path)
        if self.options.get("key"):
            candidates = [self.options["key"]]
        else:
            candidates = [c for c in (self.options.get("subtask_id"), self.options.get("subtask_name")) if c]
        self.candidates = candidates
        self.key = next((c for c in candidates if c in self.cassette.entries), candidates[0] if candidates else "")
        self.step = 0

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.step += 1
        where = f"replay cassette {self.cassette.path}"
        if not self.key or self.key not in self.cassette.entries:
            wanted = " or ".join(repr(c) for c in self.candidates) or "(no key given)"
            known = ", ".join(sorted(self.cassette.entries)) or "none"
            raise PermanentProviderError(f"{where} has no entries for key {wanted} (keys in the cassette: {known})")
        entry = self.cassette.entries[self.key].get(self.step)
        if entry is None:
            raise PermanentProviderError(
                f"{where} is exhausted: key {self.key!r} has no step {self.step} "
                f"(it records {self.cassette.steps(self.key)} steps)"
            )
        if entry.request_digest is not None:
            digest = request_digest(request)
            if digest != entry.request_digest:
                raise PermanentProviderError(
                    f"{where} diverged at key {self.key!r} step {self.step} (line {entry.line}): the request "
                    f"has digest {digest}, the recording {entry.request_digest} (different messages or tools)"
                )
        return response_from_openai(entry.response, source=f"{self.cassette.path}:{entry.line}")


@hookimpl
def swarmd_register_providers(registry: Any) -> None:
    registry.add(ReplayProvider)
