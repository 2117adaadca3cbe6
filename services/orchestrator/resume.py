"""Resuming a swarm that a previous orchestrator left PLANNING or RUNNING.

Finished subtasks are kept as they are (their results are not re-run);
subtasks that were running are dispatched again as a new attempt, after the
executor has been told to drop the old one; event numbering continues from
the stored log's last sequence. A ``swarm_resumed`` warning says what
happened.
"""

from __future__ import annotations

import asyncio
import contextlib

from swarmd.plugins import ModelProvider
from swarmd.services.orchestrator.context import TERMINAL, RunContext
from swarmd.services.orchestrator.planning import PlanWarning
from swarmd.services.orchestrator.run import SwarmRun
from swarmd.v1 import common_pb2

__all__ = ["resumed_run", "restart"]

_USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)


def resumed_run(
    ctx: RunContext,
    stored: common_pb2.Swarm,
    last_sequence: int,
    *,
    provider: ModelProvider | None = None,
) -> tuple[SwarmRun, list[str]]:
    """A run continuing ``stored``, and the ids of the subtasks that were running."""
    swarm = common_pb2.Swarm()
    swarm.CopyFrom(stored)
    interrupted: list[str] = []
    for state in swarm.subtasks:
        if state.status in TERMINAL:
            continue
        if state.status == common_pb2.SUB_TASK_STATUS_RUNNING:
            interrupted.append(state.subtask.id)
        state.status = (
            common_pb2.SUB_TASK_STATUS_BLOCKED
            if state.subtask.dependencies
            else common_pb2.SUB_TASK_STATUS_PENDING
        )
        state.current_tool = ""
    run = SwarmRun(ctx, swarm, last_sequence=last_sequence, provider=provider)
    run.announced = stored.state == common_pb2.SWARM_STATE_RUNNING and bool(stored.subtasks)
    # The orchestrator's own usage is not stored apart from the totals; what
    # the totals hold beyond the subtasks' results is a close estimate.
    usage = run.orchestrator_usage
    usage.CopyFrom(stored.stats.usage)
    for state in stored.subtasks:
        for name in _USAGE_FIELDS:
            setattr(usage, name, max(0, getattr(usage, name) - getattr(state.result.usage, name)))
    run.orchestrator_cost = max(
        0.0, stored.stats.cost_usd - sum(s.result.cost_usd for s in stored.subtasks)
    )
    run.ledger.record_overhead(usage.total_tokens, run.orchestrator_cost)
    for state in stored.subtasks:
        result = state.result
        run.ledger.settle(
            state.subtask.id, result.tool_calls, result.usage.total_tokens, result.cost_usd
        )
    return run, interrupted


async def restart(run: SwarmRun, interrupted: list[str]) -> None:
    """Tell the executor to drop the interrupted attempts, then start the run."""
    for sid in interrupted:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(run.ctx.settings.rpc_timeout_secs):
                await run.ctx.executor.cancel(
                    run.id, sid, "orchestrator restarted; the subtask is re-dispatched"
                )
    finished = sum(s.status in TERMINAL for s in run.swarm.subtasks)
    run.warnings.append(
        PlanWarning(
            "swarm_resumed",
            f"the orchestrator restarted; {finished} finished subtasks are kept and "
            f"{len(run.swarm.subtasks) - finished} are dispatched again "
            f"({len(interrupted)} were running and are re-run from a new attempt)",
        )
    )
    run.start()
