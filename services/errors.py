"""The one place where swarmd's domain errors become gRPC status codes.

Services raise the exceptions below (never `grpc.RpcError`, never a bare
`context.abort` scattered through business code); :func:`grpc_errors` wraps
each servicer method and turns them into the matching status:

========================  =====================  ===========================
exception                 status                 meaning
========================  =====================  ===========================
InvalidArgument           INVALID_ARGUMENT       bad input; the message names it
NotFound                  NOT_FOUND              unknown id or key
AlreadyExists             ALREADY_EXISTS         duplicate id
FailedPrecondition        FAILED_PRECONDITION    wrong state for the request
ResourceExhausted         RESOURCE_EXHAUSTED     a budget or capacity is spent
Unavailable               UNAVAILABLE            a peer cannot be reached (retryable)
DeadlineExceeded          DEADLINE_EXCEEDED      a wait timed out
Cancelled                 CANCELLED              the work was cancelled
(anything else)           INTERNAL               a bug; logged with its traceback
========================  =====================  ===========================
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "SwarmdError",
    "Unavailable",
    "from_rpc_error",
    "grpc_errors",
    "status_for",
]

log = logging.getLogger(__name__)


class SwarmdError(Exception):
    """Base of every domain error; carries the gRPC status it maps to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(SwarmdError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(SwarmdError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(SwarmdError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(SwarmdError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(SwarmdError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(SwarmdError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(SwarmdError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(SwarmdError):
    code = grpc.StatusCode.CANCELLED


_BY_CODE: dict[grpc.StatusCode, type[SwarmdError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
    )
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Return the status code and details a server should send for ``exc``."""
    if isinstance(exc, SwarmdError):
        return exc.code, exc.message
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def from_rpc_error(exc: grpc.RpcError) -> SwarmdError:
    """Turn a peer's ``grpc.RpcError`` back into the matching domain error.

    Used where one service calls another, so the callee's status travels on
    (an executor's UNAVAILABLE stays UNAVAILABLE at the orchestrator).
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    cls = _BY_CODE.get(code)
    if cls is None:
        err = SwarmdError(details or str(code))
        err.code = code
        return err
    return cls(details or str(code))


F = TypeVar("F", bound=Callable[..., Any])


def grpc_errors(method: F) -> F:
    """Decorate a servicer method (unary or server-streaming) to map errors.

    ``context.abort`` raises, so nothing after it runs; an exception that is
    not a :class:`SwarmdError` is a bug: it is logged and sent as INTERNAL.
    """

    async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        code, details = status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("unhandled error in %s", method.__qualname__, exc_info=exc)
        await context.abort(code, details)

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception as exc:
                await _abort(context, exc)

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return unary_wrapper  # type: ignore[return-value]
