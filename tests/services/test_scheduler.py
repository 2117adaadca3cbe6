"""Dispatch order, dependency resolution, stagger, retry classification and backoff."""

from __future__ import annotations

import random

import grpc
import pytest

from swarmd.services.orchestrator.retry import (
    RETRYABLE_RPC_CODES,
    Backoff,
    classify_failure,
    is_transient_error,
)
from swarmd.services.orchestrator.scheduler import DependencyTracker, ReadyQueue, Stagger
from swarmd.services.orchestrator.swarm_config import DEFAULTS
from swarmd.v1 import common_pb2

SKIP = common_pb2.DEPENDENCY_FAILURE_POLICY_SKIP
RUN_ANYWAY = common_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY


def st(sid: str, *deps: str, priority: int = 0) -> common_pb2.SubTask:
    return common_pb2.SubTask(id=sid, instruction="x", dependencies=deps, priority=priority)


def drain(queue: ReadyQueue) -> list[str]:
    out = []
    while queue:
        out.append(queue.pop())
    return out


def test_ready_queue_is_critical_path_first_then_priority_then_plan_order() -> None:
    plan = [
        st("short", priority=9),  # chain of 1
        st("long"),  # starts a chain of 3
        st("mid", priority=1),  # chain of 2
        st("mid2", priority=2),  # chain of 2, higher priority
        st("tie"),  # chain of 1, same as short but lower priority
        st("l2", "long"),
        st("l3", "l2"),
        st("m2", "mid"),
        st("m3", "mid2"),
    ]
    queue = ReadyQueue(plan)
    for sid in ("short", "long", "mid", "mid2", "tie"):
        queue.push(sid)
    assert drain(queue) == ["long", "mid2", "mid", "short", "tie"]


def test_ready_queue_remove_and_duplicates() -> None:
    queue = ReadyQueue([st("a"), st("b"), st("c")])
    for sid in ("a", "b", "c", "a"):
        queue.push(sid)
    assert len(queue) == 3
    assert queue.remove("b") and not queue.remove("b")
    assert "b" not in queue
    assert drain(queue) == ["a", "c"]
    with pytest.raises(IndexError):
        queue.pop()


def test_tracker_readies_a_dependent_when_its_own_deps_are_done() -> None:
    plan = [st("a"), st("b"), st("c", "a"), st("d", "a", "b")]
    tracker = DependencyTracker(plan, SKIP)
    assert tracker.roots() == ["a", "b"]
    first = tracker.resolve("a", True)
    assert first.ready == ["c"] and first.skip == []
    second = tracker.resolve("b", True)
    assert second.ready == ["d"]
    assert tracker.resolve("b", True).ready == []  # idempotent


def test_tracker_skip_policy_and_run_anyway() -> None:
    plan = [st("a"), st("b", "a"), st("c", "b")]
    skip = DependencyTracker(plan, SKIP)
    assert skip.resolve("a", False).skip == ["b"]
    assert skip.resolve("b", False).skip == ["c"]  # the caller propagates
    anyway = DependencyTracker(plan, RUN_ANYWAY)
    assert anyway.resolve("a", False).ready == ["b"]


def test_tracker_leaves_finished_dependents_alone() -> None:
    tracker = DependencyTracker([st("a"), st("b", "a")], SKIP)
    assert tracker.resolve("a", False, finished=["b"]).skip == []


def test_tracker_restore_replays_finished_work() -> None:
    plan = [st("a"), st("b"), st("c", "a", "b")]
    tracker = DependencyTracker.restore(plan, SKIP, {"a": True})
    assert tracker.waiting_on("c") == {"b"}
    assert tracker.resolve("b", True).ready == ["c"]


async def test_stagger_keeps_a_minimum_gap() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    stagger = Stagger(0.25, clock=lambda: now[0], sleep=sleep)
    await stagger.wait()  # first: no wait
    await stagger.wait()
    now[0] += 0.1
    await stagger.wait()
    now[0] += 1.0
    await stagger.wait()  # long after: no wait
    assert slept == [0.25, pytest.approx(0.15)]


# -- retry classification ----------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Rate limit reached",
        "HTTP 429",
        "Too Many Requests",
        "read timeout",
        "request timed out",
        "Connection reset by peer",
        "connection refused",
        "Broken pipe",
        "network unreachable",
        "socket closed",
        "IO error",
        "503 Service Unavailable",
        "502 Bad Gateway",
        "504 Gateway Timeout",
        "model overloaded",
        "temporarily unavailable",
        "ratelimit exceeded",
    ],
)
def test_transient_messages(message: str) -> None:
    assert is_transient_error(message)


@pytest.mark.parametrize(
    "message", ["invalid api key", "400 bad request", "Sub-agent hit max steps (100)", ""]
)
def test_permanent_messages(message: str) -> None:
    assert not is_transient_error(message)


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        (
            common_pb2.SubTaskResult(failure_kind=common_pb2.FAILURE_KIND_MAX_STEPS, error="503"),
            common_pb2.FAILURE_KIND_MAX_STEPS,
        ),
        (
            common_pb2.SubTaskResult(error="upstream 502 bad gateway"),
            common_pb2.FAILURE_KIND_TRANSIENT,
        ),
        (common_pb2.SubTaskResult(error="tool crashed"), common_pb2.FAILURE_KIND_PERMANENT),
        (
            common_pb2.SubTaskResult(status=common_pb2.SUB_TASK_STATUS_TIMED_OUT),
            common_pb2.FAILURE_KIND_TIMEOUT,
        ),
        (
            common_pb2.SubTaskResult(status=common_pb2.SUB_TASK_STATUS_CANCELLED),
            common_pb2.FAILURE_KIND_CANCELLED,
        ),
    ],
)
def test_classify_failure(result: common_pb2.SubTaskResult, kind: int) -> None:
    assert classify_failure(result) == kind


def test_retryable_rpc_codes() -> None:
    assert grpc.StatusCode.UNAVAILABLE in RETRYABLE_RPC_CODES
    assert grpc.StatusCode.DEADLINE_EXCEEDED in RETRYABLE_RPC_CODES
    assert grpc.StatusCode.INVALID_ARGUMENT not in RETRYABLE_RPC_CODES


def test_backoff_jitter_bounds() -> None:
    backoff = Backoff(base_ms=500, max_ms=3000, rng=random.Random(7))
    assert [backoff.ceiling_ms(n) for n in range(5)] == [500, 1000, 2000, 3000, 3000]
    for retry in range(8):
        for _ in range(200):
            delay = backoff.delay_ms(retry)
            assert backoff.ceiling_ms(retry) / 2 <= delay <= backoff.ceiling_ms(retry)
    assert backoff.ceiling_ms(10_000) == 3000  # no overflow


def test_default_backoff_spans_a_server_restart() -> None:
    """The default three retries wait 3.5 to 7 s in all (a restart takes 3 to 9 s), the first at most 1 s."""

    class Edge(random.Random):
        def __init__(self, high: bool) -> None:
            super().__init__()
            self.high = high

        def uniform(self, a: float, b: float) -> float:
            return b if self.high else a

    retries = DEFAULTS["max_retries"]
    base, cap = DEFAULTS["base_delay_ms"], DEFAULTS["max_delay_ms"]
    low = [Backoff(base, cap, Edge(False)).delay_ms(n) for n in range(retries)]  # type: ignore[arg-type]
    high = [Backoff(base, cap, Edge(True)).delay_ms(n) for n in range(retries)]  # type: ignore[arg-type]
    assert sum(low) >= 3000 and high[0] <= 1000


def test_backoff_uses_the_injected_rng() -> None:
    class Fixed(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert Backoff(100, 1000, Fixed()).delay_ms(2) == 400
