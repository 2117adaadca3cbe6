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
Unauthenticated           UNAUTHENTICATED        missing, wrong or expired credentials
PermissionDenied          PERMISSION_DENIED      valid credentials, call not allowed
(anything else)           INTERNAL               a bug; logged with its traceback
========================  =====================  ===========================

Every error status carries ``google.rpc.Status`` details (the
``grpc-status-details-bin`` trailer; read it with ``grpcio-status``'s
``rpc_status.from_call`` or any gRPC library's rich-error support):

* ``ErrorInfo`` with ``domain`` ``swarmd`` and a stable ``reason`` (the
  error's :attr:`SwarmdError.reason`: by default the status code's name, e.g.
  ``INVALID_ARGUMENT``, ``NOT_FOUND``; ``MALFORMED_MESSAGE`` for a request that
  does not parse, :data:`SWARM_FINISHED` for an event appended after a
  swarm's terminal event), with ``metadata`` where the raiser gave some;
* ``BadRequest`` with one field violation for INVALID_ARGUMENT, naming the
  field (``config.executor_options``, ``plan.subtasks[2].id``) when the error
  does, and its description;
* ``PreconditionFailure`` for FAILED_PRECONDITION (type ``STATE``);
* ``RetryInfo`` for UNAVAILABLE and RESOURCE_EXHAUSTED when retrying helps
  (:attr:`SwarmdError.retry_delay`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "ERROR_DOMAIN",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SWARM_FINISHED",
    "SwarmdError",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
    "grpc_errors",
    "rich_status",
    "status_details",
    "status_for",
]

#: ``ErrorInfo.domain`` of every swarmd error.
ERROR_DOMAIN = "swarmd"
#: ``ErrorInfo.reason`` of FAILED_PRECONDITION for an append to a swarm's event
#: log after its terminal event.
SWARM_FINISHED = "SWARM_FINISHED"
# A field path at the start of a message: "config.executor_options: ..." or "plan.subtasks[2].id ...".
_FIELD = re.compile(r"^((?:[a-z_][a-z0-9_]*)(?:\.[a-z_][a-z0-9_]*|\[\d+\])+)(?=[:\s,]|$)")

log = logging.getLogger(__name__)


class SwarmdError(Exception):
    """Base of every domain error; carries the gRPC status it maps to.

    ``reason`` (default: the status code's name) is the stable, machine-readable
    ``ErrorInfo.reason``; ``field`` names the request field at fault (default:
    the field path the message starts with, if any); ``retry_delay`` (seconds)
    says when retrying may help; ``metadata`` goes into ``ErrorInfo.metadata``.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        field: str = "",
        retry_delay: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code.name
        match = _FIELD.match(message) if not field else None
        self.field = field or (match.group(1) if match else "")
        self.retry_delay = retry_delay
        self.metadata = dict(metadata or {})


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


class Unauthenticated(SwarmdError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SwarmdError):
    code = grpc.StatusCode.PERMISSION_DENIED


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
        Unauthenticated,
        PermissionDenied,
    )
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Return the status code and details a server should send for ``exc``."""
    if isinstance(exc, SwarmdError):
        return exc.code, exc.message
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(exc: BaseException) -> status_pb2.Status:
    """The ``google.rpc.Status`` (code, message, details) a server sends for ``exc``."""
    code, details = status_for(exc)
    err = exc if isinstance(exc, SwarmdError) else None
    reason = err.reason if err is not None else "INTERNAL"
    status = status_pb2.Status(code=getattr(code_pb2, code.name, code_pb2.UNKNOWN), message=details)
    status.details.append(
        _pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=err.metadata if err else {}))
    )
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(field=err.field if err else "", description=details)
        status.details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    elif code is grpc.StatusCode.FAILED_PRECONDITION:
        violation = error_details_pb2.PreconditionFailure.Violation(
            type="STATE", subject=err.field if err else "", description=details
        )
        status.details.append(_pack(error_details_pb2.PreconditionFailure(violations=[violation])))
    if err is not None and err.retry_delay is not None and code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(err.retry_delay * 1e9))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status


def status_details(exc: BaseException) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` a failed call (sync or asyncio) carried, if any."""
    trailing = getattr(exc, "trailing_metadata", None)
    try:
        metadata = trailing() if callable(trailing) else None
    except Exception:
        return None
    for key, value in metadata or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:
                return None
            return status
    return None


def from_rpc_error(exc: grpc.RpcError) -> SwarmdError:
    """Turn a peer's ``grpc.RpcError`` back into the matching domain error.

    Used where one service calls another, so the callee's status travels on
    (an executor's UNAVAILABLE stays UNAVAILABLE at the orchestrator).
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    reason = ""
    status = status_details(exc)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            reason = info.reason
    cls = _BY_CODE.get(code)
    if cls is None:
        err = SwarmdError(details or str(code), reason=reason)
        err.code = code
        return err
    return cls(details or str(code), reason=reason)


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
        status = rpc_status.to_status(rich_status(exc))
        await context.abort(code, details, trailing_metadata=status.trailing_metadata)

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
