"""The executor-plugin interface (in the spirit of httpx's AsyncBaseTransport).

An executor runs sub-agents. :meth:`Executor.submit` takes one
``ExecuteSubTaskRequest`` and returns an async iterator of
``ExecuteSubTaskResponse`` messages: progress events as they happen, then
exactly one ``result``. The executor service numbers them and streams
them to the orchestrator; it reads the plugin's stream in a task of its own,
so the attempt outlives a broken RPC for the caller's reattach window
(:mod:`swarmd.services.executor.streams`). Heartbeats a plugin yields are
dropped (the service sends its own).

A worktree may be lazy (files written when first used, see
:mod:`swarmd.plugins.runtime.worktree.lazy`): a plugin that hands a
worktree's folder to a process of its own awaits
``swarmd.plugins.runtime.worktree.materialize_all(path)`` first.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import grpc
from opentelemetry import trace

from swarmd.plugins.registry import Plugins
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["Executor", "ExecutorContext", "ResourceHealth", "unfinished_result"]


@dataclass
class ExecutorContext:
    """What the executor service gives a plugin when it creates it."""

    #: Loaded plugins (providers and tools for the sub-agent runtime).
    plugins: Plugins
    #: Options from the executor settings (``executor.options``), e.g. k8s_namespace.
    options: Mapping[str, str] = field(default_factory=dict)
    #: Tracer of the executor service (spans for model and tool calls).
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    #: Makes traced gRPC channels to peers (orchestrator, result store).
    channel_factory: Callable[[str], grpc.aio.Channel] | None = None
    #: Anything else a deployment wants to hand its plugins.
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceHealth:
    """What :meth:`Executor.resource_health` reports of one running attempt."""

    #: In [0, 1]; below the policy's ``min_resource_health_score`` it counts as a resource failure.
    score: float
    #: Infrastructure signals (OOM kills, image pull errors, restarts...), added to the invariant breaks.
    signals: int = 0
    #: What the score was made of, for the sample's detail.
    detail: str = ""


class Executor(abc.ABC):
    """Base class of executor plugins; register with ``swarmd_register_executors``."""

    #: Name users select with ``--executor NAME``.
    name: ClassVar[str]
    #: One-line description for ``swarmd plugins`` and ``Describe``.
    description: ClassVar[str] = ""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context

    @property
    def capacity(self) -> int:
        """Sub-agents this executor runs at once; 0 = unbounded."""
        return 0

    @property
    def in_flight(self) -> int:
        """Sub-agents running right now."""
        return 0

    @abc.abstractmethod
    def submit(self, request: executor_pb2.ExecuteSubTaskRequest) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        """Run one subtask attempt: yield events, then exactly one result.

        Cancelling the iteration (the caller stops consuming and closes it)
        must stop the sub-agent. Failures of the sub-agent are reported as a
        failed result, not raised; raising is for the executor itself failing.
        """

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        """Ask a running attempt to stop; True when one was found. Idempotent."""
        return False

    async def resource_health(self, swarm_id: str, subtask_id: str) -> ResourceHealth | None:
        """How healthy the resources of a running attempt are (a pod's memory,
        image, restarts...), for ``SampleBranch``: the collapse controller
        counts a low score and the signals against the branch. None (the
        default) when the executor has nothing to say: a local sub-agent
        scores 1.0 with no signals."""
        return None

    async def aclose(self) -> None:
        """Stop everything and release resources; idempotent."""

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def unfinished_result(
    request: executor_pb2.ExecuteSubTaskRequest,
    error: str,
    *,
    kind: common_pb2.FailureKind,
    status: common_pb2.SubTaskStatus = common_pb2.SUB_TASK_STATUS_FAILED,
    execution_time_ms: int = 0,
) -> executor_pb2.ExecuteSubTaskResponse:
    """The final message for an attempt that never got to (or never finished)
    running its sub-agent: ``status`` and failure ``kind`` with ``error``, the
    attempt's retry count and cache key carried over from ``request``."""
    return executor_pb2.ExecuteSubTaskResponse(
        result=common_pb2.SubTaskResult(
            subtask_id=request.subtask.id,
            subagent_id=f"agent-{request.subtask.id}",
            success=False,
            error=error,
            status=status,
            failure_kind=kind,
            retry_count=max(0, (request.attempt or 1) - 1),
            cache_key=request.cache_key,
            execution_time_ms=execution_time_ms,
        )
    )
