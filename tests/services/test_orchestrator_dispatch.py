"""Dependency-driven dispatch against the real executor service (fake plugin)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal
from helpers import git

from swarmd.v1 import common_pb2


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


async def run(services, *subtasks, **config):  # type: ignore[no-untyped-def]
    reply = await services.submit(plan=plan(*subtasks), config=fast_config(**config))
    return await wait_terminal(services, reply.swarm.id, timeout=30)


async def test_diamond_dependent_starts_when_its_own_dependencies_finish(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask("a", duration_ms=20),
        subtask("fast", "a", duration_ms=20),
        subtask("slow", "a", duration_ms=400),
        subtask("after_fast", "fast", duration_ms=20),
        subtask("join", "fast", "slow", duration_ms=20),
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    j = JOURNAL
    assert j.first_start("fast") >= j.last_end("a")
    # No stage barrier: after_fast (stage 2) runs while slow (stage 1) is still going.
    assert j.first_start("after_fast") >= j.last_end("fast")
    assert j.last_end("after_fast") < j.last_end("slow")
    assert j.first_start("join") >= j.last_end("slow")
    assert [s.subtask.stage for s in swarm.subtasks] == [0, 1, 1, 2, 2]


async def test_wide_dag_has_no_stage_barrier(services) -> None:  # type: ignore[no-untyped-def]
    fast = [subtask(f"f{i}", duration_ms=20) for i in range(6)]
    next_ = [subtask(f"g{i}", f"f{i}", duration_ms=20) for i in range(6)]
    swarm = await run(
        services,
        subtask("slow", duration_ms=1500),
        *fast,
        *next_,
        subtask("h", "slow", duration_ms=10),
        max_concurrent=16,
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    for i in range(6):
        assert JOURNAL.first_start(f"g{i}") >= JOURNAL.last_end(f"f{i}")
        # g_i waits for f_i alone, not for the whole first stage (slow).
        assert JOURNAL.first_start(f"g{i}") < JOURNAL.last_end("slow")
    assert JOURNAL.first_start("h") >= JOURNAL.last_end("slow")
    assert all(len(JOURNAL.for_subtask(s.subtask.id)) == 1 for s in swarm.subtasks), "each ran once"


async def test_concurrency_cap_holds_with_fifty_subtasks(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services, *[subtask(f"s{i:02d}", duration_ms=25) for i in range(50)], max_concurrent=5
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert swarm.stats.subagents_completed == 50
    assert JOURNAL.max_running == 5
    # Check the cap from the recorded intervals too.
    points = sorted(
        [(a.start, 1) for a in JOURNAL.attempts] + [(a.end, -1) for a in JOURNAL.attempts]
    )
    level = peak = 0
    for _, delta in points:
        level += delta
        peak = max(peak, level)
    assert peak <= 5


async def test_start_stagger_keeps_a_minimum_gap(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services, *[subtask(f"s{i}", duration_ms=10) for i in range(4)], request_delay_ms=60
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    starts = sorted(a.start for a in JOURNAL.attempts)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Starts are 60 ms apart when dispatched; the trip to the executor adds a
    # little jitter to each, which can shorten one gap but not the span.
    assert starts[-1] - starts[0] >= 3 * 0.06 - 0.01 and min(gaps) >= 0.03, gaps


async def test_ready_subtasks_go_critical_path_first_then_priority(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        common_pb2.SubTask(id="lone", instruction="x", priority=5),
        common_pb2.SubTask(id="lone_low", instruction="x", priority=1),
        common_pb2.SubTask(id="chain", instruction="x"),
        common_pb2.SubTask(id="chain2", instruction="x", dependencies=["chain"]),
        max_concurrent=1,
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    # chain heads the longest chain; once it is done, chain2 (priority 0)
    # competes with the lone subtasks on priority alone.
    assert [a.subtask_id for a in JOURNAL.attempts] == ["chain", "lone", "lone_low", "chain2"]


async def test_failed_dependency_skips_dependents_with_the_reason(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask("a", outcome="fail", error="compile_error"),
        subtask("b", "a"),
        subtask("c", "b"),
        subtask("free", duration_ms=120),
    )
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert states["a"].status == common_pb2.SUB_TASK_STATUS_FAILED
    assert states["b"].status == common_pb2.SUB_TASK_STATUS_SKIPPED
    assert states["c"].status == common_pb2.SUB_TASK_STATUS_SKIPPED
    assert states["free"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert "dependency 'a' (a) failed: compile error" in states["b"].status_reason
    assert "dependency 'b' (b) skipped" in states["c"].status_reason
    assert states["b"].result.failure_kind == common_pb2.FAILURE_KIND_DEPENDENCY_FAILED
    assert {a.subtask_id for a in JOURNAL.attempts} == {"a", "free"}
    assert swarm.stats.subagents_failed == 1 and swarm.stats.subagents_skipped == 2
    assert "=== Subtask 2: free ===\noutput of free" in swarm.result
    assert "=== Subtask 3: b (SKIPPED) ===\nError: skipped: dependency 'a'" in swarm.result


async def test_run_anyway_passes_the_failure_into_the_context(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask("a", outcome="fail", error="boom"),
        subtask("b", "a"),
        dependency_failure_policy=common_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
    )
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert states["b"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert swarm.state == common_pb2.SWARM_STATE_FAILED  # a failed
    (dep,) = JOURNAL.for_subtask("b")[0].request.dependencies
    assert (dep.subtask_id, dep.success, dep.error) == ("a", False, "boom")


async def test_request_carries_dependencies_and_workspace(services, git_repo: Path) -> None:  # type: ignore[no-untyped-def]
    head = git(git_repo, "rev-parse", "HEAD").strip()
    reviewer = subtask("review", name="Review", output="looks good")
    reviewer.read_only = True
    swarm = await run(
        services,
        subtask("code", name="Code", output="patched", commit="abc123"),
        reviewer,
        subtask("final", "code", "review", name="Final"),
        repo_path=str(git_repo),
        worktree_enabled=True,
        auto_merge=False,
        max_steps_per_subagent=7,
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert swarm.base_commit == head
    code = JOURNAL.for_subtask("code")[0].request
    review = JOURNAL.for_subtask("review")[0].request
    final = JOURNAL.for_subtask("final")[0].request
    assert code.workspace.worktree and code.workspace.branch == f"swarmd/{swarm.id}/code"
    assert code.workspace.base_commit == head and code.workspace.repo_path == str(git_repo)
    assert not code.workspace.auto_merge
    assert not review.workspace.worktree and review.workspace.branch == ""
    assert code.subtask.max_steps == 7 and code.attempt == 1
    assert code.config.executor == "fake" and code.config.max_total_tool_calls == 1500
    assert code.orchestrator_address == services.orchestrator_host.address
    assert code.result_store_address == services.store_address
    deps = [(d.subtask_id, d.name, d.result, d.success, d.commit) for d in final.dependencies]
    assert deps == [
        ("code", "Code", "patched", True, "abc123"),
        ("review", "Review", "looks good", True, ""),
    ]


async def test_event_catalogue_of_a_run(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services, subtask("a", steps=2, tool_calls=3), subtask("b", "a", outcome="fail")
    )
    events = await services.events(swarm.id)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert swarm.last_sequence == len(events)
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds[0] == "started" and kinds[1] == "decomposed" and kinds[-1] == "complete"
    for kind in (
        "subtask_update",
        "agent_started",
        "agent_tool_call",
        "agent_tool_call_detail",
        "agent_step",
        "agent_output",
        "agent_error",
        "agent_complete",
        "stage_complete",
    ):
        assert kind in kinds, kind
    assert kinds.count("agent_tool_call") == 3 and kinds.count("agent_step") == 3
    assert kinds.count("agent_started") == 2
    complete = events[-1].complete
    assert not complete.success and complete.state == common_pb2.SWARM_STATE_FAILED
    assert complete.stats.total_tool_calls == 3
    error = next(e.agent_error for e in events if e.HasField("agent_error"))
    assert error.subtask_id == "b" and error.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    stage_events = [e.stage_complete for e in events if e.HasField("stage_complete")]
    assert [(s.stage, s.completed, s.failed) for s in stage_events] == [(0, 1, 0), (1, 0, 1)]
