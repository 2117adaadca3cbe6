"""Properties of the rate governor under random, conflicting headers, on virtual time.

Hypothesis plays random sequences of responses (200s, 429s, 503s, 500s)
whose rate-limit headers are drawn independently of each other and of what
came before: limits, remaining counts and resets of unrelated windows,
Retry-After in seconds, milliseconds or as a date, timestamps in the past,
values that do not parse. Calls are granted, reported in random order and
at random moments, with a caller waiting in line meanwhile. Two properties
hold whatever the headers say:

* **Safety**: a permit is never granted while the calls in flight fill the
  concurrency limit (nor beyond ``max_concurrency``).
* **Liveness**: a caller in line with a free slot is granted no later than
  the longest wait the most recent response justifies (its Retry-After, its
  resets plus their tenth of guard, the pause it imposed), counted from that
  response or from the caller's arrival, plus the ceiling.

Time is virtual (:mod:`virtual_time`): no test sleeps for real, and a stall
of hours is found in microseconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from governor_fixtures import ERROR, KEY, RATE_LIMITED, SUCCESS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virtual_time import run_virtual, settle

from swarmd.services.orchestrator.governor import GovernorSettings, Permit, RateGovernor
from swarmd.services.orchestrator.ratelimit_headers import parse_headers

T = TypeVar("T")

EPOCH = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
CEILING = 60.0
MAX_PAUSE = 900.0
EPS = 1e-6
VIRTUAL_BUDGET = 1e6  # seconds of virtual time any example may take

_counts = st.one_of(st.none(), st.integers(0, 20_000).map(str), st.sampled_from(["-1", "lots", "1e9"]))
_durations = st.one_of(
    st.none(),
    st.sampled_from(["0s", "20ms", "500ms", "1s", "6m0s", "1h", "86400s", "2.5", "x", "-3s"]),
)
_retry_after = st.one_of(
    st.none(),
    st.sampled_from(["0", "1", "2", "30", "61", "120", "3600", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)


@dataclass(frozen=True)
class Response:
    """One answer: status and raw headers; ``reset_in`` is an absolute reset's offset."""

    status: int
    headers: dict[str, str]
    reset_in: float | None


@st.composite
def responses(draw: st.DrawFn) -> Response:
    status = draw(st.sampled_from([200, 200, 200, 429, 429, 503, 500]))
    headers: dict[str, str] = {}
    for name, values in (
        ("x-ratelimit-limit-requests", _counts),
        ("x-ratelimit-remaining-requests", _counts),
        ("x-ratelimit-reset-requests", _durations),
        ("x-ratelimit-limit-tokens", _counts),
        ("x-ratelimit-remaining-tokens", _counts),
        ("x-ratelimit-reset-tokens", _durations),
        ("retry-after", _retry_after),
        ("retry-after-ms", st.one_of(st.none(), st.sampled_from(["0", "150", "2500", "70000"]))),
    ):
        value = draw(values)
        if value is not None:
            headers[name] = value
    # Sometimes a second dialect too, with a timestamp reset (maybe past).
    reset_in = draw(st.one_of(st.none(), st.sampled_from([-5.0, 1.0, 30.0, 400.0, 5000.0])))
    if reset_in is not None:
        headers["anthropic-ratelimit-requests-remaining"] = str(draw(st.integers(0, 50)))
    return Response(status, headers, reset_in)


@dataclass(frozen=True)
class Step:
    """Take up to ``take`` permits, maybe put a caller in line, wait ``delay``, report one."""

    take: int
    queue_a_caller: bool
    delay: float
    pick: int  # which permit in flight the response is for
    response: Response


steps = st.builds(
    Step,
    take=st.integers(0, 4),
    queue_a_caller=st.booleans(),
    delay=st.one_of(st.just(0.0), st.floats(0.0, 20.0), st.sampled_from([61.0, 301.0])),
    pick=st.integers(0, 7),
    response=responses(),
)


def justified(headers: dict[str, str], at: datetime, pause: float) -> float:
    """The longest wait one response justifies by its own words."""
    snap = parse_headers(headers, now=at)
    waits = [pause]
    if snap.retry_after_s is not None:
        waits.append(min(snap.retry_after_s, MAX_PAUSE))
    for reset in (snap.reset_requests_s, snap.reset_tokens_s):
        if reset is not None:
            waits.append(1.1 * min(reset, MAX_PAUSE))
    return max(waits)


class Driver:
    """Plays steps against one governor, checking both properties as it goes."""

    def __init__(self, gov: RateGovernor, clock: Callable[[], float]) -> None:
        self.gov = gov
        self.clock = clock
        self.held: list[Permit] = []
        self.last_at = -float("inf")  # the most recent response ...
        self.last_justified = 0.0  # ... and the wait it justified
        self.waiter: asyncio.Task[tuple[Permit, float]] | None = None
        self.waiter_since = 0.0  # the waiter's arrival, or when a slot was seen free for it
        self.waiter_free = False  # a slot has been free for the waiter since waiter_since

    def deadline(self, since: float) -> float:
        return max(self.last_at + self.last_justified, since) + CEILING

    def slot_free(self) -> bool:
        return self.gov.in_flight < self.gov.concurrency_limit

    async def acquire(self) -> tuple[Permit, float]:
        permit = await self.gov.acquire()
        # Safety, checked in the same step as the grant.
        assert self.gov.in_flight <= self.gov.concurrency_limit
        assert self.gov.concurrency_limit <= self.gov.settings.max_concurrency
        return permit, self.clock()

    async def take(self, count: int) -> None:
        for _ in range(count):
            if self.waiter is not None or not self.slot_free():
                return
            since = self.clock()
            permit, granted_at = await self.within(self.acquire(), self.deadline(since))
            assert granted_at <= self.deadline(since) + EPS, "a caller with a free slot was held too long"
            self.held.append(permit)

    async def within(self, waiting: Awaitable[T], deadline: float) -> T:
        """``waiting``'s result, failing the test when it is not there soon after ``deadline``."""
        try:
            return await asyncio.wait_for(waiting, max(0.0, deadline - self.clock()) + 1.0)
        except TimeoutError:
            raise AssertionError(f"stalled: still waiting at {self.clock():.3f}, due by {deadline:.3f}") from None

    def collect_waiter(self, deadline: float | None) -> None:
        if self.waiter is None or not self.waiter.done():
            return
        permit, granted_at = self.waiter.result()
        if deadline is not None:
            assert granted_at <= deadline + EPS, "a waiting caller was not woken in time"
        self.held.append(permit)
        self.waiter = None

    def note_slots(self) -> None:
        """Start the waiter's clock when a slot is seen free for it (a report or a lease)."""
        free = self.slot_free()
        if self.waiter is not None and free and not self.waiter_free:
            self.waiter_since = self.clock()
        self.waiter_free = free

    async def step(self, step: Step) -> None:
        await self.take(step.take)
        if step.queue_a_caller and self.waiter is None:
            self.waiter = asyncio.ensure_future(self.acquire())
            self.waiter_since, self.waiter_free = self.clock(), self.slot_free()
            await settle()
            self.collect_waiter(None)
        self.note_slots()
        free = self.waiter_free
        deadline = self.deadline(self.waiter_since)
        await asyncio.sleep(step.delay)
        await settle()
        if self.waiter is not None and free:
            if self.waiter.done():
                self.collect_waiter(deadline)
            else:
                assert self.clock() <= deadline + EPS, "a waiting caller stalled"
        if self.held:
            permit = self.held.pop(step.pick % len(self.held))
            self.report(permit, step.response)
        await settle()
        self.collect_waiter(None)  # granted just now, by this report

    def report(self, permit: Permit, response: Response) -> None:
        at = EPOCH + timedelta(seconds=self.clock())
        headers = dict(response.headers)
        if response.reset_in is not None:
            reset = at + timedelta(seconds=response.reset_in)
            headers["anthropic-ratelimit-requests-reset"] = reset.isoformat()
        outcome = {200: SUCCESS, 429: RATE_LIMITED}.get(response.status, ERROR)
        pause = self.gov.report(permit.id, outcome, response.status, headers)
        self.last_at = self.clock()
        self.last_justified = justified(headers, at, pause)
        self.note_slots()


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    plan=st.lists(steps, min_size=1, max_size=25),
    initial=st.integers(1, 4),
    slow_start=st.booleans(),
    seed=st.integers(0, 2**16),
    final_delay=st.floats(0.0, 100.0),
)
@pytest.mark.timeout(120)
def test_random_conflicting_headers_never_stall_nor_overfill(
    plan: list[Step], initial: int, slow_start: bool, seed: int, final_delay: float
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gov = RateGovernor(
            KEY,
            GovernorSettings(
                initial_concurrency=initial,
                max_concurrency=8,
                slow_start=slow_start,
                pause_ceiling_s=CEILING,
                max_pause_s=MAX_PAUSE,
            ),
            clock=loop.time,
            rng=random.Random(seed).random,
            wall_clock=lambda: EPOCH + timedelta(seconds=loop.time()),
        )
        driver = Driver(gov, loop.time)
        for step in plan:
            await driver.step(step)
        # Every call ends; the caller in line is let through in time.
        while driver.held:
            driver.report(driver.held.pop(), Response(200, {}, None))
        if driver.waiter is not None:
            deadline = driver.deadline(driver.waiter_since)
            permit, granted_at = await driver.within(driver.waiter, deadline)
            assert granted_at <= deadline + EPS, "the waiting caller stalled"
            driver.waiter = None
            driver.report(permit, Response(200, {}, None))
        # Whatever was said last, a caller arriving later is let through in time.
        await asyncio.sleep(final_delay)
        await driver.take(1)
        assert driver.held, "the last caller was not granted"
        await gov.aclose()

    async def bounded() -> None:
        # A stall shows as virtual time running out, not as a hung test.
        await asyncio.wait_for(main(), timeout=VIRTUAL_BUDGET)

    run_virtual(bounded)
