"""Swarm statistics and the aggregated result text: every figure defined here, once.

Counts -- each subtask counts once, by its status: ``completed``; ``failed``
(failed or timed out); ``cancelled``; ``skipped`` (a dependency failed).
Cancelled and skipped subtasks are not failures. :func:`count_outcomes` is
the one place this is computed (swarm, stage, stage-done event, list).

Figures (see ``SwarmStats`` in common.proto):

* ``critical_path`` -- the dependency chain with the largest sum of actual
  subtask durations, root first: what really bounded the swarm's wall time;
  ``critical_path_time_ms`` is that sum and ``critical_path_steps`` the
  sub-agent steps along that same chain;
* ``critical_path_length`` -- the seed's formula: the sum over stages of the
  largest step count in the stage (LLM turns of a stage-barrier schedule);
* ``critical_steps`` -- Kimi's CriticalSteps, ``sum over stages t of
  (S_main(t) + max_i S_sub,i(t))``: the orchestrator's steps (it plans once,
  before the first stage) plus ``critical_path_length``;
* ``speedup_factor`` -- the measured sum of subtask durations over the
  swarm's wall time (the seed's ``sequential_time_estimate_ms /
  execution_time_ms``);
* ``rate_limits`` -- per governor key, this swarm's share: the governor's
  figures now minus those when the swarm started (:func:`swarm_rate_limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from swarmd.v1 import common_pb2

__all__ = [
    "Outcomes",
    "aggregate_result",
    "compute_stats",
    "count_outcomes",
    "heaviest_chain",
    "swarm_rate_limits",
]

_TERMINAL_WORDS = {
    common_pb2.SUB_TASK_STATUS_FAILED: "FAILED",
    common_pb2.SUB_TASK_STATUS_TIMED_OUT: "TIMED OUT",
    common_pb2.SUB_TASK_STATUS_CANCELLED: "CANCELLED",
    common_pb2.SUB_TASK_STATUS_SKIPPED: "SKIPPED",
}


def heaviest_chain(
    states: Sequence[common_pb2.SubTaskState], weight: Callable[[common_pb2.SubTaskState], float]
) -> tuple[float, list[str]]:
    """The dependency chain with the largest total ``weight``, root first.

    ``states`` must be acyclic (validated plans are); ties go to the chain
    that appears first in plan order.
    """
    by_id = {s.subtask.id: s for s in states}
    best: dict[str, float] = {}
    prev: dict[str, str | None] = {}

    def solve(node: str) -> float:
        # Iterative post-order so deep chains do not hit the recursion limit.
        stack = [node]
        while stack:
            current = stack[-1]
            deps = [d for d in by_id[current].subtask.dependencies if d in by_id]
            pending = [d for d in deps if d not in best]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if current in best:
                continue
            chosen: str | None = None
            top = 0.0
            for dep in deps:
                if chosen is None or best[dep] > top:
                    chosen, top = dep, best[dep]
            best[current] = top + weight(by_id[current])
            prev[current] = chosen
        return best[node]

    end: str | None = None
    total = 0.0
    for state in states:
        value = solve(state.subtask.id)
        if end is None or value > total:
            end, total = state.subtask.id, value
    chain: list[str] = []
    while end is not None:
        chain.append(end)
        end = prev[end]
    chain.reverse()
    return total, chain


def _ms(ts: object) -> int:
    return int(ts.ToMilliseconds())  # type: ignore[attr-defined]


@dataclass
class Outcomes:
    """How many subtasks ended each way (see the module docstring)."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0


def count_outcomes(states: Iterable[common_pb2.SubTaskState]) -> Outcomes:
    """Count ``states`` by outcome; running or pending ones count nowhere."""
    counts = Outcomes()
    for state in states:
        status = state.status
        if status == common_pb2.SUB_TASK_STATUS_COMPLETED:
            counts.completed += 1
        elif status in (common_pb2.SUB_TASK_STATUS_FAILED, common_pb2.SUB_TASK_STATUS_TIMED_OUT):
            counts.failed += 1
        elif status == common_pb2.SUB_TASK_STATUS_CANCELLED:
            counts.cancelled += 1
        elif status == common_pb2.SUB_TASK_STATUS_SKIPPED:
            counts.skipped += 1
    return counts


def swarm_rate_limits(
    now: Sequence[common_pb2.RateLimitStats], at_start: Sequence[common_pb2.RateLimitStats]
) -> list[common_pb2.RateLimitStats]:
    """This swarm's share of each governor: cumulative figures minus those at its start.

    Gauges (in flight, concurrency, delay, rate, remaining) are the governor's
    current values. Swarms that share a key at the same time share its figures.
    """
    before = {r.key: r for r in at_start}
    out = []
    for current in now:
        mine = common_pb2.RateLimitStats()
        mine.CopyFrom(current)
        base = before.get(current.key)
        if base is not None:
            mine.total_requests = max(0, current.total_requests - base.total_requests)
            mine.rate_limit_hits = max(0, current.rate_limit_hits - base.rate_limit_hits)
            mine.total_wait_ms = max(0, current.total_wait_ms - base.total_wait_ms)
        out.append(mine)
    return out


def compute_stats(
    states: Sequence[common_pb2.SubTaskState],
    *,
    execution_time_ms: int,
    orchestrator_steps: int,
    orchestrator_usage: common_pb2.TokenUsage,
    orchestrator_cost_usd: float,
    attempts_started: int,
    rate_limits: Sequence[common_pb2.RateLimitStats] = (),
) -> common_pb2.SwarmStats:
    """Statistics of a swarm from its subtask states (final or running)."""
    stats = common_pb2.SwarmStats(
        subagents_spawned=attempts_started,
        execution_time_ms=execution_time_ms,
        orchestrator_steps=orchestrator_steps,
    )
    stats.usage.CopyFrom(orchestrator_usage)
    stats.cost_usd = orchestrator_cost_usd
    stats.rate_limits.extend(rate_limits)
    counts = count_outcomes(states)
    hits = lookups = 0
    stages: dict[int, list[common_pb2.SubTaskState]] = {}
    for state in states:
        stages.setdefault(state.subtask.stage, []).append(state)
        result = state.result
        steps = result.steps or state.steps
        stats.total_tool_calls += result.tool_calls or state.tool_calls
        stats.total_steps += steps
        stats.sequential_time_estimate_ms += result.execution_time_ms
        stats.retries += result.retry_count
        stats.cost_usd += result.cost_usd
        for name in (
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
        ):
            setattr(stats.usage, name, getattr(stats.usage, name) + getattr(result.usage, name))
        if result.cache_key or result.cached:
            lookups += 1
            hits += int(result.cached)
    stats.total_steps += orchestrator_steps
    stats.subagents_completed = counts.completed
    stats.subagents_failed = counts.failed
    stats.subagents_cancelled = counts.cancelled
    stats.subagents_skipped = counts.skipped
    if execution_time_ms > 0:
        stats.speedup_factor = stats.sequential_time_estimate_ms / execution_time_ms
    stats.cache.hits = hits
    stats.cache.misses = lookups - hits
    stats.cache.hit_rate = hits / lookups if lookups else 0.0

    for stage in sorted(stages):
        members = stages[stage]
        step_counts = [m.result.steps or m.steps for m in members]
        started = [_ms(m.started_at) for m in members if m.HasField("started_at")]
        finished = [
            _ms(m.finished_at)
            for m in members
            if m.HasField("finished_at") and m.HasField("started_at")
        ]
        outcome = count_outcomes(members)
        stats.stages.add(
            stage=stage,
            subagent_count=len(members),
            max_steps=max(step_counts, default=0),
            total_steps=sum(step_counts),
            execution_time_ms=(max(finished) - min(started)) if started and finished else 0,
            completed=outcome.completed,
            failed=outcome.failed,
            cancelled=outcome.cancelled,
            skipped=outcome.skipped,
        )
        stats.critical_path_length += max(step_counts, default=0)

    if states:
        time_ms, chain = heaviest_chain(states, lambda s: s.result.execution_time_ms)
        by_id = {s.subtask.id: s for s in states}
        stats.critical_path_time_ms = int(time_ms)
        stats.critical_path.extend(chain)
        stats.critical_path_steps = sum(
            by_id[sid].result.steps or by_id[sid].steps for sid in chain
        )
    stats.critical_steps = orchestrator_steps + stats.critical_path_length
    return stats


def aggregate_result(states: Sequence[common_pb2.SubTaskState]) -> str:
    """The seed's aggregated text, with each subtask's name and specialty.

    Order: stage by stage, and within a stage by completion time (then plan
    order)::

        === Subtask 1: Survey the API [Researcher] ===
        <result>

        === Subtask 2: Fix the parser [Coder] (FAILED) ===
        Error: <error>
    """
    order = sorted(
        enumerate(states),
        key=lambda pair: (
            pair[1].subtask.stage,
            _ms(pair[1].finished_at) if pair[1].HasField("finished_at") else 2**62,
            pair[0],
        ),
    )
    parts: list[str] = []
    for position, (_, state) in enumerate(order, start=1):
        sub = state.subtask
        title = f"Subtask {position}: {sub.name or sub.id}"
        if sub.specialty:
            title += f" [{sub.specialty}]"
        if state.status == common_pb2.SUB_TASK_STATUS_COMPLETED:
            parts.append(f"=== {title} ===\n{state.result.result}\n\n")
        else:
            word = _TERMINAL_WORDS.get(state.status, "NOT RUN")
            error = state.result.error or state.status_reason or "Unknown error"
            parts.append(f"=== {title} ({word}) ===\nError: {error}\n\n")
    return "".join(parts)
