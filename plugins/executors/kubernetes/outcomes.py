"""What a pod's state means for its attempt.

:func:`classify` reads a pod (as the API returns it, a plain dict) and says
whether the attempt is over, and if so how:

==========================================  =========  ======================
pod                                          status     failure kind
==========================================  =========  ======================
phase Succeeded                              (the pod's own result)
phase Failed, container exit code N          FAILED     PERMANENT (the agent)
container OOMKilled                          FAILED     PERMANENT (raise the limit)
ImagePullBackOff / ErrImagePull / bad image  FAILED     PERMANENT
reason DeadlineExceeded (activeDeadline)     TIMED_OUT  PERMANENT
reason Evicted                               FAILED     TRANSIENT
reason NodeLost / phase Unknown              FAILED     TRANSIENT
deleted by someone else before it ended      FAILED     TRANSIENT
not scheduled within the deadline            FAILED     TRANSIENT
==========================================  =========  ======================

Transient failures are retried by the orchestrator's retry policy with a new
attempt (and a new pod); permanent ones are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarmd.v1 import common_pb2

__all__ = ["PodOutcome", "classify", "deleted", "unscheduled"]

PERMANENT = common_pb2.FAILURE_KIND_PERMANENT
TRANSIENT = common_pb2.FAILURE_KIND_TRANSIENT
_BAD_IMAGE = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
_BAD_CONFIG = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_NODE_GONE = ("NodeLost", "Shutdown", "NodeShutdown", "Terminated", "UnexpectedAdmissionError")


@dataclass(frozen=True)
class PodOutcome:
    """How a pod ended; ``succeeded`` means the pod itself ran to completion."""

    succeeded: bool
    reason: str
    message: str = ""
    exit_code: int | None = None
    status: common_pb2.SubTaskStatus = common_pb2.SUB_TASK_STATUS_FAILED
    failure_kind: common_pb2.FailureKind = PERMANENT

    def describe(self, pod: str) -> str:
        code = f", exit code {self.exit_code}" if self.exit_code is not None else ""
        more = f": {self.message}" if self.message else ""
        return f"pod {pod}: {self.reason}{code}{more}"


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def classify(pod: dict[str, Any]) -> PodOutcome | None:
    """The outcome of a pod that has ended (or can no longer run); None while it may still."""
    status = pod.get("status") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or ""
    message = status.get("message") or ""
    state = _container(pod).get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    if waiting.get("reason") in _BAD_IMAGE:
        return PodOutcome(False, waiting["reason"], waiting.get("message", "") or "the image cannot be pulled")
    if waiting.get("reason") in _BAD_CONFIG:
        return PodOutcome(False, waiting["reason"], waiting.get("message", ""))
    if phase == "Succeeded":
        return PodOutcome(True, "Succeeded", exit_code=terminated.get("exitCode", 0))
    if phase == "Unknown" or reason in _NODE_GONE:
        return PodOutcome(False, reason or "NodeLost", message or "the pod's node was lost", failure_kind=TRANSIENT)
    if phase != "Failed":
        return None
    if reason == "Evicted":
        return PodOutcome(False, "Evicted", message, failure_kind=TRANSIENT)
    if reason == "DeadlineExceeded":
        return PodOutcome(False, "DeadlineExceeded", message or "the pod ran past its activeDeadlineSeconds",
                          status=common_pb2.SUB_TASK_STATUS_TIMED_OUT)
    exit_code = terminated.get("exitCode")
    if terminated.get("reason") == "OOMKilled":
        return PodOutcome(False, "OOMKilled", "the agent ran out of memory; raise k8s_memory_limit",
                          exit_code=exit_code)
    return PodOutcome(False, terminated.get("reason") or reason or "Failed",
                      terminated.get("message") or message or "the agent failed", exit_code=exit_code)


def deleted() -> PodOutcome:
    return PodOutcome(False, "Deleted", "the pod was deleted before it finished", failure_kind=TRANSIENT)


def unscheduled(secs: float) -> PodOutcome:
    return PodOutcome(False, "Unschedulable", f"the pod was not scheduled within {secs:g}s", failure_kind=TRANSIENT)
