"""The rate governor's pauses on virtual time: 429s and Retry-After, the
ceiling beyond what the newest response justifies, and long-pause warnings."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from governor_fixtures import (
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

from swarmd.services.orchestrator.governor import (
    GovernorKey,
    GovernorSettings,
    RateGovernor,
    full_jitter,
)

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


# ------------------------------------------------- the ceiling and its warnings


def warned_governor(warnings: list[tuple[str, str]], **settings: Any) -> RateGovernor:
    settings.setdefault("slow_start", False)
    return RateGovernor(
        KEY,
        GovernorSettings(**settings),
        clock=asyncio.get_running_loop().time,
        rng=random.Random(1).random,
        on_warning=lambda key, code, message: warnings.append((code, message)),
    )


@virtual_time
async def test_a_pause_beyond_the_ceiling_is_honoured_and_announced_once() -> None:
    warnings: list[tuple[str, str]] = []
    gov = warned_governor(warnings, pause_ceiling_s=60.0, initial_concurrency=4)
    first, second = await gov.acquire(), await gov.acquire()
    assert gov.report(first.id, RATE_LIMITED, 429, {"retry-after": "300"}) == pytest.approx(300.0)
    assert warnings == [
        (
            "rate_limit_long_pause",
            f"calls to {KEY.label()} wait up to 300 s, beyond the 60 s ceiling: "
            "the server's Retry-After asks for 300 s",
        )
    ]
    gov.report(second.id, RATE_LIMITED, 429, {"retry-after": "300"})
    assert len(warnings) == 1  # the same wait, already announced
    await gov.acquire()
    assert now() == pytest.approx(300.0)


@virtual_time
async def test_pauses_within_the_ceiling_raise_no_warning() -> None:
    warnings: list[tuple[str, str]] = []
    gov = warned_governor(warnings)
    permit = await gov.acquire()
    gov.report(permit.id, RATE_LIMITED, 429, {"retry-after": "59"})
    await gov.acquire()
    assert now() == pytest.approx(59.0) and warnings == []


@virtual_time
async def test_a_newer_429_replaces_the_pause_of_an_older_one() -> None:
    gov = governor(initial_concurrency=4)
    older, newer = await gov.acquire(), await gov.acquire()
    gov.report(newer.id, RATE_LIMITED, 429, {"retry-after": "1"})
    # A late answer about the earlier call lengthens the pause to its own ask...
    assert gov.report(older.id, RATE_LIMITED, 429, {"retry-after": "30"}) == pytest.approx(30.0)
    again = await gov.acquire()
    assert now() == pytest.approx(30.0)
    # ...and the next call's own word replaces it.
    assert gov.report(again.id, RATE_LIMITED, 429, {"retry-after": "2"}) == pytest.approx(2.0)
    await gov.acquire()
    assert now() == pytest.approx(32.0)


@virtual_time
async def test_no_caller_waits_beyond_the_ceiling_on_older_figures() -> None:
    # Same limit, two windows: a 15-minute one on the 200s, one second on the
    # 429. The window learnt from the 200s would keep the budget closed for a
    # tenth of 15 minutes after the 429's reset; the 429 justified 1.1 s.
    warnings: list[tuple[str, str]] = []
    gov = warned_governor(warnings, pause_ceiling_s=5.0, initial_concurrency=4)
    ok = await gov.acquire()
    budget = {"x-ratelimit-limit-requests": "100", "x-ratelimit-reset-requests": "15m"}
    gov.report(ok.id, SUCCESS, 200, {**budget, "x-ratelimit-remaining-requests": "99"})
    refused = await gov.acquire()
    gov.report(
        refused.id,
        RATE_LIMITED,
        429,
        {"retry-after": "1", "x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"},
    )
    await gov.acquire()
    assert now() <= 1.1 + 5.0
    assert warnings == []


@virtual_time
async def test_a_head_parked_on_a_long_pause_is_woken_when_a_newer_one_ends_it() -> None:
    gov = governor(initial_concurrency=4)
    first, second = await gov.acquire(), await gov.acquire()
    gov.report(first.id, RATE_LIMITED, 429, {"retry-after": "30"})
    waiting = spawn(gov.acquire())
    await settle()
    assert not waiting.done()
    gov.report(second.id, RATE_LIMITED, 429, {"retry-after": "1"})
    await waiting
    assert now() == pytest.approx(1.0)


@virtual_time
async def test_registry_passes_warnings_on_and_knows_which_swarms_use_a_key() -> None:
    heard: list[tuple[GovernorKey, str]] = []
    reg = registry(pause_ceiling_s=10.0, on_warning=lambda key, code, _msg: heard.append((key, code)))
    permit = await reg.acquire(KEY, swarm_id="s1")
    await reg.acquire(OTHER, swarm_id="s2")
    reg.report(permit.id, KEY, RATE_LIMITED, 429, {"retry-after": "20"}, swarm_id="s3")
    assert heard == [(KEY, "rate_limit_long_pause")]
    assert reg.swarms_using(KEY) == ["s1", "s3"]
    assert reg.settings.pause_ceiling_s == 10.0
    with pytest.raises(ValueError):
        GovernorSettings(pause_ceiling_s=0)
    await reg.aclose()
