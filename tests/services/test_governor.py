"""The adaptive rate governor, on virtual time: keys, AIMD, pauses, the line, figures.

Every test runs on an event loop whose clock only moves when nothing is
ready to run, jumping straight to the next timer: a five-minute lease
expires in microseconds of real time, and timings are exact.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import pytest
from governor_fixtures import (
    ABANDONED,
    ERROR,
    KEY,
    OTHER,
    RATE_LIMITED,
    SUCCESS,
    governor,
    registry,
    spawn,
)
from virtual_time import now, settle, virtual_time

from swarmd.services.errors import InvalidArgument, Unavailable
from swarmd.services.orchestrator.governor import (
    GovernorClosed,
    GovernorKey,
    GovernorRegistry,
    GovernorSettings,
    Permit,
    RateGovernor,
)
from swarmd.v1 import coordinator_pb2

# ------------------------------------------------------------------------ keys


def test_key_label_and_proto_round_trip() -> None:
    assert KEY.label() == "openai|https://api.example.test/v1|gpt-test|0123456789ab"
    assert GovernorKey.from_proto(KEY.to_proto()) == KEY
    assert GovernorKey.from_proto(
        coordinator_pb2.RateLimitKey(provider="replay", model="m")
    ) == GovernorKey("replay", "", "m", "")


@pytest.mark.parametrize("pb", [{"model": "m"}, {"provider": "p"}, {}])
def test_key_needs_provider_and_model(pb: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        GovernorKey.from_proto(coordinator_pb2.RateLimitKey(**pb))


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
