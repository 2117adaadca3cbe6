"""Building the ``SwarmEvent`` messages a sub-agent emits as things happen.

Events leave with ``sequence`` 0; the orchestrator numbers them when it logs
them. Previews are cut on UTF-8 byte counts without splitting a character.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import timestamp_pb2

from swarmd.plugins.model import Usage
from swarmd.v1 import common_pb2

__all__ = ["EventEmitter", "EventSink", "preview", "usage_to_proto"]

EventSink = Callable[[common_pb2.SwarmEvent], None]


def preview(text: str, limit_bytes: int) -> str:
    """The first ``limit_bytes`` bytes of ``text`` (whole characters) + "..." when cut."""
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text
    return data[:limit_bytes].decode("utf-8", errors="ignore") + "..."


def usage_to_proto(usage: Usage) -> common_pb2.TokenUsage:
    return common_pb2.TokenUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )


class EventEmitter:
    """Emits the events of one sub-agent attempt to ``sink``."""

    def __init__(self, swarm_id: str, subtask_id: str, sink: EventSink | None) -> None:
        self.swarm_id = swarm_id
        self.subtask_id = subtask_id
        self._sink = sink

    def _emit(self, **kind: Any) -> None:
        if self._sink is None:
            return
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        self._sink(common_pb2.SwarmEvent(swarm_id=self.swarm_id, sequence=0, time=now, **kind))

    def warning(self, code: str, message: str) -> None:
        """Something about this attempt the user should know; the run goes on."""
        self._emit(warning=common_pb2.SwarmWarning(code=code, message=message, subtask_id=self.subtask_id))

    def agent_started(
        self, *, agent_name: str, specialty: str, attempt: int, worktree_path: str, executor: str
    ) -> None:
        self._emit(
            agent_started=common_pb2.AgentStarted(
                subtask_id=self.subtask_id,
                agent_name=agent_name,
                specialty=specialty,
                attempt=attempt,
                worktree_path=worktree_path,
                executor=executor,
            )
        )

    def agent_step(self, *, step: int, usage: Usage, finish_reason: str, duration_ms: int) -> None:
        self._emit(
            agent_step=common_pb2.AgentStep(
                subtask_id=self.subtask_id,
                step=step,
                usage=usage_to_proto(usage),
                finish_reason=finish_reason,
                duration_ms=duration_ms,
            )
        )

    def agent_message(self, *, content: str, is_tool_call: bool, step: int, role: str = "assistant") -> None:
        self._emit(
            agent_message=common_pb2.AgentMessage(
                subtask_id=self.subtask_id,
                role=role,
                content=preview(content, 500),
                is_tool_call=is_tool_call,
                step=step,
            )
        )

    def agent_tool_call(self, *, tool_name: str, step: int) -> None:
        self._emit(agent_tool_call=common_pb2.AgentToolCall(subtask_id=self.subtask_id, tool_name=tool_name, step=step))

    def agent_tool_call_detail(
        self, *, tool_name: str, arguments: str, output: str, success: bool, duration_ms: int, step: int
    ) -> None:
        self._emit(
            agent_tool_call_detail=common_pb2.AgentToolCallDetail(
                subtask_id=self.subtask_id,
                tool_name=tool_name,
                input_preview=preview(arguments, 200),
                output_preview=preview(output, 500),
                success=success,
                duration_ms=duration_ms,
                step=step,
            )
        )

    def rate_limited(self, *, key: str, waited_ms: int, http_status: int) -> None:
        self._emit(
            rate_limited=common_pb2.RateLimited(
                subtask_id=self.subtask_id, key=key, waited_ms=waited_ms, http_status=http_status
            )
        )

    def cache_lookup(self, *, hit: bool, key: str) -> None:
        self._emit(cache_lookup=common_pb2.CacheLookup(subtask_id=self.subtask_id, hit=hit, key=key))

    def merge_completed(self, merge: common_pb2.MergeResult) -> None:
        self._emit(merge_completed=common_pb2.MergeCompleted(subtask_id=self.subtask_id, merge=merge))

    def work_committed(self, *, commit: str, branch: str, output: str, attempt: int) -> None:
        self._emit(
            work_committed=common_pb2.WorkCommitted(
                subtask_id=self.subtask_id, commit=commit, branch=branch, output=output, attempt=attempt
            )
        )

    def agent_output(self, output: str) -> None:
        self._emit(agent_output=common_pb2.AgentOutput(subtask_id=self.subtask_id, output=output))

    def agent_error(self, error: str, failure_kind: common_pb2.FailureKind) -> None:
        self._emit(
            agent_error=common_pb2.AgentError(
                subtask_id=self.subtask_id,
                error=error,
                failure_kind=failure_kind,
            )
        )

    def agent_complete(self, *, success: bool, steps: int) -> None:
        self._emit(agent_complete=common_pb2.AgentComplete(subtask_id=self.subtask_id, success=success, steps=steps))
