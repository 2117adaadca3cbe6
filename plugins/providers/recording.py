"""Record mode: a provider wrapper that writes every response to a cassette.

:class:`RecordingProvider` wraps any provider. Each successful call appends
one line to the cassette in the format :mod:`swarmd.plugins.providers.replay`
reads: ``{"key", "step", "response" (OpenAI chat.completion), "request_digest"}``.
Replaying the file with ``replay/<path>`` gives the same conversation.

Many sub-agents record into one file at once, in one process or several:
each line is written with a single ``write`` on a descriptor opened with
``O_APPEND`` (atomic for a line on a local file system), under a
per-file lock inside the process. Errors are not recorded: a rate-limited or
failed call is made again and only the response that was used is kept.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from swarmd.plugins.model import CompletionRequest, CompletionResponse, ModelProvider
from swarmd.plugins.providers.wire import request_digest, response_to_openai

__all__ = ["RecordingProvider", "append_line"]

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


def append_line(path: str | Path, obj: object) -> None:
    """Append one JSON line to ``path`` atomically (creating the file)."""
    p = Path(path)
    data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    with _lock_for(p.resolve()):
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


class RecordingProvider(ModelProvider):
    """Delegates to ``inner`` and records each response under ``key``."""

    name = "record"
    description = "Records another provider's responses into a replay cassette"

    def __init__(self, inner: ModelProvider, path: str | Path, key: str) -> None:
        super().__init__(inner.model, inner.options)
        self.inner = inner
        self.path = Path(path)
        self.key = key
        self.step = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def base_url(self) -> str:
        return self.inner.base_url

    @property
    def api_key(self) -> str:
        return self.inner.api_key

    def rate_limit_key(self) -> tuple[str, str, str, str]:
        return self.inner.rate_limit_key()

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        response = await self.inner.complete(request)
        self.step += 1
        append_line(
            self.path,
            {
                "key": self.key,
                "step": self.step,
                "response": response_to_openai(response, self.inner.model, f"chatcmpl-{self.key}-{self.step}"),
                "request_digest": request_digest(request),
            },
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
