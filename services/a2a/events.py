"""Swarms and their events as A2A tasks and task updates.

=======================================  =================================================
swarmd                                   A2A
=======================================  =================================================
swarm id                                 task id
label ``a2a.context_id``                 context id (else the swarm id)
PLANNING / RUNNING / INTERRUPTED         ``submitted`` / ``working`` / ``working``
SUCCEEDED / FAILED / CANCELLED           ``completed`` / ``failed`` / ``canceled``
progress events (started, decomposed,    TaskStatusUpdateEvent ``working`` whose message
subtask updates, tool calls, stages,     is the seed's progress line (``[swarm] ...``),
errors, warnings, retries, merges)       metadata ``swarmd.sequence`` and ``swarmd.event``
a subtask reaching a final status        TaskArtifactUpdateEvent ``subtask-<id>``: its
                                         answer (text), its patch (file part,
                                         ``text/x-diff``), its result and merge outcome
                                         (data part)
the swarm's end                          TaskArtifactUpdateEvent ``swarm-result``: the
                                         aggregated answer (text) and the statistics
                                         (data part); then the final status update
=======================================  =================================================

Chatty events (each model step, message and tool-call detail, cache lookups,
rate-limit waits) are not forwarded; ``tasks/get`` and the artifacts carry
what they add up to.
"""

from __future__ import annotations

from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from swarmd.services.a2a.requests import CONTEXT_LABEL, REPOSITORY_LABEL
from swarmd.v1 import common_pb2

__all__ = [
    "FINAL_SUBTASK_STATUSES",
    "context_of",
    "final_status_text",
    "RESULT_ARTIFACT_ID",
    "progress_line",
    "result_artifact",
    "status_update",
    "subtask_artifact",
    "subtask_artifact_id",
    "swarm_states",
    "swarm_task",
    "task_state",
]

RESULT_ARTIFACT_ID = "swarm-result"
FINAL_SUBTASK_STATUSES = frozenset({
    common_pb2.SUB_TASK_STATUS_COMPLETED,
    common_pb2.SUB_TASK_STATUS_FAILED,
    common_pb2.SUB_TASK_STATUS_CANCELLED,
    common_pb2.SUB_TASK_STATUS_TIMED_OUT,
    common_pb2.SUB_TASK_STATUS_SKIPPED,
})
_STATES: dict[int, a2a_pb2.TaskState] = {
    common_pb2.SWARM_STATE_PLANNING: a2a_pb2.TASK_STATE_SUBMITTED,
    common_pb2.SWARM_STATE_RUNNING: a2a_pb2.TASK_STATE_WORKING,
    common_pb2.SWARM_STATE_INTERRUPTED: a2a_pb2.TASK_STATE_WORKING,
    common_pb2.SWARM_STATE_SUCCEEDED: a2a_pb2.TASK_STATE_COMPLETED,
    common_pb2.SWARM_STATE_FAILED: a2a_pb2.TASK_STATE_FAILED,
    common_pb2.SWARM_STATE_CANCELLED: a2a_pb2.TASK_STATE_CANCELED,
}


def task_state(state: int) -> a2a_pb2.TaskState:
    """The A2A task state of a swarm state."""
    return _STATES.get(state, a2a_pb2.TASK_STATE_SUBMITTED)


def context_of(swarm: common_pb2.Swarm) -> str:
    """A swarm's A2A context id: the one its message had, else (a swarm
    started some other way) its own id."""
    return swarm.labels.get(CONTEXT_LABEL) or swarm.id


def swarm_states(state: a2a_pb2.TaskState) -> list[int]:
    """The swarm states shown as the A2A task state ``state``."""
    return [swarm for swarm, task in _STATES.items() if task == state]


def _status_name(status: int) -> str:
    return common_pb2.SubTaskStatus.Name(status).removeprefix("SUB_TASK_STATUS_").lower()


def _agent_message(text: str, task_id: str, context_id: str, ident: str) -> a2a_pb2.Message:
    return a2a_pb2.Message(
        message_id=ident, task_id=task_id, context_id=context_id, role=a2a_pb2.ROLE_AGENT,
        parts=[a2a_pb2.Part(text=text)],
    )


def _data(value: dict[str, Any]) -> struct_pb2.Value:
    return json_format.ParseDict(value, struct_pb2.Value())


def progress_line(event: common_pb2.SwarmEvent) -> str | None:
    """The seed's progress line for an event, or None for events not forwarded."""
    kind = event.WhichOneof("kind")
    body: Any = getattr(event, kind) if kind else None
    if kind == "started":
        return f"[swarm] started task={body.task[:80]!r} planned_subtasks={body.total_subtasks}"
    if kind == "decomposed":
        return f"[swarm] planned subtasks={len(body.subtasks)} stages={body.stage_count}"
    if kind == "subtask_update":
        reason = f" reason={body.reason}" if body.reason else ""
        return f"[swarm] subtask id={body.subtask_id} status={_status_name(body.status)}{reason}"
    if kind == "agent_started":
        return f"[swarm] subtask id={body.subtask_id} agent={body.agent_name} attempt={body.attempt}"
    if kind == "agent_tool_call":
        return f"[swarm] subtask id={body.subtask_id} tool={body.tool_name}"
    if kind == "agent_error":
        return f"[swarm] subtask id={body.subtask_id} error={body.error}"
    if kind == "retry_scheduled":
        return f"[swarm] subtask id={body.subtask_id} retry={body.next_attempt} reason={body.reason}"
    if kind == "merge_completed":
        outcome = common_pb2.MergeOutcome.Name(body.merge.outcome).removeprefix("MERGE_OUTCOME_").lower()
        return f"[swarm] subtask id={body.subtask_id} merge={outcome}"
    if kind == "stage_complete":
        return f"[swarm] stage={body.stage} completed={body.completed} failed={body.failed}"
    if kind == "warning":
        return f"[swarm] warning code={body.code} message={body.message}"
    if kind == "error":
        return f"[swarm] error message={body.message}"
    if kind == "complete":
        return (
            f"[swarm] complete success={str(body.success).lower()} "
            f"subtasks={body.stats.subagents_spawned} speedup={body.stats.speedup_factor:.2f}"
        )
    return None


def status_update(
    event: common_pb2.SwarmEvent,
    text: str,
    context_id: str,
    state: a2a_pb2.TaskState = a2a_pb2.TASK_STATE_WORKING,
) -> a2a_pb2.TaskStatusUpdateEvent:
    """A status update carrying ``text``, tagged with the event's sequence."""
    task_id = event.swarm_id
    update = a2a_pb2.TaskStatusUpdateEvent(
        task_id=task_id,
        context_id=context_id,
        status=a2a_pb2.TaskStatus(
            state=state, message=_agent_message(text, task_id, context_id, f"{task_id}-{event.sequence}")
        ),
    )
    update.status.timestamp.CopyFrom(event.time)
    update.metadata.update({"swarmd.sequence": event.sequence, "swarmd.event": event.WhichOneof("kind") or ""})
    return update


def subtask_artifact_id(subtask_id: str) -> str:
    """The artifact id of a subtask's result."""
    return f"subtask-{subtask_id}"


def subtask_artifact(state: common_pb2.SubTaskState) -> a2a_pb2.Artifact:
    """A finished subtask as an artifact: answer text, patch file, result data."""
    result = state.result
    subtask = state.subtask
    text = result.result or result.error or state.status_reason or f"subtask {_status_name(state.status)}"
    parts = [a2a_pb2.Part(text=text, media_type="text/plain")]
    for produced in result.artifacts:
        if produced.artifact_type == "patch" and produced.content:
            parts.append(a2a_pb2.Part(
                raw=produced.content, filename=produced.name or f"{subtask.id}.patch",
                media_type=produced.mime_type or "text/x-diff",
            ))
    summary = common_pb2.SubTaskResult()
    summary.CopyFrom(result)
    summary.ClearField("artifacts")
    summary.ClearField("result")
    summary.ClearField("worktree_path")
    data = json_format.MessageToDict(summary, preserving_proto_field_name=True)
    data.update({"subtask_id": subtask.id, "name": subtask.name, "status": _status_name(state.status)})
    parts.append(a2a_pb2.Part(data=_data(data), media_type="application/json"))
    artifact = a2a_pb2.Artifact(
        artifact_id=subtask_artifact_id(subtask.id),
        name=subtask.name or subtask.id,
        description=f"result of subtask {subtask.id}",
        parts=parts,
    )
    artifact.metadata.update({"swarmd.subtask_id": subtask.id, "swarmd.status": _status_name(state.status)})
    return artifact


def _final_text(swarm: common_pb2.Swarm) -> str:
    if swarm.result:
        return swarm.result
    if swarm.state == common_pb2.SWARM_STATE_SUCCEEDED:
        return "Swarm completed without textual output."
    return swarm.error or "Swarm finished with failures and no textual output."


def result_artifact(swarm: common_pb2.Swarm) -> a2a_pb2.Artifact:
    """The swarm's aggregated answer and statistics."""
    stats = json_format.MessageToDict(swarm.stats, preserving_proto_field_name=True)
    return a2a_pb2.Artifact(
        artifact_id=RESULT_ARTIFACT_ID,
        name="result",
        description="the swarm's aggregated answer and statistics",
        parts=[
            a2a_pb2.Part(text=_final_text(swarm), media_type="text/plain"),
            a2a_pb2.Part(data=_data({"state": common_pb2.SwarmState.Name(swarm.state), "stats": stats}),
                         media_type="application/json"),
        ],
    )


def final_status_text(swarm: common_pb2.Swarm) -> str:
    """The message of a finished task's status (seed §14.2's wording)."""
    if swarm.state == common_pb2.SWARM_STATE_SUCCEEDED:
        return _final_text(swarm)
    if swarm.state == common_pb2.SWARM_STATE_CANCELLED:
        return f"Swarm cancelled: {swarm.error}" if swarm.error else "Swarm cancelled."
    return f"Swarm execution completed with failures: {swarm.error}" if swarm.error else (
        "Swarm execution completed with failures"
    )


def swarm_task(swarm: common_pb2.Swarm) -> a2a_pb2.Task:
    """A swarm as an A2A task, with the artifacts of every finished subtask
    (and the result, once the swarm is finished)."""
    context_id = context_of(swarm)
    state = task_state(swarm.state)
    terminal = state in (a2a_pb2.TASK_STATE_COMPLETED, a2a_pb2.TASK_STATE_FAILED, a2a_pb2.TASK_STATE_CANCELED)
    text = final_status_text(swarm) if terminal else (
        f"[swarm] state={common_pb2.SwarmState.Name(swarm.state).removeprefix('SWARM_STATE_').lower()} "
        f"subtasks={len(swarm.subtasks)}"
    )
    task = a2a_pb2.Task(
        id=swarm.id,
        context_id=context_id,
        status=a2a_pb2.TaskStatus(
            state=state, message=_agent_message(text, swarm.id, context_id, f"{swarm.id}-status-{swarm.last_sequence}")
        ),
    )
    stamp = swarm.finished_at if swarm.HasField("finished_at") else swarm.created_at
    task.status.timestamp.CopyFrom(stamp)
    for sub in swarm.subtasks:
        if sub.status in FINAL_SUBTASK_STATUSES and sub.HasField("result"):
            task.artifacts.append(subtask_artifact(sub))
    if terminal:
        task.artifacts.append(result_artifact(swarm))
    task.metadata.update({
        "swarmd.state": common_pb2.SwarmState.Name(swarm.state),
        "swarmd.last_sequence": swarm.last_sequence,
        "swarmd.repository": swarm.labels.get(REPOSITORY_LABEL, ""),
    })
    return task
