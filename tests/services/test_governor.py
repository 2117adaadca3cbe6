"""The adaptive rate governor, on virtual time.

Every test runs on an event loop whose clock only moves when nothing is
ready to run, jumping straight to the next timer: a five-minute lease
expires in microseconds of real time, and timings are exact.
"""

from __future__ import annotations

import asyncio
import functools
import random
import selectors
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from swarmd.services.errors import InvalidArgument, Unavailable
from swarmd.services.orchestrator.governor import (
    GovernorClosed,
    GovernorKey,
    GovernorRegistry,
    GovernorSettings,
    Permit,
    RateGovernor,
    full_jitter,
)
from swarmd.v1 import orchestrator_pb2

SUCCESS = orchestrator_pb2.CALL_OUTCOME_SUCCESS
RATE_LIMITED = orchestrator_pb2.CALL_OUTCOME_RATE_LIMITED
ERROR = orchestrator_pb2.CALL_OUTCOME_ERROR
ABANDONED = orchestrator_pb2.CALL_OUTCOME_ABANDONED

KEY = GovernorKey("openai", "https://api.example.test/v1", "gpt-test", "0123456789ab")
OTHER = GovernorKey("openai", "https://api.example.test/v1", "gpt-other", "0123456789ab")


# ----------------------------------------------------------------- virtual time


class _AdvancingSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking; a wait for a timer advances the clock instead."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        if timeout is None:
            raise RuntimeError("virtual-time deadlock: nothing ready and no timer pending")
        self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_AdvancingSelector(self._advance))

    def _advance(self, seconds: float) -> None:
        self._now += seconds

    def time(self) -> float:
        return self._now


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh :class:`VirtualTimeLoop`."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run


def now() -> float:
    return asyncio.get_running_loop().time()


async def settle() -> None:
    """Let every ready task run without moving the clock."""
    for _ in range(20):
        await asyncio.sleep(0)


def governor(**settings: Any) -> RateGovernor:
    rng = settings.pop("rng", random.Random(1).random)
    wall_clock = settings.pop("wall_clock", None)
    settings.setdefault("slow_start", False)
    return RateGovernor(
        KEY,
        GovernorSettings(**settings),
        clock=asyncio.get_running_loop().time,
        rng=rng,
        wall_clock=wall_clock,
    )


def registry(**kwargs: Any) -> GovernorRegistry:
    kwargs.setdefault("rng", random.Random(1).random)
    kwargs.setdefault("slow_start", False)
    return GovernorRegistry(clock=asyncio.get_running_loop().time, **kwargs)


def spawn(coro: Coroutine[Any, Any, Permit]) -> asyncio.Task[Permit]:
    return asyncio.get_running_loop().create_task(coro)


# ------------------------------------------------------------------------ keys


def test_key_label_and_proto_round_trip() -> None:
    assert KEY.label() == "openai|https://api.example.test/v1|gpt-test|0123456789ab"
    assert GovernorKey.from_proto(KEY.to_proto()) == KEY
    assert GovernorKey.from_proto(
        orchestrator_pb2.RateLimitKey(provider="replay", model="m")
    ) == GovernorKey("replay", "", "m", "")


@pytest.mark.parametrize("pb", [{"model": "m"}, {"provider": "p"}, {}])
def test_key_needs_provider_and_model(pb: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        GovernorKey.from_proto(orchestrator_pb2.RateLimitKey(**pb))


@pytest.mark.parametrize(
    "bad",
    [
        {"initial_concurrency": 0},
        {"initial_concurrency": 8, "max_concurrency": 4},
        {"success_window": 0},
        {"lease_secs": 0},
        {"low_water": 1.5},
        {"backoff_base_s": 5, "backoff_max_s": 1},
        {"max_pause_s": 0},
    ],
)
def test_settings_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GovernorSettings(**bad)


# ------------------------------------------------------------------------ AIMD


@virtual_time
async def test_additive_increase_after_a_window_of_saturated_successes() -> None:
    gov = governor(initial_concurrency=2, success_window=2)
    a = await gov.acquire()  # room to spare: its success proves nothing
    b = await gov.acquire()  # takes the last slot: the limit is being tested
    c_task = spawn(gov.acquire())
    await settle()
    assert not c_task.done()
    gov.report(a.id, SUCCESS)
    c = await c_task  # granted at the limit
    gov.report(b.id, SUCCESS)
    assert gov.concurrency_limit == 2
    gov.report(c.id, SUCCESS)
    assert gov.concurrency_limit == 3


@virtual_time
async def test_idle_successes_do_not_grow_the_limit() -> None:
    gov = governor(initial_concurrency=2, success_window=1)
    for _ in range(20):
        permit = await gov.acquire()
        gov.report(permit.id, SUCCESS)
    assert gov.concurrency_limit == 2


async def fill(gov: RateGovernor, held: deque[Permit]) -> None:
    """Take every free slot; only the grant that takes the last one tests the limit."""
    while gov.in_flight < gov.concurrency_limit:
        held.append(await gov.acquire())


async def roll(gov: RateGovernor, held: deque[Permit]) -> None:
    """Finish the oldest call and start another in its slot (a full slot again)."""
    gov.report(held.popleft().id, SUCCESS)
    held.append(await gov.acquire())


@virtual_time
async def test_window_defaults_to_the_current_limit() -> None:
    gov = governor(initial_concurrency=2)
    held: deque[Permit] = deque()
    await fill(gov, held)  # a, b: only b filled the limit
    await roll(gov, held)  # a's success does not count; c takes its slot, filling the limit
    gov.report(held.popleft().id, SUCCESS)  # b: 1 of 2
    assert gov.concurrency_limit == 2
    gov.report(held.popleft().id, SUCCESS)  # c: 2 of 2
    assert gov.concurrency_limit == 3

    await fill(gov, held)  # d, e, f: only f filled the limit
    await roll(gov, held)  # d: no; g fills
    await roll(gov, held)  # e: no; h fills
    for expected in (3, 3, 4):  # f, g, h: three successes for the fourth slot
        gov.report(held.popleft().id, SUCCESS)
        assert gov.concurrency_limit == expected


@virtual_time
async def test_increase_is_capped() -> None:
    gov = governor(initial_concurrency=2, max_concurrency=3, success_window=1)
    held: deque[Permit] = deque()
    for _ in range(30):
        await fill(gov, held)
        await roll(gov, held)
        assert gov.concurrency_limit <= 3
    assert gov.concurrency_limit == 3


@virtual_time
async def test_slow_start_grows_by_one_per_success_until_the_first_429() -> None:
    gov = governor(initial_concurrency=2, max_concurrency=64, slow_start=True)
    held: deque[Permit] = deque()
    await fill(gov, held)  # a, b (b fills)
    await roll(gov, held)  # a: no; c fills
    gov.report(held.popleft().id, SUCCESS)  # b
    assert gov.concurrency_limit == 3
    gov.report(held.popleft().id, SUCCESS)  # c
    assert gov.concurrency_limit == 4

    permit = await gov.acquire()
    gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "0"})
    assert gov.concurrency_limit == 2
    # From here on growth is additive: a window of two successes per slot.
    await fill(gov, held)  # d, e (e fills)
    await roll(gov, held)  # d: no; f fills
    gov.report(held.popleft().id, SUCCESS)  # e
    assert gov.concurrency_limit == 2
    gov.report(held.popleft().id, SUCCESS)  # f
    assert gov.concurrency_limit == 3


@virtual_time
async def test_halve_on_429_once_per_window_and_never_below_one() -> None:
    gov = governor(initial_concurrency=8, max_concurrency=8)
    before = [await gov.acquire() for _ in range(8)]
    gov.report(before[0].id, RATE_LIMITED, 429, {"retry-after": "0"})
    assert gov.concurrency_limit == 4
    # The other calls were already in flight under the old limit: no new decrease.
    for permit in before[1:]:
        gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "0"})
    assert gov.concurrency_limit == 4
    for expected in (2, 1, 1, 1):
        permit = await gov.acquire()
        gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "0"})
        assert gov.concurrency_limit == expected
    assert gov.stats().rate_limit_hits == 12


@virtual_time
async def test_status_429_counts_as_rate_limited_whatever_the_outcome() -> None:
    gov = governor(initial_concurrency=4)
    permit = await gov.acquire()
    gov.report(permit.id, ERROR, 429, {})
    assert gov.concurrency_limit == 2
    assert gov.stats().rate_limit_hits == 1


@virtual_time
async def test_errors_and_abandoned_calls_release_without_adapting() -> None:
    gov = governor(initial_concurrency=2, success_window=1)
    a, b = await gov.acquire(), await gov.acquire()
    gov.report(a.id, ERROR, 500, {})
    gov.report(b.id, ABANDONED, 0, {})
    assert gov.in_flight == 0
    assert gov.concurrency_limit == 2
    assert gov.pause_remaining() == 0


@virtual_time
async def test_a_late_429_for_an_unknown_permit_halves_unless_a_decrease_is_recent() -> None:
    gov = governor(initial_concurrency=8, lease_secs=60)
    gov.report("gone", RATE_LIMITED, 429, {"retry-after": "0"})
    assert gov.concurrency_limit == 4
    gov.report("gone-too", RATE_LIMITED, 429, {"retry-after": "0"})
    assert gov.concurrency_limit == 4
    await asyncio.sleep(60)
    gov.report("gone-later", RATE_LIMITED, 429, {"retry-after": "0"})
    assert gov.concurrency_limit == 2


# ------------------------------------------------------------------ 429 pauses


@virtual_time
async def test_retry_after_blocks_every_caller_of_the_key_but_not_other_keys() -> None:
    reg = registry(initial_concurrency=8)
    first = await reg.acquire(KEY)
    pause_ms = reg.report(first.id, KEY, RATE_LIMITED, 429, {"retry-after": "5"})
    assert pause_ms == 5000

    started = now()
    blocked = [spawn(reg.acquire(KEY)) for _ in range(3)]
    other = await reg.acquire(OTHER)
    assert other.waited_ms == 0
    await settle()
    assert not any(task.done() for task in blocked)

    permits = await asyncio.gather(*blocked)
    assert now() - started == pytest.approx(5.0)
    assert all(p.waited_ms == 5000 for p in permits)


@virtual_time
async def test_retry_after_as_http_date() -> None:
    epoch = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
    loop = asyncio.get_running_loop()
    gov = governor(wall_clock=lambda: epoch + timedelta(seconds=loop.time()))
    permit = await gov.acquire()
    pause = gov.report(
        permit.id, RATE_LIMITED, 429, {"retry-after": "Wed, 15 Jan 2025 12:00:07 GMT"}
    )
    assert pause == pytest.approx(7.0)
    await gov.acquire()
    assert now() == pytest.approx(7.0)


@virtual_time
async def test_retry_after_ms_is_honoured() -> None:
    gov = governor()
    permit = await gov.acquire()
    assert gov.report(permit.id, RATE_LIMITED, 429, {"retry-after-ms": "250"}) == pytest.approx(
        0.25
    )


@virtual_time
async def test_429_without_retry_after_backs_off_exponentially_with_full_jitter() -> None:
    gov = governor(backoff_base_s=1.0, backoff_max_s=8.0, rng=lambda: 1.0)
    pauses = []
    for _ in range(6):
        permit = await gov.acquire()
        pauses.append(gov.report(permit.id, RATE_LIMITED, 429, {}))
    assert pauses == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0, 8.0])
    permit = await gov.acquire()
    gov.report(permit.id, SUCCESS, 200, {})
    permit = await gov.acquire()
    assert gov.report(permit.id, RATE_LIMITED, 429, {}) == pytest.approx(1.0)


@virtual_time
async def test_zero_jitter_means_no_pause_without_retry_after() -> None:
    gov = governor(rng=lambda: 0.0)
    permit = await gov.acquire()
    assert gov.report(permit.id, RATE_LIMITED, 429, {}) == 0.0


@virtual_time
async def test_retry_after_is_a_floor_that_jitter_never_undercuts() -> None:
    gov = governor(rng=lambda: 0.0)
    permit = await gov.acquire()
    assert gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "3"}) == pytest.approx(3.0)


@virtual_time
async def test_429_with_an_empty_budget_waits_for_its_reset() -> None:
    gov = governor(rng=lambda: 0.0)
    permit = await gov.acquire()
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "12s"}
    assert gov.report(permit.id, RATE_LIMITED, 429, headers) == pytest.approx(12.0)


@virtual_time
async def test_pauses_are_capped() -> None:
    gov = governor(max_pause_s=30.0)
    permit = await gov.acquire()
    assert gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "86400"}) == pytest.approx(30.0)


@virtual_time
async def test_error_with_retry_after_pauses_without_halving() -> None:
    gov = governor(initial_concurrency=4)
    permit = await gov.acquire()
    assert gov.report(permit.id, ERROR, 503, {"retry-after": "2"}) == pytest.approx(2.0)
    assert gov.concurrency_limit == 4
    assert gov.stats().rate_limit_hits == 0


@pytest.mark.parametrize("draw", [0.0, 1e-9, 0.25, 0.5, 0.999999, 1.0])
def test_full_jitter_stays_within_zero_and_the_delay(draw: float) -> None:
    assert 0.0 <= full_jitter(10.0, lambda: draw) <= 10.0
    assert full_jitter(10.0, lambda: draw) == pytest.approx(10.0 * draw)


def test_full_jitter_clamps_odd_inputs() -> None:
    assert full_jitter(10.0, lambda: 1.5) == 10.0
    assert full_jitter(10.0, lambda: -0.5) == 0.0
    assert full_jitter(-3.0, lambda: 0.5) == 0.0
    rng = random.Random(42)
    draws = [full_jitter(4.0, rng.random) for _ in range(2000)]
    assert min(draws) >= 0.0 and max(draws) <= 4.0
    assert min(draws) < 0.1 and max(draws) > 3.9  # spread over the whole range


# ---------------------------------------------------------------------- pacing


@virtual_time
async def test_low_remaining_requests_spread_calls_until_the_reset() -> None:
    gov = governor(initial_concurrency=64, max_concurrency=64)
    permit = await gov.acquire()
    gov.report(
        permit.id,
        SUCCESS,
        200,
        {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "10",
            "x-ratelimit-reset-requests": "10s",
        },
    )
    times = []
    for _ in range(10):
        await gov.acquire()
        times.append(now())
    # Ten calls left for ten seconds: one a second, the last one at the reset.
    assert times == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    # The budget counts as whole again a tenth of the window after the reset
    # (a guard against the server's clock running a little behind the grant).
    for _ in range(20):
        await gov.acquire()
    assert now() == pytest.approx(11.0)


@virtual_time
async def test_plenty_remaining_means_no_pacing() -> None:
    gov = governor(initial_concurrency=64, max_concurrency=64)
    permit = await gov.acquire()
    gov.report(
        permit.id,
        SUCCESS,
        200,
        {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "90",
            "x-ratelimit-reset-requests": "10s",
        },
    )
    for _ in range(20):
        await gov.acquire()
    assert now() == 0.0


@virtual_time
async def test_spent_budget_waits_for_the_reset() -> None:
    gov = governor()
    permit = await gov.acquire()
    gov.report(
        permit.id,
        SUCCESS,
        200,
        {
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z",
        },
    )
    # A reset decades away counts as max_pause_s (900 s; plus the tenth-of-a-
    # window guard): callers probe now and then instead of waiting forever.
    assert gov.stats().current_delay_ms == 990_000
    await gov.acquire()
    assert now() == pytest.approx(990.0)
    gov2 = governor()
    permit = await gov2.acquire()
    start = now()
    gov2.report(permit.id, SUCCESS, 200, {"ratelimit": '"default";r=0;t=4'})
    await gov2.acquire()
    assert now() - start == pytest.approx(4.0 + 0.4)  # the reset, plus a tenth of the window


@virtual_time
async def test_calls_still_in_flight_are_held_back_from_the_reported_figure() -> None:
    gov = governor(initial_concurrency=8, max_concurrency=8)
    first = await gov.acquire()
    others = [await gov.acquire() for _ in range(3)]  # the server may not have seen these
    gov.report(
        first.id,
        SUCCESS,
        200,
        {"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "6s"},
    )
    # 3 - 3 possibly unseen = nothing left until the reset (plus its guard).
    await gov.acquire()
    assert now() == pytest.approx(6.0 + 0.6)
    for permit in others:
        gov.report(permit.id, SUCCESS, 200, {})


@virtual_time
async def test_low_remaining_tokens_pace_by_the_estimated_size() -> None:
    gov = governor(initial_concurrency=64, max_concurrency=64)
    permit = await gov.acquire(estimated_tokens=1000)
    gov.report(
        permit.id,
        SUCCESS,
        200,
        {
            "x-ratelimit-limit-tokens": "100000",
            "x-ratelimit-remaining-tokens": "4000",
            "x-ratelimit-reset-tokens": "8s",
        },
    )
    times = []
    for _ in range(4):
        await gov.acquire(estimated_tokens=1000)
        times.append(now())
    assert times == pytest.approx([2.0, 4.0, 6.0, 8.0])
    assert gov.stats().remaining_tokens == 4000
    assert gov.stats().remaining_requests == -1


@virtual_time
async def test_a_call_bigger_than_what_remains_waits_for_the_token_reset() -> None:
    gov = governor()
    permit = await gov.acquire()
    gov.report(
        permit.id,
        SUCCESS,
        200,
        {
            "x-ratelimit-limit-tokens": "10000",
            "x-ratelimit-remaining-tokens": "3000",
            "x-ratelimit-reset-tokens": "30s",
        },
    )
    await gov.acquire(estimated_tokens=500)
    assert now() == 0.0
    await gov.acquire(estimated_tokens=5000)
    assert now() == pytest.approx(33.0)  # the reset plus a tenth of the window
    # Bigger than the whole budget: waits for a full budget, not forever.
    await gov.acquire(estimated_tokens=50000)


@virtual_time
async def test_reported_usage_sizes_calls_without_an_estimate() -> None:
    gov = governor()
    permit = await gov.acquire()
    gov.report(
        permit.id,
        SUCCESS,
        200,
        {
            "x-ratelimit-limit-tokens": "10000",
            "x-ratelimit-remaining-tokens": "1000",
            "x-ratelimit-reset-tokens": "20s",
        },
        tokens_used=5000,
    )
    await gov.acquire()  # 5000 tokens a call so far: more than remain
    assert now() == pytest.approx(20.0 + 2.0)  # the reset, plus a tenth of the window


# ------------------------------------------------------------- line and leases


@virtual_time
async def test_waiters_are_served_first_come_first_served() -> None:
    gov = governor(initial_concurrency=1, max_concurrency=1)
    held = await gov.acquire()
    order: list[int] = []

    async def caller(i: int) -> Permit:
        permit = await gov.acquire()
        order.append(i)
        return permit

    tasks = [spawn(caller(i)) for i in range(6)]
    await settle()
    assert gov.waiting == 6
    current = held
    for i in range(6):
        await asyncio.sleep(1)
        gov.report(current.id, SUCCESS)
        await settle()
        assert order == list(range(i + 1))
        current = tasks[i].result()
    assert [t.result().waited_ms for t in tasks] == [1000, 2000, 3000, 4000, 5000, 6000]


@virtual_time
async def test_a_cancelled_waiter_leaves_the_line_and_releases_nothing() -> None:
    gov = governor(initial_concurrency=1, max_concurrency=1)
    held = await gov.acquire()
    head, middle, last = (spawn(gov.acquire()) for _ in range(3))
    await settle()
    middle.cancel()
    head.cancel()
    await settle()
    assert head.cancelled() and middle.cancelled()
    assert gov.waiting == 1
    assert gov.in_flight == 1  # the holder's slot is still taken
    assert gov.stats().total_requests == 1

    gov.report(held.id, SUCCESS)
    permit = await last
    assert gov.in_flight == 1
    assert gov.waiting == 0
    gov.report(permit.id, SUCCESS)
    assert gov.in_flight == 0
    assert gov.stats().total_requests == 2


@virtual_time
async def test_cancelling_the_head_during_a_pause_hands_over_to_the_next() -> None:
    gov = governor(initial_concurrency=4)
    permit = await gov.acquire()
    gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "3"})
    head = spawn(gov.acquire())
    second = spawn(gov.acquire())
    await asyncio.sleep(1)
    head.cancel()
    granted = await second
    assert now() == pytest.approx(3.0)
    assert granted.waited_ms == 3000
    assert gov.in_flight == 1


@virtual_time
async def test_a_waiter_cancelled_by_a_timeout_leaves_no_slot_behind() -> None:
    gov = governor(initial_concurrency=1, max_concurrency=1)
    held = await gov.acquire()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gov.acquire(), timeout=2)
    assert gov.waiting == 0 and gov.in_flight == 1
    gov.report(held.id, SUCCESS)
    await gov.acquire()
    assert gov.in_flight == 1


@virtual_time
async def test_an_expired_lease_frees_its_slot() -> None:
    gov = governor(initial_concurrency=1, max_concurrency=1, lease_secs=300)
    lost = await gov.acquire()  # its executor dies: no outcome ever comes
    permit = await gov.acquire()
    assert now() == pytest.approx(300.0)
    assert permit.waited_ms == 300_000
    assert permit.lease_ms == 300_000
    assert gov.expired_permits == 1
    assert not gov.holds(lost.id)
    # A late report still feeds its headers in, and frees nothing else.
    gov.report(lost.id, SUCCESS, 200, {"x-ratelimit-remaining-requests": "7"})
    assert gov.in_flight == 1
    assert gov.stats().remaining_requests == 7


@virtual_time
async def test_closing_sends_waiters_away() -> None:
    reg = registry(initial_concurrency=1, max_concurrency=1)
    await reg.acquire(KEY)
    waiter = spawn(reg.acquire(KEY))
    await settle()
    await reg.aclose()
    with pytest.raises(GovernorClosed):
        await waiter
    with pytest.raises(Unavailable):
        await reg.acquire(KEY)
    with pytest.raises(Unavailable):
        await reg.acquire(OTHER)
    await reg.aclose()  # idempotent


# ---------------------------------------------------------------------- figures


@virtual_time
async def test_stats_figures() -> None:
    gov = governor(initial_concurrency=2, max_concurrency=8, success_window=100)
    fresh = gov.stats()
    assert fresh.key == KEY.label()
    assert (fresh.remaining_requests, fresh.remaining_tokens) == (-1, -1)
    assert (fresh.total_requests, fresh.in_flight, fresh.concurrency_limit) == (0, 0, 2)

    a, b = await gov.acquire(), await gov.acquire()
    late = spawn(gov.acquire())
    await asyncio.sleep(2)
    gov.report(
        a.id,
        SUCCESS,
        200,
        {"x-ratelimit-remaining-requests": "500", "x-ratelimit-remaining-tokens": "90000"},
    )
    c = await late  # waited two seconds
    await asyncio.sleep(30)
    gov.report(b.id, RATE_LIMITED, 429, {"retry-after": "4"})
    stats = gov.stats()
    assert stats.total_requests == 3
    assert stats.rate_limit_hits == 1
    assert stats.in_flight == 1
    assert stats.concurrency_limit == 1
    assert stats.current_delay_ms == 4000
    assert stats.requests_per_minute == 3.0
    assert stats.total_wait_ms == 2000
    assert (stats.remaining_requests, stats.remaining_tokens) == (500, 90000)

    await asyncio.sleep(29)  # a and b were granted 61 s ago, c 59 s ago
    stats = gov.stats()
    assert stats.requests_per_minute == 1.0
    assert stats.current_delay_ms == 0
    gov.report(c.id, SUCCESS)
    assert gov.stats().in_flight == 0


@virtual_time
async def test_registry_tracks_keys_per_swarm() -> None:
    reg = registry()
    p1 = await reg.acquire(KEY, swarm_id="s1", subtask_id="t1")
    p2 = await reg.acquire(OTHER, swarm_id="s2")
    await reg.acquire(KEY, swarm_id="s2")
    assert reg.keys_for_swarm("s1") == [KEY]
    assert reg.keys_for_swarm("s2") == [OTHER, KEY]
    assert reg.keys_for_swarm("nobody") == []
    assert [s.key for s in reg.stats(reg.keys_for_swarm("s1"))] == [KEY.label()]
    assert [s.key for s in reg.stats()] == [KEY.label(), OTHER.label()]
    assert reg.keys() == [KEY, OTHER]
    third = GovernorKey("anthropic", "https://x.test", "claude", "")
    assert reg.stats([third]) == []

    # The permit's own governor is used even when the key given is wrong.
    reg.report(p1.id, OTHER, SUCCESS, 200, {"x-ratelimit-remaining-requests": "11"})
    by_key = {s.key: s for s in reg.stats()}
    assert by_key[KEY.label()].remaining_requests == 11
    assert by_key[OTHER.label()].remaining_requests == -1
    assert reg.report(p2.id, OTHER, RATE_LIMITED, 429, {"retry-after": "1.5"}) == 1500

    reg.forget_swarm("s2")
    assert reg.keys_for_swarm("s2") == []


@virtual_time
async def test_registry_report_for_an_unknown_permit() -> None:
    reg = registry()
    assert reg.report("nope", None, SUCCESS, 200, {"x-ratelimit-remaining-requests": "1"}) == 0
    assert reg.stats() == []
    third = GovernorKey("anthropic", "https://x.test", "claude", "")
    pause = reg.report("expired", third, RATE_LIMITED, 429, {"retry-after": "2"}, swarm_id="s9")
    assert pause == 2000
    assert reg.keys_for_swarm("s9") == [third]
    (stats,) = reg.stats([third])
    assert stats.rate_limit_hits == 1 and stats.total_requests == 0


@virtual_time
async def test_registry_rejects_negative_token_estimates() -> None:
    reg = registry()
    with pytest.raises(InvalidArgument):
        await reg.acquire(KEY, estimated_tokens=-1)


@virtual_time
async def test_permit_to_proto() -> None:
    reg = registry(lease_secs=120)
    permit = await reg.acquire(KEY)
    pb = permit.to_proto()
    assert (pb.permit_id, pb.waited_ms, pb.lease_ms) == (permit.id, 0, 120_000)


@virtual_time
async def test_injected_sleep_is_used_for_waits() -> None:
    slept: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    reg = GovernorRegistry(
        clock=asyncio.get_running_loop().time, sleep=recording_sleep, rng=lambda: 0.5
    )
    permit = await reg.acquire(KEY)
    reg.report(permit.id, KEY, RATE_LIMITED, 429, {"retry-after": "2"})
    await reg.acquire(KEY)
    assert slept == [pytest.approx(2.0)]


async def test_defaults_run_on_the_event_loops_real_clock() -> None:
    reg = GovernorRegistry(rng=lambda: 0.0)
    permit = await reg.acquire(KEY)
    assert reg.report(permit.id, KEY, RATE_LIMITED, 429, {"retry-after-ms": "30"}) == 30
    started = time.monotonic()
    again = await reg.acquire(KEY)
    assert time.monotonic() - started >= 0.025
    assert again.waited_ms >= 25
    await reg.aclose()


# ------------------------------------------------------------------ simulation

EPOCH = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


class FixedWindowServer:
    """A model endpoint admitting ``rate`` calls per clock second, then answering 429.

    It counts a call when it arrives and describes its budget in one header
    dialect (or, with ``"none"``, only says Retry-After on a 429).
    """

    def __init__(self, rate: int, dialect: str) -> None:
        self.rate = rate
        self.dialect = dialect
        self.used: dict[int, int] = {}
        self.ok = 0
        self.rejected_at: list[float] = []

    def admit(self, t: float) -> tuple[int, dict[str, str]]:
        window = int(t)
        used = self.used.get(window, 0)
        reset = window + 1 - t
        if used >= self.rate:
            self.rejected_at.append(t)
            headers = self._budget(0, reset, window)
            headers["retry-after"] = "1"  # whole seconds, as most servers send
            return 429, headers
        self.used[window] = used + 1
        self.ok += 1
        return 200, self._budget(self.rate - used - 1, reset, window)

    def _budget(self, remaining: int, reset: float, window: int) -> dict[str, str]:
        if self.dialect == "openai":
            return {
                "x-ratelimit-limit-requests": str(self.rate),
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": f"{reset * 1000:.0f}ms",
            }
        if self.dialect == "anthropic":
            reset_at = EPOCH + timedelta(seconds=window + 1)
            return {
                "anthropic-ratelimit-requests-limit": str(self.rate),
                "anthropic-ratelimit-requests-remaining": str(remaining),
                "anthropic-ratelimit-requests-reset": reset_at.isoformat().replace("+00:00", "Z"),
            }
        if self.dialect == "ietf":
            return {
                "ratelimit": f'"rps";r={remaining};t=1',
                "ratelimit-policy": f'"rps";q={self.rate};w=1',
            }
        return {}


class TokenBucketServer(FixedWindowServer):
    """The same endpoint as a token bucket: ``rate`` calls of capacity, refilled
    continuously; its reset is the time until the bucket is full again (as
    OpenAI documents its ``x-ratelimit-reset-*``)."""

    def __init__(self, rate: int, dialect: str) -> None:
        super().__init__(rate, dialect)
        self.tokens = float(rate)
        self.last = 0.0

    def admit(self, t: float) -> tuple[int, dict[str, str]]:
        self.tokens = min(float(self.rate), self.tokens + (t - self.last) * self.rate)
        self.last = t
        if self.tokens < 1:
            self.rejected_at.append(t)
            headers = self._bucket_headers()
            headers["retry-after"] = "1"
            return 429, headers
        self.tokens -= 1
        self.ok += 1
        return 200, self._bucket_headers()

    def _bucket_headers(self) -> dict[str, str]:
        to_full = (self.rate - self.tokens) / self.rate
        return {
            "x-ratelimit-limit-requests": str(self.rate),
            "x-ratelimit-remaining-requests": str(int(self.tokens)),
            "x-ratelimit-reset-requests": f"{to_full * 1000:.0f}ms",
        }


async def _simulate(
    dialect: str, *, rate: int, callers: int, calls_each: int, bucket: bool = False
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = random.Random(2024)
    reg = GovernorRegistry(
        clock=loop.time,
        rng=rng.random,
        wall_clock=lambda: EPOCH + timedelta(seconds=loop.time()),
    )
    server = (TokenBucketServer if bucket else FixedWindowServer)(rate, dialect)
    requeued = 0

    async def caller() -> None:
        nonlocal requeued
        done = 0
        while done < calls_each:
            permit = await reg.acquire(KEY, swarm_id="sim")
            await asyncio.sleep(0.05)  # the request travels
            status, headers = server.admit(loop.time())
            await asyncio.sleep(rng.uniform(0.2, 1.5) if status == 200 else 0.01)
            outcome = SUCCESS if status == 200 else RATE_LIMITED
            reg.report(permit.id, KEY, outcome, status, headers)
            if status == 200:
                done += 1
            else:
                requeued += 1  # back in line: a 429 never fails the call

    await asyncio.gather(*(caller() for _ in range(callers)))
    (stats,) = reg.stats(reg.keys_for_swarm("sim"))
    await reg.aclose()
    return {
        "ok": server.ok,
        "rejected_at": server.rejected_at,
        "requeued": requeued,
        "elapsed": loop.time(),
        "stats": stats,
    }


@pytest.mark.parametrize(
    ("dialect", "bucket", "slowdown"),
    [
        ("openai", False, 1.5),
        ("anthropic", False, 1.5),
        ("ietf", False, 1.5),
        # Pacing a bucket as if its reset were a window's end is cautious.
        ("openai", True, 2.0),
    ],
)
@virtual_time
async def test_simulated_swarm_settles_under_the_servers_limit(
    dialect: str, bucket: bool, slowdown: float
) -> None:
    rate, callers, calls_each = 10, 50, 6
    result = await _simulate(
        dialect, rate=rate, callers=callers, calls_each=calls_each, bucket=bucket
    )
    total = callers * calls_each
    rejected = result["rejected_at"]
    assert result["ok"] == total  # every call eventually succeeded
    assert result["requeued"] == len(rejected)
    assert len(rejected) <= 5
    assert len([t for t in rejected if t > 5.0]) <= 2  # settled: hardly any more 429s
    assert result["elapsed"] <= slowdown * total / rate  # and the budget is still used well
    stats = result["stats"]
    assert stats.total_requests == total + len(rejected)
    assert stats.rate_limit_hits == len(rejected)
    assert stats.in_flight == 0


@virtual_time
async def test_simulated_swarm_without_budget_headers_relies_on_aimd() -> None:
    rate, callers, calls_each = 10, 50, 6
    result = await _simulate("none", rate=rate, callers=callers, calls_each=calls_each)
    total = callers * calls_each
    rejected = result["rejected_at"]
    assert result["ok"] == total
    # Each probe for more room costs a 429 now and then, never a failed call.
    assert len(rejected) <= 0.2 * total
    late = [t for t in rejected if t > 5.0]
    assert len(late) <= 0.1 * total
    assert result["stats"].concurrency_limit <= 2 * rate


# ------------------------------------------------------ headers that disagree

BIG_WINDOW = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6m0s",
}
SMALL_WINDOW_REFUSAL = {
    "retry-after": "1",
    "x-ratelimit-limit-requests": "240",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "1s",
}


@virtual_time
async def test_a_429_from_another_window_pauses_only_as_long_as_it_says() -> None:
    # The 200 describes a six-minute window, the 429 a one-second one: the
    # 429's "none left" must not be paired with the 200's six-minute reset.
    gov = governor(initial_concurrency=4)
    ok = await gov.acquire()
    gov.report(ok.id, SUCCESS, 200, BIG_WINDOW)
    refused = await gov.acquire()
    assert gov.report(refused.id, RATE_LIMITED, 429, SMALL_WINDOW_REFUSAL) == pytest.approx(1.0)
    again = await gov.acquire()
    # Its Retry-After, and its one-second window's tenth as the guard.
    assert now() == pytest.approx(1.1)
    gov.report(again.id, SUCCESS, 200, BIG_WINDOW)
    await gov.acquire()
    assert now() == pytest.approx(1.1)


@virtual_time
async def test_the_newest_figures_replace_older_ones_of_the_same_window() -> None:
    # A proxy that always says the same: 99 of 100 left, a minute to go.
    # Each newer response restores the figure; it never drains locally.
    gov = governor(initial_concurrency=4)
    static = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-reset-requests": "60s",
    }
    for _ in range(500):
        permit = await gov.acquire()
        gov.report(permit.id, SUCCESS, 200, static)
    assert now() == 0.0


@virtual_time
async def test_a_late_answer_about_an_earlier_call_changes_nothing() -> None:
    gov = governor(initial_concurrency=4)
    early = await gov.acquire()
    late = await gov.acquire()
    budget = {"x-ratelimit-limit-requests": "100", "x-ratelimit-reset-requests": "10s"}
    gov.report(late.id, SUCCESS, 200, {**budget, "x-ratelimit-remaining-requests": "50"})
    gov.report(early.id, SUCCESS, 200, {**budget, "x-ratelimit-remaining-requests": "0"})
    assert gov.stats().remaining_requests == 50
    await gov.acquire()
    assert now() == 0.0
