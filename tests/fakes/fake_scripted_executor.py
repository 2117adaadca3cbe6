"""A scripted executor plugin for orchestrator tests (no model, no tools).

It stands for real sub-agents, which need a model; :mod:`fake_scripted_provider`
scripts the planner model and :mod:`swarm_services` wires both into real
services on loopback.

``FakeScriptedExecutor`` (plugin name ``fake``) plays each subtask from a
script read from the subtask's labels ``fake.<key>`` or from tokens
``fake.<key>=<value>`` in its instruction (labels win):

=================  =========================================================
key                meaning (default)
=================  =========================================================
duration_ms        how long the attempt takes (20)
steps              model calls made (1)
tool_calls         tool calls made, spread over the steps (0)
outcome            ``success`` or ``fail`` (success)
kind               failure kind: transient, permanent, max_steps, budget,
                   timeout, unspecified (permanent)
error              error text of a failure ("scripted failure")
fail_attempts      attempts that fail before one succeeds (0 = per outcome)
hang               ``true``: never ends until cancelled
hang_attempts      hang only in attempts up to this number
output             result text ("output of <name>")
tokens             tokens per step (10)
reserve            ``true``: ReserveBudget before each tool call over gRPC
permits            ``true``: AcquirePermit/ReportOutcome around each step
rpc_error          ``unavailable``, ``deadline`` or ``invalid``: the executor
                   call itself fails with that status (for ``fail_attempts``
                   attempts, or always)
commit             commit reported in ``result.merge.commit`` (``{attempt}``
                   becomes the attempt number)
committed          commit reported at once in a ``WorkCommitted`` event, as a
                   mutating sub-agent does before its merge (``{attempt}`` too)
patch              lines of a ``patch`` artifact put on the result
=================  =========================================================

Every attempt is written to :data:`JOURNAL` (start, end, requests) so tests
can check dispatch order, concurrency and what each request carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from swarmd.plugins import (
    Executor,
    hookimpl,
)
from swarmd.services.errors import DeadlineExceeded, InvalidArgument, Unavailable
from swarmd.v1 import (
    common_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    executor_pb2,
)

__all__ = ["JOURNAL", "Attempt", "FakeScriptedExecutor", "Journal"]

_TOKEN = re.compile(r"fake\.([a-z_]+)=(\S+)")
_KINDS = {
    "transient": common_pb2.FAILURE_KIND_TRANSIENT,
    "permanent": common_pb2.FAILURE_KIND_PERMANENT,
    "max_steps": common_pb2.FAILURE_KIND_MAX_STEPS,
    "budget": common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED,
    "timeout": common_pb2.FAILURE_KIND_TIMEOUT,
    "unspecified": common_pb2.FAILURE_KIND_UNSPECIFIED,
}


@dataclass
class Attempt:
    """One attempt the fake executor ran."""

    swarm_id: str
    subtask_id: str
    attempt: int
    request: executor_pb2.ExecuteSubTaskRequest
    start: float
    end: float | None = None
    outcome: str = ""


@dataclass
class Journal:
    """What the fake executor saw, in order."""

    attempts: list[Attempt] = field(default_factory=list)
    cancel_calls: list[tuple[str, str, str]] = field(default_factory=list)
    running: int = 0
    max_running: int = 0

    def reset(self) -> None:
        self.attempts.clear()
        self.cancel_calls.clear()
        self.running = self.max_running = 0

    def for_subtask(self, subtask_id: str) -> list[Attempt]:
        return [a for a in self.attempts if a.subtask_id == subtask_id]

    def first_start(self, subtask_id: str) -> float:
        return self.for_subtask(subtask_id)[0].start

    def last_end(self, subtask_id: str) -> float:
        end = self.for_subtask(subtask_id)[-1].end
        assert end is not None, f"{subtask_id} has not ended"
        return end


#: The journal of every FakeScriptedExecutor in the process (reset per test).
JOURNAL = Journal()


def _script(sub: common_pb2.SubTask) -> dict[str, str]:
    script = {m.group(1): m.group(2) for m in _TOKEN.finditer(sub.instruction)}
    for key, value in sub.labels.items():
        if key.startswith("fake."):
            script[key.removeprefix("fake.")] = value
    return script


def _event(swarm_id: str, **kind: Any) -> executor_pb2.ExecuteSubTaskResponse:
    event = common_pb2.SwarmEvent(swarm_id=swarm_id, **kind)
    event.time.GetCurrentTime()
    return executor_pb2.ExecuteSubTaskResponse(event=event)


class FakeScriptedExecutor(Executor):
    """Scripted sub-agents: no model, no tools, exact timings."""

    name = "fake"
    description = "scripted sub-agents for tests"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._stops: dict[tuple[str, str], asyncio.Event] = {}

    @property
    def in_flight(self) -> int:
        return len(self._stops)

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        JOURNAL.cancel_calls.append((swarm_id, subtask_id, reason))
        stop = self._stops.get((swarm_id, subtask_id))
        if stop is None:
            return False
        stop.set()
        return True

    async def submit(
        self, request: executor_pb2.ExecuteSubTaskRequest
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:  # type: ignore[override]
        sub = request.subtask
        script = _script(sub)
        key = (request.swarm_id, sub.id)
        stop = self._stops[key] = asyncio.Event()
        record = Attempt(request.swarm_id, sub.id, request.attempt, request, time.monotonic())
        JOURNAL.attempts.append(record)
        JOURNAL.running += 1
        JOURNAL.max_running = max(JOURNAL.max_running, JOURNAL.running)
        steps = int(script.get("steps", "1"))
        tools = int(script.get("tool_calls", "0"))
        tokens = int(script.get("tokens", "10"))
        duration = int(script.get("duration_ms", "20")) / 1000
        hang = script.get("hang") == "true" or request.attempt <= int(
            script.get("hang_attempts", "0")
        )
        done_steps = done_tools = 0
        error = ""
        kind = common_pb2.FAILURE_KIND_UNSPECIFIED
        channel: grpc.aio.Channel | None = None
        try:
            fail_attempts = int(script.get("fail_attempts", "0"))
            rpc_error = script.get("rpc_error")
            if rpc_error and (not fail_attempts or request.attempt <= fail_attempts):
                record.outcome = f"rpc_error:{rpc_error}"
                raise {
                    "unavailable": Unavailable,
                    "deadline": DeadlineExceeded,
                    "invalid": InvalidArgument,
                }[rpc_error](f"scripted {rpc_error} error")
            yield _event(
                request.swarm_id,
                agent_started=common_pb2.AgentStarted(
                    subtask_id=sub.id,
                    agent_name=f"agent-{sub.id}",
                    specialty=sub.specialty,
                    attempt=request.attempt,
                    executor=self.name,
                ),
            )
            if "committed" in script:
                yield _event(
                    request.swarm_id,
                    work_committed=common_pb2.WorkCommitted(
                        subtask_id=sub.id,
                        commit=script["committed"].replace("{attempt}", str(request.attempt)),
                        output=script.get("output", f"output of {sub.name}"),
                        attempt=request.attempt,
                    ),
                )
            if script.get("reserve") == "true" or script.get("permits") == "true":
                channel = grpc.aio.insecure_channel(request.orchestrator_address)
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel) if channel else None
            per_step = duration / max(1, steps)
            cancelled = False
            for step in range(1, steps + 1):
                permit = None
                if stub is not None and script.get("permits") == "true":
                    try:
                        permit = await stub.AcquirePermit(
                            coordinator_pb2.AcquirePermitRequest(
                                key=coordinator_pb2.RateLimitKey(
                                    provider="fake", model="scripted"
                                ),
                                swarm_id=request.swarm_id,
                                subtask_id=sub.id,
                                estimated_tokens=tokens,
                            ),
                            timeout=5,
                        )
                    except grpc.aio.AioRpcError as exc:
                        error, kind = (
                            f"model call refused: {exc.details()}",
                            common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED,
                        )
                        break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), per_step)
                if stop.is_set():
                    cancelled = True
                    break
                done_steps += 1
                if permit is not None and stub is not None:
                    await stub.ReportOutcome(
                        coordinator_pb2.ReportOutcomeRequest(
                            permit_id=permit.permit_id,
                            key=coordinator_pb2.RateLimitKey(provider="fake", model="scripted"),
                            outcome=coordinator_pb2.CALL_OUTCOME_SUCCESS,
                            http_status=200,
                            usage=common_pb2.TokenUsage(prompt_tokens=tokens, total_tokens=tokens),
                            swarm_id=request.swarm_id,
                            subtask_id=sub.id,
                        ),
                        timeout=5,
                    )
                yield _event(
                    request.swarm_id,
                    agent_step=common_pb2.AgentStep(
                        subtask_id=sub.id,
                        step=step,
                        usage=common_pb2.TokenUsage(total_tokens=tokens),
                    ),
                )
                share = tools // steps + (1 if step <= tools % steps else 0)
                refused = False
                for _ in range(share):
                    if stub is not None and script.get("reserve") == "true":
                        try:
                            await stub.ReserveBudget(
                                coordinator_pb2.ReserveBudgetRequest(
                                    swarm_id=request.swarm_id, subtask_id=sub.id, tool_calls=1
                                ),
                                timeout=5,
                            )
                        except grpc.aio.AioRpcError as exc:
                            error = f"tool call refused: {exc.details()}"
                            kind = common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED
                            refused = True
                            break
                    done_tools += 1
                    yield _event(
                        request.swarm_id,
                        agent_tool_call=common_pb2.AgentToolCall(
                            subtask_id=sub.id, tool_name="read", step=step
                        ),
                    )
                    yield _event(
                        request.swarm_id,
                        agent_tool_call_detail=common_pb2.AgentToolCallDetail(
                            subtask_id=sub.id, tool_name="read", success=True, step=step
                        ),
                    )
                if refused:
                    break
            if hang and not cancelled and not error:
                await stop.wait()
                cancelled = True
            result = common_pb2.SubTaskResult(
                subtask_id=sub.id,
                subagent_id=f"agent-{sub.id}",
                steps=done_steps,
                tool_calls=done_tools,
                usage=common_pb2.TokenUsage(
                    total_tokens=tokens * done_steps, prompt_tokens=tokens * done_steps
                ),
            )
            fails = (
                script.get("outcome") == "fail"
                if not fail_attempts
                else request.attempt <= fail_attempts
            )
            if cancelled:
                result.status = common_pb2.SUB_TASK_STATUS_CANCELLED
                result.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
                result.error = "cancelled"
                record.outcome = "cancelled"
            elif error:
                result.status = common_pb2.SUB_TASK_STATUS_FAILED
                result.failure_kind = kind
                result.error = error
                record.outcome = "refused"
            elif fails:
                result.status = common_pb2.SUB_TASK_STATUS_FAILED
                result.failure_kind = _KINDS[script.get("kind", "permanent")]
                result.error = script.get("error", "scripted failure").replace("_", " ")
                record.outcome = "failed"
            else:
                result.success = True
                result.status = common_pb2.SUB_TASK_STATUS_COMPLETED
                result.result = script.get("output", f"output of {sub.name}")
                if "commit" in script:
                    result.merge.commit = script["commit"].replace("{attempt}", str(request.attempt))
                if "patch" in script:
                    lines = "".join(f"+line {i}\n" for i in range(int(script["patch"])))
                    result.artifacts.add(
                        artifact_type="patch", name=f"{sub.id}.patch", content=f"--- a/x\n+++ b/x\n{lines}".encode()
                    )
                record.outcome = "success"
            yield executor_pb2.ExecuteSubTaskResponse(result=result)
        finally:
            record.end = time.monotonic()
            record.outcome = record.outcome or "aborted"
            JOURNAL.running -= 1
            self._stops.pop(key, None)
            if channel is not None:
                await channel.close()


@hookimpl
def swarmd_register_executors(registry: Any) -> None:
    registry.add(FakeScriptedExecutor)
