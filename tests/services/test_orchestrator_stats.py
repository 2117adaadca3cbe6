"""Statistics: critical paths (steps and wall time), speedup, stages, spans."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal
from google.protobuf import timestamp_pb2

from swarmd.clients.cli.render import Progress, format_summary
from swarmd.services.orchestrator.stats import (
    aggregate_result,
    compute_stats,
    count_outcomes,
    heaviest_chain,
    swarm_rate_limits,
)
from swarmd.v1 import common_pb2

COMPLETED = common_pb2.SUB_TASK_STATUS_COMPLETED
FAILED = common_pb2.SUB_TASK_STATUS_FAILED


def ts(ms: int) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromMilliseconds(ms)
    return out


def state(
    sid: str,
    *deps: str,
    stage: int,
    ms: int,
    steps: int,
    start: int,
    status: int = COMPLETED,
    specialty: str = "",
) -> common_pb2.SubTaskState:
    return common_pb2.SubTaskState(
        subtask=common_pb2.SubTask(
            id=sid, name=sid.upper(), specialty=specialty, dependencies=deps, stage=stage
        ),
        status=status,
        started_at=ts(start),
        finished_at=ts(start + ms),
        result=common_pb2.SubTaskResult(
            subtask_id=sid,
            success=status == COMPLETED,
            result=f"result {sid}",
            error="" if status == COMPLETED else "it broke",
            steps=steps,
            tool_calls=steps * 2,
            execution_time_ms=ms,
            retry_count=1 if sid == "c" else 0,
            usage=common_pb2.TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
            cost_usd=0.25,
        ),
    )


# a(100ms, 3 steps) -> b(400ms, 2 steps) -> d(100ms, 4 steps)
# a -> c(200ms, 9 steps) -> d ;  e(50ms, 1 step) alone, failed
STATES = [
    state("a", stage=0, ms=100, steps=3, start=0),
    state("b", "a", stage=1, ms=400, steps=2, start=100),
    state("c", "a", stage=1, ms=200, steps=9, start=100, specialty="Coder"),
    state("d", "b", "c", stage=2, ms=100, steps=4, start=500),
    state("e", stage=0, ms=50, steps=1, start=0, status=FAILED),
]


def test_hand_computed_statistics() -> None:
    stats = compute_stats(
        STATES,
        execution_time_ms=700,
        orchestrator_steps=1,
        orchestrator_usage=common_pb2.TokenUsage(
            prompt_tokens=100, completion_tokens=50, total_tokens=150
        ),
        orchestrator_cost_usd=0.5,
        attempts_started=6,
    )
    # Wall-time critical path: a + b + d = 600 ms (a + c + d is 400).
    assert list(stats.critical_path) == ["a", "b", "d"]
    assert stats.critical_path_time_ms == 600
    # Seed formula: max steps per stage, summed: max(3,1) + max(2,9) + 4 = 16.
    assert stats.critical_path_length == 16
    # Steps along that same chain: 3 + 2 + 4.
    assert stats.critical_path_steps == 9
    # Kimi's CriticalSteps: 1 (orchestrator) + the per-stage maxima 3 + 9 + 4 = 17.
    assert stats.critical_steps == 17
    assert stats.sequential_time_estimate_ms == 850
    assert stats.speedup_factor == pytest.approx(850 / 700)
    assert stats.total_steps == 3 + 2 + 9 + 4 + 1 + 1
    assert stats.total_tool_calls == 2 * 19
    assert (stats.subagents_spawned, stats.subagents_completed, stats.subagents_failed) == (6, 4, 1)
    assert stats.retries == 1
    assert stats.usage.total_tokens == 150 + 5 * 15 and stats.cost_usd == pytest.approx(
        0.5 + 5 * 0.25
    )
    stages = [
        (
            s.stage,
            s.subagent_count,
            s.max_steps,
            s.total_steps,
            s.execution_time_ms,
            s.completed,
            s.failed,
        )
        for s in stats.stages
    ]
    assert stages == [(0, 2, 3, 4, 100, 1, 1), (1, 2, 9, 11, 400, 2, 0), (2, 1, 4, 4, 100, 1, 0)]


def test_heaviest_chain_breaks_ties_in_plan_order() -> None:
    states = [
        state("x", stage=0, ms=10, steps=1, start=0),
        state("y", stage=0, ms=10, steps=1, start=0),
    ]
    assert heaviest_chain(states, lambda s: s.result.execution_time_ms) == (10, ["x"])


def test_aggregated_text_has_names_specialties_and_failures() -> None:
    text = aggregate_result(STATES)
    assert text.startswith(
        "=== Subtask 1: E (FAILED) ===\nError: it broke\n\n=== Subtask 2: A ===\nresult a\n\n"
    )
    assert "=== Subtask 3: C [Coder] ===\nresult c\n\n=== Subtask 4: B ===" in text
    assert text.endswith("=== Subtask 5: D ===\nresult d\n\n")


async def test_stats_and_spans_of_a_real_run(tmp_path: Path) -> None:
    async with serve_swarm_services(tmp_path) as services:
        reply = await services.submit(
            plan=plan(
                subtask("a", duration_ms=40, steps=3),
                subtask("b", "a", duration_ms=250, steps=2),
                subtask("c", "a", duration_ms=40, steps=9),
                subtask("d", "b", "c", duration_ms=40, steps=4),
            ),
            config=fast_config(),
        )
        swarm = await wait_terminal(services, reply.swarm.id)
        states = {s.subtask.id: s for s in swarm.subtasks}
        stats = swarm.stats
        assert list(stats.critical_path) == ["a", "b", "d"]
        assert stats.critical_path_time_ms == sum(states[s].result.execution_time_ms for s in "abd")
        assert 330 <= stats.critical_path_time_ms < 1000
        assert stats.critical_path_length == 3 + 9 + 4
        assert stats.critical_steps == 0 + 3 + 9 + 4
        assert stats.execution_time_ms >= stats.critical_path_time_ms
        assert stats.speedup_factor == pytest.approx(
            stats.sequential_time_estimate_ms / stats.execution_time_ms
        )
        assert [states[s].on_critical_path for s in "abcd"] == [True, True, False, True]

        spans = {s.name: s for s in services.spans.get_finished_spans() if s.name == "swarmd.swarm"}
        swarm_span = spans["swarmd.swarm"]
        subtask_spans = {
            s.attributes["swarmd.subtask_id"]: s
            for s in services.spans.get_finished_spans()
            if s.name == "swarmd.subtask"
        }
        assert set(subtask_spans) == set("abcd")
        for sid, span in subtask_spans.items():
            assert span.attributes["swarmd.critical_path"] is (sid != "c")
            assert span.parent is not None and span.parent.span_id == swarm_span.context.span_id
            assert span.context.trace_id == swarm_span.context.trace_id
        assert subtask_spans["b"].end_time - subtask_spans["b"].start_time >= 250_000_000
        # The executor's server spans joined the swarm's trace.
        executed = [
            s for s in services.executor_spans.get_finished_spans() if "ExecuteSubTask" in s.name
        ]
        assert len(executed) == 4
        assert {s.context.trace_id for s in executed} == {swarm_span.context.trace_id}


def _stats(states: list[common_pb2.SubTaskState], **kw: int) -> common_pb2.SwarmStats:
    return compute_stats(
        states,
        execution_time_ms=kw.get("wall", 1000),
        orchestrator_steps=kw.get("orchestrator", 0),
        orchestrator_usage=common_pb2.TokenUsage(),
        orchestrator_cost_usd=0.0,
        attempts_started=len(states),
    )


def test_path_steps_and_critical_steps_are_told_apart_in_the_summary() -> None:
    # a -> d -> f is the chain by time (3 + 3 + 3 steps); b in stage 0 takes 4 steps but 10 ms.
    states = [
        state("a", stage=0, ms=100, steps=3, start=0),
        state("b", stage=0, ms=10, steps=4, start=0),
        state("d", "a", stage=1, ms=100, steps=3, start=100),
        state("f", "d", stage=2, ms=100, steps=3, start=200),
    ]
    stats = _stats(states, wall=320)
    assert list(stats.critical_path) == ["a", "d", "f"]
    assert (stats.critical_path_steps, stats.critical_path_length, stats.critical_steps) == (
        9,
        10,
        10,
    )
    text = format_summary(common_pb2.Swarm(id="s1", subtasks=states, stats=stats))
    assert "Critical Path: 9 steps, 0.30s wall (a -> d -> f)" in text
    assert "CriticalSteps: 10 (orchestrator 0 + per-stage maxima 4+3+3)" in text


def test_one_subtask_has_as_many_critical_steps_as_steps() -> None:
    stats = _stats([state("only", stage=0, ms=50, steps=4, start=0)])
    assert (stats.critical_path_steps, stats.critical_steps) == (4, 4)
    assert (
        _stats([state("only", stage=0, ms=50, steps=4, start=0)], orchestrator=2).critical_steps
        == 6
    )


def test_skipped_and_cancelled_are_not_failures() -> None:
    states = [
        state("a", stage=0, ms=10, steps=1, start=0, status=FAILED),
        state(
            "b", "a", stage=1, ms=0, steps=0, start=10, status=common_pb2.SUB_TASK_STATUS_SKIPPED
        ),
        state("c", stage=0, ms=5, steps=1, start=0, status=common_pb2.SUB_TASK_STATUS_CANCELLED),
        state("d", stage=0, ms=5, steps=1, start=0, status=common_pb2.SUB_TASK_STATUS_TIMED_OUT),
        state("e", stage=0, ms=5, steps=1, start=0),
    ]
    counts = count_outcomes(states)
    assert (counts.completed, counts.failed, counts.cancelled, counts.skipped) == (1, 2, 1, 1)
    stats = _stats(states)
    assert (stats.subagents_failed, stats.subagents_cancelled, stats.subagents_skipped) == (2, 1, 1)
    stages = [(s.completed, s.failed, s.cancelled, s.skipped) for s in stats.stages]
    assert stages == [(1, 2, 1, 0), (0, 0, 0, 1)]
    text = format_summary(common_pb2.Swarm(id="s1", subtasks=states, stats=stats))
    assert "Subtasks: 5 (1 completed, 2 failed, 1 cancelled, 1 skipped)" in text


def test_the_rate_limit_line_shows_this_swarms_share() -> None:
    key = "openai|http://127.0.0.1:9/v1|fake|2d711642b726"
    before = [
        common_pb2.RateLimitStats(key=key, total_requests=53, rate_limit_hits=2, total_wait_ms=100)
    ]
    now = [
        common_pb2.RateLimitStats(
            key=key, total_requests=135, rate_limit_hits=5, total_wait_ms=400, concurrency_limit=64
        ),
        common_pb2.RateLimitStats(key="anthropic||claude|ab", total_requests=7),
    ]
    mine = swarm_rate_limits(now, before)
    assert [(r.total_requests, r.rate_limit_hits, r.total_wait_ms) for r in mine] == [
        (82, 3, 300),
        (7, 0, 0),
    ]
    stats = _stats([state("a", stage=0, ms=5, steps=1, start=0)])
    stats.rate_limits.extend(mine)
    text = format_summary(common_pb2.Swarm(id="s1", stats=stats))
    assert "Rate limit openai/fake at http://127.0.0.1:9/v1: 82 requests, 3 x 429" in text
    assert "2d711642b726" not in text


def test_watch_lines_carry_the_events_time_and_sequence() -> None:
    import io

    out = io.StringIO()
    progress = Progress(out, live=False)
    event = common_pb2.SwarmEvent(swarm_id="s1", sequence=7, time=ts(1_600_000_000_123))
    event.stage_complete.CopyFrom(
        common_pb2.StageComplete(stage=1, completed=0, failed=0, skipped=1)
    )
    progress.handle(event)
    import datetime as dt

    when = dt.datetime.fromtimestamp(1_600_000_000.123).strftime("%H:%M:%S.%f")[:-3]
    assert out.getvalue() == f"{when} #7 stage 1 done: 0 completed, 0 failed, 1 skipped\n"


async def test_stages_are_announced_in_order_even_when_a_later_one_finishes_first(
    tmp_path: Path,
) -> None:
    async with serve_swarm_services(tmp_path) as services:
        reply = await services.submit(
            plan=plan(
                subtask("slow", duration_ms=400, steps=1),
                subtask("quick", duration_ms=10, steps=1),
                subtask("next", "quick", duration_ms=10, steps=1),
            ),
            config=fast_config(),
        )
        swarm = await wait_terminal(services, reply.swarm.id)
        states = {s.subtask.id: s for s in swarm.subtasks}
        assert (
            states["next"].finished_at.ToMilliseconds()
            < states["slow"].finished_at.ToMilliseconds()
        )
        events = await services.events(swarm.id)
        stages = [e.stage_complete.stage for e in events if e.HasField("stage_complete")]
        assert stages == [0, 1]
