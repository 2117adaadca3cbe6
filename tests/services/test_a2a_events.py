"""Swarms and their events as A2A tasks, status updates and artifacts."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2
from google.protobuf import json_format

from swarmd.services.a2a.events import progress_line, status_update, subtask_artifact, swarm_task
from swarmd.services.a2a.requests import CONTEXT_LABEL
from swarmd.v1 import common_pb2


def event(sequence: int, **kind: object) -> common_pb2.SwarmEvent:
    return common_pb2.SwarmEvent(swarm_id="s-1", sequence=sequence, **kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("swarm_event", "line"),
    [
        (event(1, started=common_pb2.SwarmStarted(task="Fix it", total_subtasks=3)),
         "[swarm] started task='Fix it' planned_subtasks=3"),
        (event(2, subtask_update=common_pb2.SubTaskUpdate(subtask_id="ops", status=common_pb2.SUB_TASK_STATUS_RUNNING)),
         "[swarm] subtask id=ops status=running"),
        (event(3, agent_tool_call=common_pb2.AgentToolCall(subtask_id="ops", tool_name="write")),
         "[swarm] subtask id=ops tool=write"),
        (event(4, agent_error=common_pb2.AgentError(subtask_id="ops", error="boom")),
         "[swarm] subtask id=ops error=boom"),
        (event(5, stage_complete=common_pb2.StageComplete(stage=0, completed=2, failed=1)),
         "[swarm] stage=0 completed=2 failed=1"),
        (event(6, complete=common_pb2.SwarmComplete(
            success=True, stats=common_pb2.SwarmStats(subagents_spawned=3, speedup_factor=2.5))),
         "[swarm] complete success=true subtasks=3 speedup=2.50"),
        (event(7, agent_step=common_pb2.AgentStep(subtask_id="ops", step=1)), None),
        (event(8, agent_message=common_pb2.AgentMessage(subtask_id="ops", content="hi")), None),
    ],
)
def test_progress_lines_follow_the_seed(swarm_event: common_pb2.SwarmEvent, line: str | None) -> None:
    assert progress_line(swarm_event) == line


def test_a_status_update_carries_the_sequence_and_the_event_kind() -> None:
    update = status_update(event(9, error=common_pb2.SwarmError(message="x")), "[swarm] error message=x", "ctx")
    assert update.task_id == "s-1" and update.context_id == "ctx"
    assert update.status.state == a2a_pb2.TASK_STATE_WORKING
    assert update.status.message.parts[0].text == "[swarm] error message=x"
    assert dict(update.metadata) == {"swarmd.sequence": 9, "swarmd.event": "error"}


def test_a_subtask_artifact_has_the_answer_the_patch_and_the_result() -> None:
    state = common_pb2.SubTaskState(
        subtask=common_pb2.SubTask(id="ops", name="Operations"),
        status=common_pb2.SUB_TASK_STATUS_COMPLETED,
        result=common_pb2.SubTaskResult(
            subtask_id="ops", success=True, result="wrote ops.py", steps=3, tool_calls=2,
            artifacts=[common_pb2.SwarmArtifact(artifact_type="patch", name="ops.patch", content=b"diff", mime_type="text/x-diff")],
            merge=common_pb2.MergeResult(outcome=common_pb2.MERGE_OUTCOME_MERGED, files_changed=1),
        ),
    )
    artifact = subtask_artifact(state)
    text, patch, data = artifact.parts
    assert artifact.artifact_id == "subtask-ops" and artifact.name == "Operations"
    assert text.text == "wrote ops.py"
    assert (patch.raw, patch.filename, patch.media_type) == (b"diff", "ops.patch", "text/x-diff")
    result = json_format.MessageToDict(data.data)
    assert result["merge"] == {"outcome": "MERGE_OUTCOME_MERGED", "files_changed": 1}
    assert result["status"] == "completed" and "result" not in result and "artifacts" not in result


@pytest.mark.parametrize(
    ("state", "expected", "artifacts"),
    [
        (common_pb2.SWARM_STATE_PLANNING, a2a_pb2.TASK_STATE_SUBMITTED, []),
        (common_pb2.SWARM_STATE_RUNNING, a2a_pb2.TASK_STATE_WORKING, ["subtask-a"]),
        (common_pb2.SWARM_STATE_INTERRUPTED, a2a_pb2.TASK_STATE_WORKING, ["subtask-a"]),
        (common_pb2.SWARM_STATE_SUCCEEDED, a2a_pb2.TASK_STATE_COMPLETED, ["subtask-a", "swarm-result"]),
        (common_pb2.SWARM_STATE_FAILED, a2a_pb2.TASK_STATE_FAILED, ["subtask-a", "swarm-result"]),
        (common_pb2.SWARM_STATE_CANCELLED, a2a_pb2.TASK_STATE_CANCELED, ["subtask-a", "swarm-result"]),
    ],
)
def test_a_swarm_as_a_task(state: int, expected: int, artifacts: list[str]) -> None:
    done = common_pb2.SubTaskState(
        subtask=common_pb2.SubTask(id="a"), status=common_pb2.SUB_TASK_STATUS_COMPLETED,
        result=common_pb2.SubTaskResult(success=True, result="ok"),
    )
    running = common_pb2.SubTaskState(subtask=common_pb2.SubTask(id="b"), status=common_pb2.SUB_TASK_STATUS_RUNNING)
    subtasks = [done, running] if state != common_pb2.SWARM_STATE_PLANNING else []
    swarm = common_pb2.Swarm(id="s-1", state=state, subtasks=subtasks, labels={CONTEXT_LABEL: "ctx"}, last_sequence=12)
    task = swarm_task(swarm)
    assert (task.id, task.context_id, task.status.state) == ("s-1", "ctx", expected)
    assert [a.artifact_id for a in task.artifacts] == artifacts
    assert task.metadata["swarmd.last_sequence"] == 12


def test_a_failed_swarm_says_so_in_the_seed_words() -> None:
    task = swarm_task(common_pb2.Swarm(id="s-2", state=common_pb2.SWARM_STATE_FAILED, error="ops failed"))
    assert task.context_id == "s-2"  # not started through A2A: its own id
    assert task.status.message.parts[0].text == "Swarm execution completed with failures: ops failed"
    assert task.artifacts[-1].parts[0].text == "ops failed"
