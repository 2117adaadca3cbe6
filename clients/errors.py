"""The one error type clients raise: callers never see a raw ``grpc.RpcError``."""

from __future__ import annotations

import grpc

__all__ = ["SwarmdClientError"]


class SwarmdClientError(Exception):
    """A failed call: gRPC status ``code`` and the server's ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError) -> SwarmdClientError:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        return cls(code, details or code.name)
