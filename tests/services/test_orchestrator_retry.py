"""Retries only for transient failures, jittered backoff, wall-clock timeouts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.v1 import common_pb2

BASE_MS, MAX_MS = 400, 1000


class RecordingSleep:
    """Backoff sleeps return at once; the asked delays are kept."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def services(tmp_path: Path, sleep: RecordingSleep):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path, sleep=sleep, rng=random.Random(1234)) as served:
        yield served


async def run(services, *subtasks, **config):  # type: ignore[no-untyped-def]
    config.setdefault("base_delay_ms", BASE_MS)
    config.setdefault("max_delay_ms", MAX_MS)
    reply = await services.submit(plan=plan(*subtasks), config=fast_config(**config))
    swarm = await wait_terminal(services, reply.swarm.id, timeout=30)
    return swarm, {s.subtask.id: s for s in swarm.subtasks}


async def test_transient_failures_are_retried_with_jittered_backoff(services, sleep) -> None:  # type: ignore[no-untyped-def]
    swarm, states = await run(
        services, subtask("flaky", fail_attempts=3, kind="transient", error="503_overloaded")
    )
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    flaky = states["flaky"]
    assert flaky.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert flaky.result.retry_count == 3 and flaky.attempt == 4
    assert [a.attempt for a in JOURNAL.for_subtask("flaky")] == [1, 2, 3, 4]
    assert flaky.result.steps == 4  # summed over attempts
    assert len(sleep.delays) == 3
    for n, delay in enumerate(sleep.delays):
        ceiling = min(MAX_MS, BASE_MS * 2**n) / 1000
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(sleep.delays)) == 3  # jittered, not fixed
    events = await services.events(swarm.id)
    retries = [e.retry_scheduled for e in events if e.HasField("retry_scheduled")]
    assert [r.next_attempt for r in retries] == [2, 3, 4]
    assert [r.delay_ms for r in retries] == [int(d * 1000) for d in sleep.delays]
    assert all(r.reason == "503 overloaded" for r in retries)
    assert swarm.stats.retries == 3 and swarm.stats.subagents_spawned == 4


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        ({"kind": "permanent"}, common_pb2.FAILURE_KIND_PERMANENT),
        (
            {"kind": "max_steps", "error": "Sub-agent_hit_max_steps_(100)"},
            common_pb2.FAILURE_KIND_MAX_STEPS,
        ),
        (
            {"kind": "budget", "error": "token_budget_exhausted"},
            common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED,
        ),
        (
            {"kind": "unspecified", "error": "syntax_error_in_main.py"},
            common_pb2.FAILURE_KIND_PERMANENT,
        ),
        ({"rpc_error": "invalid"}, common_pb2.FAILURE_KIND_PERMANENT),
    ],
)
async def test_non_transient_failures_are_not_retried(services, sleep, script, kind) -> None:  # type: ignore[no-untyped-def]
    swarm, states = await run(services, subtask("x", outcome="fail", **script))
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert len(JOURNAL.for_subtask("x")) <= 1
    assert states["x"].result.failure_kind == kind
    assert states["x"].result.retry_count == 0
    assert sleep.delays == []


async def test_unclassified_transient_text_is_retried(services, sleep) -> None:  # type: ignore[no-untyped-def]
    _, states = await run(
        services,
        subtask("x", fail_attempts=1, kind="unspecified", error="upstream_connection_reset"),
    )
    assert (
        states["x"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
        and states["x"].result.retry_count == 1
    )


@pytest.mark.parametrize("code", ["unavailable", "deadline"])
async def test_executor_unavailable_is_retried(services, sleep, code: str) -> None:  # type: ignore[no-untyped-def]
    swarm, states = await run(services, subtask("x", fail_attempts=2, rpc_error=code))
    assert states["x"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert states["x"].result.retry_count == 2 and len(sleep.delays) == 2
    events = await services.events(swarm.id)
    retry = next(e.retry_scheduled for e in events if e.HasField("retry_scheduled"))
    assert "executor call failed" in retry.reason


async def test_retries_stop_at_max_retries(services, sleep) -> None:  # type: ignore[no-untyped-def]
    _, states = await run(services, subtask("x", outcome="fail", kind="transient"), max_retries=1)
    assert states["x"].status == common_pb2.SUB_TASK_STATUS_FAILED
    assert states["x"].result.retry_count == 1 and len(JOURNAL.for_subtask("x")) == 2
    assert len(sleep.delays) == 1

    _, states = await run(services, subtask("y", outcome="fail", kind="transient"), max_retries=0)
    assert states["y"].result.retry_count == 0 and len(sleep.delays) == 1


async def test_wall_clock_timeout_times_out_the_subtask(services, sleep) -> None:  # type: ignore[no-untyped-def]
    swarm, states = await run(
        services, subtask("stuck", hang=True), subtask("ok"), subtask_timeout_secs=1
    )
    stuck = states["stuck"]
    assert stuck.status == common_pb2.SUB_TASK_STATUS_TIMED_OUT
    assert stuck.result.failure_kind == common_pb2.FAILURE_KIND_TIMEOUT
    assert "wall-clock timeout of 1s" in stuck.status_reason
    assert states["ok"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert sleep.delays == []  # a timeout is not retried
    (attempt,) = JOURNAL.for_subtask("stuck")
    assert attempt.end is not None and attempt.outcome in (
        "aborted",
        "cancelled",
    )  # the sub-agent stopped
    assert swarm.stats.subagents_failed == 1
