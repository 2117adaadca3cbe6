"""The ``openai`` provider: any OpenAI-compatible Chat Completions endpoint.

Covers OpenAI itself and the many servers that speak its wire format (vLLM,
Ollama, llama.cpp server, LM Studio, OpenRouter...). Non-streaming: one
``POST {base_url}/chat/completions`` per call, through ``httpx.AsyncClient``
(leased from the host's shared clients when it has them, see
:mod:`swarmd.plugins.providers.http_clients`; else one per provider).

Options (the first two read the environment as the OpenAI SDK does):

``base_url``
    default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
``api_key``
    default ``$OPENAI_API_KEY`` (or the variable named by ``api_key_env``);
    none means no ``Authorization`` header (local servers).
``use_env_key``
    ``false`` ignores the environment's key; the runtime sets it when a
    swarm chooses its own base URL, so a swarm cannot send the service's key
    to a server of its choosing.
``timeout``
    seconds per request, default 120.
``max_tokens_param``
    ``max_tokens`` by default; some newer models want ``max_completion_tokens``.
    Sent only when the request sets a limit (executor option
    ``max_output_tokens``); unset, the server's own default applies.
``tool_choice``
    sent with every request that offers tools: ``auto`` (default; servers such
    as llama.cpp's with ``--chat_format chatml-function-calling`` ignore
    ``tools`` without it), ``required``, ``none``, ``function:NAME`` (force
    that function), or ``omit`` to send no ``tool_choice`` at all.

Every response and every error carries the HTTP status and the response
headers with lower-cased names, for the rate governor. Errors are classified
(see :mod:`swarmd.plugins.model`): 429 -> :class:`RateLimitError` with
``retry_after`` from ``Retry-After`` (seconds or an HTTP date) or
``retry-after-ms``; 408, 5xx, connection errors and timeouts ->
:class:`TransientProviderError`; any other 4xx -> :class:`PermanentProviderError`
with the server's own error message; a body that is not JSON or has no
choices -> :class:`PermanentProviderError`.

One exception to "5xx is transient": a server error that is not one of the
"come back later" statuses (502, 503, 504, 529) and repeats with the same
status and body in answer to the very same request body is deterministic (a
server that cannot handle this request), so the repeat is a
:class:`PermanentProviderError`: the caller retries such a 500 once, not
until its retries run out.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import json
import os
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from swarmd.plugins import hookimpl
from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    ModelProvider,
    PermanentProviderError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    TransientProviderError,
)
from swarmd.plugins.providers.wire import request_to_openai, response_from_openai

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_BASE_URL", "OpenAIProvider", "parse_retry_after", "swarmd_register_providers"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_SECS = 120.0
#: 5xx statuses that mean "come back later" and stay transient however often they repeat.
RECOVERABLE_5XX = frozenset({502, 503, 504, 529})


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _server_message(body: bytes, fallback: str) -> str:
    """The error message a server put in its body, in the usual shapes."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or fallback
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):
            return data["message"]
        if isinstance(data.get("detail"), str):
            return data["detail"]
    return text[:500] or fallback


def _tool_choice(raw: str | None) -> Any:
    """The ``tool_choice`` value the option asks for (``None``: send none)."""
    value = (raw if raw is not None else "auto").strip()
    if value.lower() in ("omit", "off", "false", "no", ""):
        return None
    if value.lower() in ("auto", "required", "none"):
        return value.lower()
    if value.startswith("function:") and value[len("function:") :].strip():
        return {"type": "function", "function": {"name": value[len("function:") :].strip()}}
    raise PermanentProviderError(
        f"openai provider option tool_choice={raw!r} is not auto, required, none, omit or function:NAME"
    )


def _headers(response: httpx.Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class OpenAIProvider(ModelProvider):
    """Chat Completions over HTTP (see the module docstring for options)."""

    name = "openai"
    description = "Any OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, Ollama, OpenRouter...)"

    def __init__(self, model: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(model, options)
        env = os.environ
        base = self.options.get("base_url") or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self._base_url = base.rstrip("/")
        use_env = self.options.get("use_env_key", "true").strip().lower() not in ("0", "false", "no", "off")
        key_env = self.options.get("api_key_env")
        self._api_key = self.options.get("api_key") or ""
        if not self._api_key and use_env:
            self._api_key = (env.get(key_env, "") if key_env else "") or env.get("OPENAI_API_KEY", "")
        try:
            self._timeout = float(self.options.get("timeout") or DEFAULT_TIMEOUT_SECS)
        except ValueError:
            raise PermanentProviderError(
                f"openai provider option timeout={self.options['timeout']!r} is not a number of seconds"
            ) from None
        if self._timeout <= 0:
            raise PermanentProviderError("openai provider option timeout must be positive")
        self._max_tokens_param = self.options.get("max_tokens_param") or "max_tokens"
        self._tool_choice = _tool_choice(self.options.get("tool_choice"))
        #: (request digest, status, body) of the last server error, to spot a deterministic one.
        self._last_server_error: tuple[str, int, bytes] | None = None
        self._client: httpx.AsyncClient | None = None
        self._leased_from: Any = None

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def url(self) -> str:
        return f"{self._base_url}/chat/completions"

    def _new_client(self) -> httpx.AsyncClient:
        import httpx  # loaded by the first model call, not by every process that knows the provider

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return httpx.AsyncClient(
            headers=headers,
            verify=_tls_context(),
            timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 30.0)),
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            pool = self.http_clients
            if pool is not None:
                # Everything a client is made of: same endpoint, key and timeout -> same client.
                kind = ("openai", self._base_url, self._api_key, self._timeout)
                self._client = pool.lease(kind, self._new_client)
                self._leased_from = pool if self._client is not None else None
            if self._client is None:
                self._client = self._new_client()
        return self._client

    def build_body(self, request: CompletionRequest) -> dict[str, Any]:
        body = request_to_openai(request, self.model, tool_choice=self._tool_choice)
        if "max_tokens" in body and self._max_tokens_param != "max_tokens":
            body[self._max_tokens_param] = body.pop("max_tokens")
        return body

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        import httpx

        body = self.build_body(request)
        try:
            response = await self._http().post(self.url, json=body)
        except httpx.UnsupportedProtocol as exc:
            raise PermanentProviderError(f"bad base URL {self._base_url!r}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"request to {self.url} timed out after {self._timeout:g}s ({type(exc).__name__})"
            ) from exc
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            raise TransientProviderError(
                f"cannot reach {self.url}: {type(exc).__name__}: {exc or 'connection failed'}"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.url} closed the connection before answering (server stopped or crashed?): "
                f"{type(exc).__name__}: {exc or 'connection lost'}"
            ) from exc
        return self._parse(response, body)

    def _parse(self, response: httpx.Response, sent: Mapping[str, Any] | None = None) -> CompletionResponse:
        status = response.status_code
        headers = _headers(response)
        if status >= 400:
            error = self._error(status, headers, response.content, response.reason_phrase)
            raise self._deterministic(error, sent, response.content)
        self._last_server_error = None
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            snippet = response.content[:200].decode("utf-8", errors="replace")
            raise PermanentProviderError(
                f"malformed JSON from {self.url} (status {status}): {exc}; body starts {snippet!r}",
                status=status,
                headers=headers,
            ) from None
        # Some gateways answer 200 with an error object instead of choices.
        if isinstance(data, Mapping) and "choices" not in data and data.get("error"):
            err = data["error"]
            code = err.get("code") if isinstance(err, Mapping) else None
            if isinstance(code, int) and code >= 400:
                raise self._error(code, headers, response.content, "")
            raise PermanentProviderError(
                f"error from {self.url}: {_server_message(response.content, 'unknown error')}",
                status=status,
                headers=headers,
            )
        return response_from_openai(data, status=status, headers=headers, source=f"response from {self.url}")

    def _error(self, status: int, headers: dict[str, str], body: bytes, reason: str) -> ProviderError:
        message = _server_message(body, reason or f"HTTP {status}")
        text = f"HTTP {status} from {self.url}: {message}"
        if status == 429:
            return RateLimitError(text, status=status, headers=headers, retry_after=parse_retry_after(headers))
        if status == 408 or status >= 500:
            return TransientProviderError(text, status=status, headers=headers)
        return PermanentProviderError(text, status=status, headers=headers)

    def _deterministic(self, error: ProviderError, sent: Mapping[str, Any] | None, body: bytes) -> ProviderError:
        """``error``, or a permanent one when it repeats a server error exactly."""
        status = error.status
        if not isinstance(error, TransientProviderError) or status < 500 or status in RECOVERABLE_5XX:
            self._last_server_error = None
            return error
        digest = hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()
        seen = (digest, status, body)
        if self._last_server_error != seen:
            self._last_server_error = seen
            return error
        self._last_server_error = None
        return PermanentProviderError(
            f"{error.message} (the same answer to the same request twice: a deterministic server error)",
            status=status,
            headers=error.headers,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        pool, self._leased_from = self._leased_from, None
        if client is None:
            return
        if pool is not None:
            await pool.release(client)
        else:
            await client.aclose()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client in the process: loading the CA bundle
    costs ~15 ms of CPU and ~1 MB per client, and each sub-agent has a client."""
    import httpx

    return httpx.create_ssl_context()


@hookimpl
def swarmd_register_providers(registry: Any) -> None:
    registry.add(OpenAIProvider)
