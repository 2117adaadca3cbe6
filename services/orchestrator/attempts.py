"""What the orchestrator sends for each attempt and what it reports about it.

:func:`build_request` assembles ``ExecuteSubTaskRequest``: the subtask (its
step limit filled in), the effective config, the dependency results (text,
success, error, commit; for a dependency still running whose work is
committed, its ``WorkCommitted`` commit and output marked ``merge_pending``),
the workspace (a worktree only for mutating
subtasks in a git repository, on branch ``swarmd/<swarm>/<subtask>``), the
peers' addresses and what is left of the token and cost budgets.

:class:`AttemptReporter` is the dispatch's view of the run
(:class:`~.dispatch.DispatchHooks`): it keeps the subtask's live state and
turns attempts into events. Progress events from the executor's stream are
forwarded with the orchestrator's sequence numbers; the lifecycle events the
orchestrator derives itself (:data:`OWNED_KINDS`) are not taken from the
stream, so they are never duplicated. ``AgentStarted`` is forwarded when the
executor sends one and synthesised when it does not.
"""

from __future__ import annotations

import re

from swarmd.services.orchestrator.live_run import LiveRun
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["OWNED_KINDS", "AttemptReporter", "branch_name", "build_request"]

#: Event kinds the orchestrator derives itself; the same kinds coming from an
#: executor's stream are dropped (they would be duplicates).
OWNED_KINDS = frozenset(
    {
        "started",
        "decomposed",
        "subtask_update",
        "agent_complete",
        "agent_output",
        "agent_error",
        "stage_complete",
        "complete",
        "error",
        "retry_scheduled",
    }
)


#: How long a subagent token outlives its subtask's wall-clock timeout
#: (the result is still being reported, the worktree committed).
_TOKEN_GRACE_SECS = 300


def branch_name(swarm_id: str, subtask_id: str) -> str:
    """``swarmd/<swarm>/<subtask>``, made a valid git ref name."""

    def part(text: str) -> str:
        text = re.sub(r"\.{2,}", ".", text).strip(".")
        text = text.removesuffix(".lock")
        return text or "x"

    return f"swarmd/{part(swarm_id)}/{part(subtask_id)}"


def build_request(run: LiveRun, sid: str, attempt: int) -> executor_pb2.ExecuteSubTaskRequest:
    """The ExecuteSubTask request of one attempt."""
    config = run.config
    state = run.states[sid]
    sub = common_pb2.SubTask()
    sub.CopyFrom(state.subtask)
    if not sub.max_steps:
        sub.max_steps = config.max_steps_per_subagent
    request = executor_pb2.ExecuteSubTaskRequest(
        swarm_id=run.id,
        subtask=sub,
        config=config,
        attempt=attempt,
        orchestrator_address=run.ctx.address(),
        result_store_address=run.ctx.settings.result_store_address,
    )
    tokens = run.ctx.subagent_tokens
    if tokens is not None:
        # Valid for as long as the subtask may run, never less than the setting.
        ttl = max(tokens.ttl_secs, config.subtask_timeout_secs + _TOKEN_GRACE_SECS)
        request.subagent_token = tokens.mint(run.id, sid, attempt, run.swarm.tenant, ttl_secs=ttl)
    for dep in sub.dependencies:
        dep_state = run.states[dep]
        early = run.scheduler.committed_early(dep)
        if early is not None:  # started from its commit, before its merge landed
            request.dependencies.add(
                subtask_id=dep,
                name=dep_state.subtask.name,
                result=early.output,
                success=True,
                commit=early.commit,
                merge_pending=bool(early.commit),
            )
            continue
        result = dep_state.result
        request.dependencies.add(
            subtask_id=dep,
            name=dep_state.subtask.name,
            result=result.result,
            success=result.success,
            error=result.error,
            commit=result.merge.commit or result.merge.merge_commit,
        )
    worktree = config.worktree_enabled and not sub.read_only
    request.workspace.CopyFrom(
        executor_pb2.Workspace(
            repo_path=config.repo_path,
            base_commit=run.swarm.base_commit,
            worktree=worktree,
            auto_merge=config.auto_merge,
            branch=branch_name(run.id, sid) if worktree else "",
        )
    )
    request.max_tokens, request.max_cost_usd = run.ledger.remaining_for(sid)
    return request


class AttemptReporter:
    """:class:`~.dispatch.DispatchHooks` of one subtask, bound to its run."""

    def __init__(self, run: LiveRun, subtask_id: str) -> None:
        self.run = run
        self.sid = subtask_id
        self.attempt_open = False
        self.agent_started_seen = False
        self.closed_steps = 0

    @property
    def state(self) -> common_pb2.SubTaskState:
        return self.run.states[self.sid]

    def build_request(self, attempt: int) -> executor_pb2.ExecuteSubTaskRequest:
        return build_request(self.run, self.sid, attempt)

    def budget_exhausted(self) -> str:
        return self.run.ledger.exhausted()

    def attempt_started(self, attempt: int) -> None:
        self.run.scheduler.forget_commit(self.sid)
        state = self.state
        self.attempt_open = True
        self.agent_started_seen = False
        state.attempt = attempt
        state.status = common_pb2.SUB_TASK_STATUS_RUNNING
        state.status_reason = ""
        if not state.HasField("started_at"):
            state.started_at.GetCurrentTime()
        self.run.emit_update(state, attempt=attempt)
        self.run.writer.save_subtask(state)

    def _ensure_agent_started(self) -> None:
        if self.agent_started_seen:
            return
        self.agent_started_seen = True
        state = self.state
        self.run.log.emit(
            "agent_started",
            common_pb2.AgentStarted(
                subtask_id=self.sid,
                agent_name=state.agent_name,
                specialty=state.subtask.specialty,
                attempt=state.attempt,
                executor=self.run.config.executor,
            ),
        )

    def on_event(self, event: common_pb2.SwarmEvent) -> None:
        kind = event.WhichOneof("kind")
        if kind is None or kind in OWNED_KINDS:
            return
        state = self.state
        if kind == "agent_started":
            if self.agent_started_seen:
                return
            self.agent_started_seen = True
        else:
            self._ensure_agent_started()
        if kind == "agent_tool_call":
            state.current_tool = event.agent_tool_call.tool_name
            state.tool_calls += 1
        elif kind == "agent_tool_call_detail":
            state.current_tool = ""
        elif kind == "agent_step":
            state.steps += 1
        self.run.log.emit(kind, getattr(event, kind), time=event.time)
        if kind == "work_committed":
            self.run.scheduler.work_committed(self.sid, event.work_committed)

    def attempt_failed(self, attempt: int, result: common_pb2.SubTaskResult, kind: common_pb2.FailureKind) -> None:
        self.close_attempt(result, kind, attempt_steps=result.steps)

    def close_attempt(
        self, result: common_pb2.SubTaskResult, kind: common_pb2.FailureKind, *, attempt_steps: int | None = None
    ) -> None:
        """Emit the end of the open attempt: its output, its error, its completion."""
        if not self.attempt_open:
            return
        self._ensure_agent_started()
        self.attempt_open = False
        steps = result.steps - self.closed_steps if attempt_steps is None else attempt_steps
        self.closed_steps += steps
        log = self.run.log
        if result.result:
            log.emit(
                "agent_output", common_pb2.AgentOutput(subtask_id=self.sid, output=result.result)
            )
        if not result.success:
            log.emit(
                "agent_error",
                common_pb2.AgentError(
                    subtask_id=self.sid, error=result.error or "unknown error", failure_kind=kind
                ),
            )
        log.emit(
            "agent_complete",
            common_pb2.AgentComplete(subtask_id=self.sid, success=result.success, steps=steps),
        )

    def on_notice(self, code: str, message: str) -> None:
        """A warning event about the executor stream (reattached, waiting, lost)."""
        if code == "executor_unavailable":
            self.state.status_reason = "waiting for the executor to come back"
        elif code == "executor_reattached":
            self.state.status_reason = ""
        self.run.writer.save_subtask(self.state)
        self.run.log.emit(
            "warning", common_pb2.SwarmWarning(code=code, message=message, subtask_id=self.sid)
        )

    def retry_scheduled(self, next_attempt: int, delay_ms: float, reason: str) -> None:
        self.state.status_reason = f"retrying after a transient failure: {reason}"
        self.run.log.emit(
            "retry_scheduled",
            common_pb2.RetryScheduled(
                subtask_id=self.sid,
                next_attempt=next_attempt,
                delay_ms=int(delay_ms),
                reason=reason,
            ),
        )
