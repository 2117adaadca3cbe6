"""The one error type clients raise: callers never see a raw ``grpc.RpcError``."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from swarmd.services.errors import ERROR_DOMAIN, status_details

__all__ = ["SwarmdClientError"]


class SwarmdClientError(Exception):
    """A failed call: gRPC status ``code`` and the server's ``message``, plus
    what the server's rich error details say: the stable ``reason``
    (``ErrorInfo.reason``, e.g. ``INVALID_PLAN``, ``NOT_FOUND``,
    ``MALFORMED_MESSAGE``), the ``field_violations`` of a bad request as
    ``(field, description)`` pairs, and ``retry_delay`` in seconds when the
    server says retrying helps."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        field_violations: list[tuple[str, str]] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.field_violations = list(field_violations or [])
        self.retry_delay = retry_delay

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError) -> SwarmdClientError:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        reason, violations, delay = "", [], None
        status = status_details(exc)
        for packed in status.details if status is not None else ():
            info, bad, retry = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest(), error_details_pb2.RetryInfo()
            if packed.Unpack(info) and info.domain == ERROR_DOMAIN:
                reason = info.reason
            elif packed.Unpack(bad):
                violations += [(v.field, v.description) for v in bad.field_violations]
            elif packed.Unpack(retry):
                delay = retry.retry_delay.ToNanoseconds() / 1e9
        return cls(code, details or code.name, reason=reason, field_violations=violations, retry_delay=delay)
