"""The model-provider interface: chat completions with tool calling.

A provider turns a :class:`CompletionRequest` into a
:class:`CompletionResponse` and raises a :class:`ProviderError` subclass on
failure, classified so callers know what to do:

* :class:`RateLimitError` (HTTP 429): re-queue through the rate governor;
  never fails a subtask, never uses a retry.
* :class:`TransientProviderError` (5xx, connection errors, timeouts): retry
  with backoff.
* :class:`PermanentProviderError` (other 4xx, malformed responses): fail.

Every response and every error carries the HTTP status and the response
headers, which the rate governor reads.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "CompletionRequest",
    "CompletionResponse",
    "Message",
    "ModelProvider",
    "PermanentProviderError",
    "ProviderError",
    "RateLimitError",
    "ToolCall",
    "ToolSpec",
    "TransientProviderError",
    "Usage",
    "model_spec_problem",
    "parse_model_string",
]


def parse_model_string(spec: str) -> tuple[str | None, str]:
    """Split ``provider/model`` at the first ``/`` (seed §2.1).

    ``"openai/gpt-4o"`` -> ``("openai", "gpt-4o")``;
    ``"openrouter/openai/gpt-5"`` -> ``("openrouter", "openai/gpt-5")``;
    ``"gpt-4o"`` -> ``(None, "gpt-4o")``. The alias ``zhipuai`` becomes ``zai``.
    """
    spec = spec.strip()
    if "/" not in spec:
        return None, spec
    provider, model = spec.split("/", 1)
    provider = provider.strip().lower()
    if provider == "zhipuai":
        provider = "zai"
    return provider or None, model


def model_spec_problem(spec: str) -> str:
    """Why ``spec`` is not a usable ``provider/model`` string; ``""`` when it is.

    ``""``, ``"gpt-4o"`` (no provider), ``"/gpt-4o"`` and ``"openai/"`` (no
    model) are refused; whether the provider exists is not checked here.
    """
    example = "write provider/model, e.g. openai/gpt-4o or replay/cassette.jsonl"
    if not spec or not spec.strip():
        return f"no model given; {example}"
    provider, model = parse_model_string(spec)
    if provider is None:
        return f"model {spec!r} names no provider; {example}"
    if not model.strip():
        return f"model {spec!r} names no model after the provider {provider!r}; {example}"
    return ""


@dataclass(frozen=True)
class ToolCall:
    """A tool call requested by the model; ``arguments`` is a JSON string."""

    id: str
    name: str
    arguments: str


@dataclass
class Message:
    """One chat message (OpenAI Chat Completions shape)."""

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # role == "tool" only
    name: str | None = None  # tool name, role == "tool" only


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: name, description, JSON-Schema parameters."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass
class CompletionRequest:
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        return self


@dataclass
class CompletionResponse:
    message: Message  # role "assistant"
    finish_reason: str = "stop"  # stop | length | tool_calls | content_filter | error
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names


class ProviderError(Exception):
    """A model call failed; ``status`` and ``headers`` as received (0/{} when none)."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int = 0, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}


class RateLimitError(ProviderError):
    """HTTP 429. ``retry_after`` (seconds) when the server said."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, headers=headers)
        self.retry_after = retry_after


class TransientProviderError(ProviderError):
    """5xx, connection failure or timeout: worth retrying."""

    transient = True


class PermanentProviderError(ProviderError):
    """Other 4xx or an unusable response: retrying will not help."""


class ModelProvider(abc.ABC):
    """Base class of model providers; register subclasses with
    ``swarmd_register_providers``.

    A provider instance serves one model; create it with the model part of
    the ``provider/model`` string and the provider's options (base URL, API
    key, ...). Instances are used from one event loop and closed with
    :meth:`aclose` (or ``async with``).
    """

    #: Provider name: the part before the first "/" of a model string.
    name: ClassVar[str]
    #: One-line description for ``swarmd plugins``.
    description: ClassVar[str] = ""
    #: HTTP clients shared with other providers of the same host
    #: (:class:`swarmd.plugins.providers.http_clients.HttpClientPool`), set by
    #: the host after construction; ``None``: the provider makes its own.
    #: Providers that do not speak HTTP ignore it.
    http_clients: Any = None

    def __init__(self, model: str, options: Mapping[str, str] | None = None) -> None:
        self.model = model
        self.options = dict(options or {})

    @property
    def base_url(self) -> str:
        """Endpoint identity for the rate governor ("" when not networked)."""
        return ""

    @property
    def api_key(self) -> str:
        """The credential in use ("" when none); only its fingerprint leaves the process."""
        return ""

    def rate_limit_key(self) -> tuple[str, str, str, str]:
        """(provider, base URL, model, API-key fingerprint) of the governor to use."""
        key = self.api_key
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:12] if key else ""
        return self.name, self.base_url, self.model, fingerprint

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        """Run one chat completion; raise a :class:`ProviderError` on failure."""

    async def aclose(self) -> None:
        """Release connections; idempotent."""

    async def __aenter__(self) -> ModelProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
