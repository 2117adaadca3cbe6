"""The rate governor's pacing from headers, on virtual time: budgets, windows
that disagree, and simulated swarms against servers of each dialect."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from governor_fixtures import (
    KEY,
    RATE_LIMITED,
    SUCCESS,
    governor,
)
from virtual_time import now, virtual_time

from swarmd.services.orchestrator.governor import (
    GovernorRegistry,
)

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
