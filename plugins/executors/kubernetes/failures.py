"""How a Kubernetes API call failed, without the client library.

Kept apart from :mod:`.kube` so the plugin (and its registration) loads
without importing the ``kubernetes`` client, which :mod:`.kube` imports and
which costs a few hundred milliseconds and tens of MB in every executor
process, used or not.
"""

from __future__ import annotations

from swarmd.v1 import common_pb2

__all__ = ["ApiFailure"]


class ApiFailure(Exception):
    """A Kubernetes API call failed; ``failure_kind`` says whether retrying can help."""

    def __init__(self, message: str, failure_kind: common_pb2.FailureKind, status: int = 0) -> None:
        super().__init__(message)
        self.failure_kind = failure_kind
        self.status = status
