"""Dependents dispatched on their parents' WorkCommitted events (real services, fake executor).

The fake executor reports a parent's commit at the start of its attempt, as a
mutating sub-agent does before its merge; the attempt then runs on. Attempts
are journaled, so the order is read from what the executor was asked, not
from clocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.v1 import common_pb2


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


async def run(services, *subtasks, **config):  # type: ignore[no-untyped-def]
    reply = await services.submit(plan=plan(*subtasks), config=fast_config(**config))
    return await wait_terminal(services, reply.swarm.id, timeout=30)


def dependency(sid: str, attempt: int = 0) -> common_pb2.DependencyResult:  # type: ignore[name-defined]
    (dep,) = JOURNAL.for_subtask(sid)[attempt].request.dependencies
    return dep


async def test_a_dependent_starts_on_its_parents_commit_with_the_commit_marked_pending(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask("parent", committed="c1", commit="c1", output="parent says hi", duration_ms=2000),
        subtask("child", "parent", duration_ms=20),
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    # Asked to run while the parent's attempt was still going (it had only committed).
    assert JOURNAL.first_start("child") < JOURNAL.last_end("parent")
    dep = dependency("child")
    assert (dep.commit, dep.merge_pending, dep.success, dep.result) == ("c1", True, True, "parent says hi")
    assert len(JOURNAL.for_subtask("child")) == 1


async def test_a_parent_that_fails_after_committing_skips_its_running_dependent(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask("parent", committed="c1", outcome="fail", error="merge_conflicted", duration_ms=1000),
        subtask("child", "parent", hang=True),
    )
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert states["child"].status == common_pb2.SUB_TASK_STATUS_SKIPPED
    assert "dependency 'parent' (parent) failed" in states["child"].status_reason
    # It had been started from the commit, and was stopped.
    [attempt] = JOURNAL.for_subtask("child")
    assert attempt.outcome == "cancelled"


async def test_a_parent_retried_after_committing_dispatches_its_dependent_again_on_the_final_commit(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask(
            "parent",
            committed="c{attempt}",
            commit="c{attempt}",
            fail_attempts=1,
            kind="transient",
            duration_ms=150,
        ),
        subtask("child", "parent", hang_attempts=1, duration_ms=20),
        base_delay_ms=1,
        max_delay_ms=2,
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    states = {s.subtask.id: s for s in swarm.subtasks}
    assert states["child"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    attempts = JOURNAL.for_subtask("child")
    assert (dependency("child", 0).commit, dependency("child", 0).merge_pending) == ("c1", True)
    assert attempts[0].outcome == "cancelled"
    # The run that counts started from the parent's final commit.
    assert dependency("child", -1).commit == "c2"
    assert attempts[-1].outcome == "success"


async def test_run_anyway_waits_for_the_parents_outcome(services) -> None:  # type: ignore[no-untyped-def]
    swarm = await run(
        services,
        subtask("parent", committed="c1", commit="c1", duration_ms=200),
        subtask("child", "parent", duration_ms=20),
        dependency_failure_policy=common_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert JOURNAL.first_start("child") >= JOURNAL.last_end("parent")
    assert not dependency("child").merge_pending
