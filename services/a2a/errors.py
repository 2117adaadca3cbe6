"""swarmd's errors as A2A errors.

=======================================  ===================================
gRPC status from the orchestrator        A2A error
=======================================  ===================================
NOT_FOUND                                TaskNotFoundError
INVALID_ARGUMENT, FAILED_PRECONDITION,   InvalidParamsError
OUT_OF_RANGE, ALREADY_EXISTS
RESOURCE_EXHAUSTED, UNAVAILABLE,         InternalError (the message says
DEADLINE_EXCEEDED, anything else         whether retrying helps)
=======================================  ===================================

The A2A error's message keeps the gRPC status and swarmd's stable reason,
``swarmd INVALID_ARGUMENT (INVALID_PLAN): ...``, and its data carries them
as ``grpc_status`` and ``reason`` (strings, as
``google.rpc.ErrorInfo`` metadata must be).
"""

from __future__ import annotations

import grpc
from a2a.utils.errors import A2AError, InternalError, InvalidParamsError, TaskNotFoundError

from swarmd.clients.errors import SwarmdClientError

__all__ = ["a2a_error"]

_INVALID = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.ALREADY_EXISTS,
})
_RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED
})


def a2a_error(exc: SwarmdClientError) -> A2AError:
    """The A2A error for a failed orchestrator call."""
    reason = f" ({exc.reason})" if exc.reason and exc.reason != exc.code.name else ""
    message = f"swarmd {exc.code.name}{reason}: {exc.message}"
    data: dict[str, str] = {"grpc_status": exc.code.name, "reason": exc.reason or exc.code.name}
    if exc.field_violations:
        data["fields"] = ", ".join(f for f, _ in exc.field_violations)
    if exc.code == grpc.StatusCode.NOT_FOUND:
        return TaskNotFoundError(message, data=data)
    if exc.code in _INVALID:
        return InvalidParamsError(message, data=data)
    if exc.code in _RETRYABLE:
        data["retryable"] = "true"
        if exc.retry_delay is not None:
            data["retry_delay_secs"] = f"{exc.retry_delay:g}"
    return InternalError(message, data=data)
