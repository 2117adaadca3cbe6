"""Credentials on outgoing calls: ``authorization: Bearer …`` added by a client interceptor.

:func:`bearer_interceptors` add the token its source returns to every call
that carries no ``authorization`` of its own. swarmd's services use it on
their channels to peers (:func:`service_token_source`): a call made while
an attempt runs (inside :func:`attempt_credentials`, which the executor
service enters with the attempt's subagent token) presents the subagent
token, every other call the service's own token (``auth.service_token_file``
or ``SWARMD_SERVICE_TOKEN``). The clients use the same interceptors with the
user's token.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from swarmd.services.auth.settings import AuthSettings

__all__ = [
    "SERVICE_TOKEN_ENV",
    "attempt_credentials",
    "bearer_interceptors",
    "read_token_file",
    "service_token_source",
]

#: Environment variable holding a service's own token when no file is configured.
SERVICE_TOKEN_ENV = "SWARMD_SERVICE_TOKEN"

_ATTEMPT_TOKEN: contextvars.ContextVar[str] = contextvars.ContextVar("swarmd_attempt_token", default="")


@contextmanager
def attempt_credentials(token: str) -> Iterator[None]:
    """Calls made in this context (and tasks started from it) present ``token``."""
    reset = _ATTEMPT_TOKEN.set(token)
    try:
        yield
    finally:
        _ATTEMPT_TOKEN.reset(reset)


def read_token_file(path: Path) -> str:
    """The token a file holds (first line, whitespace stripped); ValueError when there is none."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc.strerror}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def service_token_source(settings: AuthSettings, env: Mapping[str, str] | None = None) -> Callable[[], str]:
    """The token a service's outgoing call presents: the running attempt's, else the service's own."""
    env = os.environ if env is None else env
    if settings.service_token_file is not None:
        own = read_token_file(settings.service_token_file)
    else:
        own = env.get(SERVICE_TOKEN_ENV, "").strip()

    def source() -> str:
        return _ATTEMPT_TOKEN.get() or own

    return source


def _with_token(details: Any, token: str) -> Any:
    metadata = list(details.metadata or ())
    if not token or any(key.lower() == "authorization" for key, _ in metadata):
        return details
    metadata.append(("authorization", f"Bearer {token}"))
    return details._replace(metadata=grpc.aio.Metadata(*metadata))


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._source()), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._source()), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._source()), request_iterator)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._source()), request_iterator)


def bearer_interceptors(source: Callable[[], str]) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors (one per call shape) adding ``Bearer <source()>`` to each call."""
    return [_UnaryUnary(source), _UnaryStream(source), _StreamUnary(source), _StreamStream(source)]
