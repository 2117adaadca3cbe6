"""The swarm-wide adaptive rate governor.

Every model call a sub-agent makes, wherever it runs, first asks the
orchestrator for a *permit* and afterwards reports how the call ended, with
the response headers. Calls sharing a (provider, base URL, model, API-key
fingerprint) share one :class:`RateGovernor`, so fifty sub-agents on one key
behave like one polite client instead of fifty greedy ones.

A governor combines three brakes; a permit is granted when all three agree:

* **AIMD concurrency.** At most ``concurrency_limit`` permits are out at once.
  After a window of successes (by default as many as the limit, i.e. one
  "round") the limit grows by one, up to ``max_concurrency``; a 429 halves
  it, never below one. Like TCP, only permits granted after the last
  decrease can cause another one, so a burst of 429s from calls that were
  already in flight halves the limit once, not once per call. Only calls
  that took the last free slot count as successes of the limit, so a
  governor held back by pacing or by a lack of callers does not grow a
  limit nobody tested. Until the first 429 a key is in *slow start*: every
  such success earns a slot, so a fresh key finds its capacity in a few
  rounds (optional; ``slow_start=False`` gives plain AIMD).
* **Pacing from headers.** When a response says few requests (or tokens)
  remain (below ``low_water`` of the limit), the next calls are spread so
  the rest of the budget lasts until the reset; when it is spent, callers
  wait for the reset. The estimate is decremented on every grant and
  corrected by each response, less the calls still in flight that were
  granted no earlier than the reporting one (the server may not have
  counted those yet), so concurrent calls cannot overspend a stale figure.
  Delta resets are measured from the reporting call's grant (servers count
  a call when it arrives, not when its slow answer is read).
* **Pauses.** A 429 pauses the whole key: for the server's Retry-After (or
  the header's reset when the budget reads zero), and otherwise for a
  capped exponential back-off with *full jitter* (uniform in ``[0, backoff]``)
  so independent clients sharing an API key do not retry in lockstep.
  Retry-After is a floor, never jittered below. A 503 with Retry-After
  pauses too, without a decrease.

A 429 never fails a subtask: the caller reports RATE_LIMITED and asks for a
new permit, joining the line again; the governor has already slowed down.

Waiters are served strictly first come, first served: only the head of the
line may take a permit, and it does so in its own task, so a cancelled
acquire leaves the line without ever having held anything. Permits carry a
lease; one whose outcome never arrives (a dead executor) is released when the
lease runs out, and a late report for it still feeds its headers in.

Time is injectable (``clock``, ``sleep``, ``rng``, ``wall_clock``), so tests
run on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from swarmd.services.errors import InvalidArgument, Unavailable
from swarmd.services.orchestrator.ratelimit_headers import RateLimitSnapshot, parse_headers
from swarmd.v1 import common_pb2, orchestrator_pb2

__all__ = [
    "GovernorClosed",
    "GovernorKey",
    "GovernorRegistry",
    "GovernorSettings",
    "Permit",
    "RateGovernor",
    "full_jitter",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]
Rng = Callable[[], float]
WallClock = Callable[[], datetime]

_RPM_WINDOW_S = 60.0
_GRANT_HISTORY = 1024
_TOKENS_EWMA_ALPHA = 0.2


class GovernorClosed(Unavailable):
    """The governor is shutting down; the caller may retry elsewhere or later."""


def full_jitter(delay_s: float, rng: Rng = random.random) -> float:
    """A delay drawn uniformly from ``[0, delay_s]`` ("full jitter")."""
    return max(0.0, delay_s) * min(1.0, max(0.0, rng()))


@dataclass(frozen=True, slots=True)
class GovernorKey:
    """Identity of one governor: calls sharing all four fields share limits."""

    provider: str
    base_url: str
    model: str
    api_key_fingerprint: str = ""

    @classmethod
    def from_proto(cls, pb: orchestrator_pb2.RateLimitKey) -> GovernorKey:
        """Build from the wire form; provider and model are required."""
        if not pb.provider or not pb.model:
            raise InvalidArgument("rate-limit key needs a provider and a model")
        return cls(pb.provider, pb.base_url, pb.model, pb.api_key_fingerprint)

    def to_proto(self) -> orchestrator_pb2.RateLimitKey:
        return orchestrator_pb2.RateLimitKey(
            provider=self.provider,
            base_url=self.base_url,
            model=self.model,
            api_key_fingerprint=self.api_key_fingerprint,
        )

    def label(self) -> str:
        """``provider|base_url|model|fingerprint``, as in ``RateLimitStats.key``."""
        return f"{self.provider}|{self.base_url}|{self.model}|{self.api_key_fingerprint}"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one model call; pass ``id`` back with the outcome."""

    id: str
    key: GovernorKey
    waited_ms: int
    lease_ms: int

    def to_proto(self) -> orchestrator_pb2.AcquirePermitResponse:
        return orchestrator_pb2.AcquirePermitResponse(
            permit_id=self.id, waited_ms=self.waited_ms, lease_ms=self.lease_ms
        )


@dataclass(frozen=True, slots=True)
class GovernorSettings:
    """Tuning shared by every governor of a registry."""

    initial_concurrency: int = 4
    max_concurrency: int = 64
    #: Successes that earn one more slot; None: as many as the current limit.
    success_window: int | None = None
    #: Until the first 429, every success earns a slot (TCP's slow start), so
    #: a fresh key reaches its real capacity in a few rounds, not hundreds.
    slow_start: bool = True
    #: A permit not reported within this many seconds is released.
    lease_secs: float = 300.0
    #: Pace when remaining / limit falls below this fraction.
    low_water: float = 0.2
    #: Back-off after a 429 without Retry-After: base * 2**(n-1), full jitter.
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    #: Longest pause any single response can impose (a daily quota's
    #: "retry in 9 hours" becomes a probe every this many seconds).
    max_pause_s: float = 900.0

    def __post_init__(self) -> None:
        if self.initial_concurrency < 1:
            raise ValueError("initial_concurrency must be at least 1")
        if self.max_concurrency < self.initial_concurrency:
            raise ValueError("max_concurrency must be at least initial_concurrency")
        if self.success_window is not None and self.success_window < 1:
            raise ValueError("success_window must be at least 1 (or None)")
        if not self.lease_secs > 0:
            raise ValueError("lease_secs must be positive")
        if not 0.0 <= self.low_water <= 1.0:
            raise ValueError("low_water must be within [0, 1]")
        if self.backoff_base_s < 0 or self.backoff_max_s < self.backoff_base_s:
            raise ValueError("need 0 <= backoff_base_s <= backoff_max_s")
        if not self.max_pause_s > 0:
            raise ValueError("max_pause_s must be positive")


class _Budget:
    """One budget (requests or tokens): the server's last word, spent locally.

    ``remaining`` is an estimate: the figure of the newest response, less
    what may have been granted since without the server having counted it,
    less every grant after that. Newer information replaces older: responses
    are ordered by their calls' grants (a call granted later was counted
    later), and a response about an earlier call, arriving late, changes
    nothing. Headers from different windows, proxies and providers disagree
    (a 200 stating a six-minute window of 10,000 calls, a 429 a one-second
    window of 240); the newest figures win as a whole, so the remaining
    count of one window is never paired with the reset of another. A
    response with another limit describes another window: what was learnt
    about the old one's length is dropped. At the reset the budget is
    restored to the limit, and the next window is assumed to end one period
    later until a response says when it really does.

    The period is learnt two ways. A reset bounds it from below (the window
    lasts at least as long as the reset a call saw); a server that states
    its budget only on a 429, late in a window, makes that bound far too
    short, and windows extrapolated from it would end early and spend each
    real window's budget twice. The ends of two different windows are a
    whole number of periods apart, and those windows served at least what
    was served between them, so a gap divided by the fewest windows that can
    have served that much bounds the period from above; the tightest such
    bound, when not below the lower one, is the period.
    """

    __slots__ = (
        "guessed_reset",
        "last_spend_at",
        "limit",
        "longest",
        "period",
        "reading_seq",
        "remaining",
        "reset_at",
        "seen_remaining",
        "served",
        "spacing",
        "straddling",
        "window_end",
    )

    def __init__(self) -> None:
        self.limit: int | None = None
        self.remaining: float | None = None
        self.reset_at: float | None = None  # clock time the budget is restored
        self.guessed_reset = False  # reset_at extrapolated, not reported
        self.period: float | None = None  # the window's length, as far as known
        self.longest: float | None = None  # longest reset seen: a lower bound of the period
        self.spacing: float | None = None  # tightest upper bound of the period
        self.served = 0.0  # served since window_end, by calls granted after it
        self.window_end: float | None = None  # earliest estimate of the latest window's end
        self.straddling = 0.0  # spent after the reset, before the budget was restored
        self.seen_remaining: int | None = None  # last figure a server sent
        self.reading_seq = -1  # grant order of the newest response taken in
        self.last_spend_at = -math.inf

    def _new_window_kind(self) -> None:
        """Another limit: nothing learnt about the old window's length applies."""
        self.longest = self.spacing = self.period = self.window_end = None
        self.served = self.straddling = 0.0
        self.reset_at = None
        self.guessed_reset = False

    def observe(
        self,
        limit: int | None,
        remaining: int | None,
        reset_s: float | None,
        *,
        seq: int,
        unseen: float,
        now: float,
        measured_at: float,
        counted_at: float,
        exact: bool,
    ) -> None:
        """Take in a response's figures.

        ``seq`` orders responses by their calls' grants (0 for a call whose
        grant is not known); an older response than the newest taken in is
        ignored. ``reset_s`` counts from ``measured_at``; ``counted_at`` is
        the earliest time the server can have counted the call (its grant),
        so ``reset - counted_at`` bounds the window's length from below. An
        ``exact`` reset (a timestamp) replaces the known one outright; a
        delta, skewed by the call's travel time, only moves a reset of the
        same window later, and never beyond the latest time it can mean.
        """
        self.refresh(now)
        if limit is None and remaining is None:
            return
        if seq < self.reading_seq:
            return  # a late answer about an earlier call: stale
        self.reading_seq = seq
        if limit is not None:
            if self.limit is not None and limit != self.limit:
                self._new_window_kind()
            self.limit = limit
        if remaining is None:
            return
        self.seen_remaining = remaining
        estimate = max(0.0, remaining - unseen)
        if reset_s is None:
            self.remaining = estimate
            return
        reset_at = measured_at + reset_s
        if reset_at > counted_at:
            self.longest = max(self.longest or 0.0, reset_at - counted_at)
        self._learn_period(reset_at)
        if reset_at <= now:
            # The window it describes is over (its figures with it); its end
            # still pins down where the extrapolated windows fall, so errors
            # do not pile up.
            if self.guessed_reset and self.period and self.reset_at is not None:
                windows = round((self.reset_at - reset_at) / self.period)
                if windows >= 1:
                    anchored = reset_at + windows * self.period
                    self.reset_at = anchored if exact else max(self.reset_at, anchored)
            return
        self.remaining = estimate
        known = self.reset_at
        if (
            known is not None
            and not exact
            and now + reset_s >= known  # the reading can mean the known end
            and reset_at <= known + 0.5 * (self.period or 0.0)
        ):
            # Both bound the same window's end from below; neither lies
            # beyond the latest moment this reading can mean.
            self.reset_at = max(known, reset_at)
        else:
            # A timestamp, another window, or a known end this reading
            # contradicts: the newer word wins.
            self.reset_at = reset_at
            self.straddling = 0.0
        self.guessed_reset = False

    def _learn_period(self, end: float) -> None:
        """Refine the period from a reported window end (see the class docs)."""
        longest = self.longest or 0.0
        if self.spacing is not None and self.spacing < longest:
            self.spacing = None  # shorter than the window: both ends were of one window
        last = self.window_end
        if last is None or (longest > 0 and end - last > longest):
            if last is not None:
                windows = max(1, math.ceil(self.served / self.limit)) if self.limit else 1
                bound = (end - last) / windows
                if bound >= longest:
                    self.spacing = bound if self.spacing is None else min(self.spacing, bound)
            self.window_end = end
            self.served = 0.0
        elif end >= last - longest:
            self.window_end = min(last, end)  # the same window again
        self.period = max(longest, self.spacing or 0.0) or None

    def count_served(self, amount: float, granted_at: float) -> None:
        """A call granted at ``granted_at`` was served and used ``amount``."""
        if self.window_end is not None and granted_at > self.window_end:
            self.served += amount

    def spend(self, amount: float, now: float) -> None:
        self.refresh(now)
        if self.remaining is not None:
            self.remaining = max(0.0, self.remaining - amount)
        if self.reset_at is not None and now >= self.reset_at:
            self.straddling += amount
        self.last_spend_at = now

    def restored_at(self) -> float | None:
        """When the budget counts as whole again.

        A tenth of a window after the stated reset: resets are measured from
        the grant, a little before the server counted the call, and the first
        calls of a new window must not land at the end of the old one. What
        was spent in between may have landed in the new window, so the
        restored budget is short of it.
        """
        if self.reset_at is None:
            return None
        return self.reset_at + 0.1 * (self.period or 0.0)

    def refresh(self, now: float) -> None:
        reset_at, restored_at = self.reset_at, self.restored_at()
        if reset_at is None or restored_at is None or now < restored_at:
            return
        carried = self.straddling if now < reset_at + (self.period or 0.0) else 0.0
        self.straddling = 0.0
        self.remaining = max(0.0, self.limit - carried) if self.limit is not None else None
        if self.remaining is not None and self.period:
            windows = math.floor((now - reset_at) / self.period) + 1
            self.reset_at = reset_at + windows * self.period
            self.guessed_reset = True
        else:
            self.reset_at = None

    def ready_at(self, amount: float, now: float, low_water: float, low_abs: float) -> float:
        """Earliest time spending ``amount`` keeps the budget lasting until the reset."""
        self.refresh(now)
        if self.remaining is None or self.reset_at is None:
            return now
        if self.limit:
            amount = min(amount, self.limit)  # a call bigger than the budget waits for a full one
        if self.remaining <= 0 or self.remaining < amount:
            return self.restored_at() or now
        low = self.remaining < low_water * self.limit if self.limit else self.remaining <= low_abs
        if not low or amount <= 0:
            return now
        start = self.last_spend_at if math.isfinite(self.last_spend_at) else now
        paced = start + (self.reset_at - start) * amount / self.remaining
        return max(now, min(paced, self.reset_at))


class _Refill:
    """Whether a request budget refills continuously, and how fast.

    Many servers enforce their limit as a token bucket: the budget refills
    at a steady rate and the stated reset is when the bucket will be full
    again, not the end of a window. Such a reset is the bucket's *theoretical
    arrival time* (TAT): every call the server counts pushes it one refill
    interval later, from wherever it stood (or from the call's arrival, when
    the bucket was full). A fixed window's reset does not move while the
    window lasts. So each in-order reading of a served call, compared with
    the reading before it, estimates the interval as the TAT's advance per
    call counted in between; the median of the recent estimates is the
    interval, and a budget whose median advance is a sizable share of
    ``period / limit`` refills continuously. The bucket's capacity follows
    from a reading too: what remains plus the reset in intervals.

    Once known, calls are allowed as the bucket refills (one per interval
    after the burst is spent) instead of waiting for the full reset. Readings
    only from 429s (a server stating its budget only on refusals) never
    establish a bucket: the window logic keeps those.
    """

    __slots__ = (
        "active",
        "capacity",
        "estimates",
        "guard",
        "interval",
        "last_at",
        "last_seq",
        "readings",
        "tat",
        "tat_seq",
    )

    #: Estimates needed before the median counts.
    MIN_ESTIMATES = 3
    #: A median advance per call above this share of ``period / limit`` means a bucket.
    SHARE = 0.5
    #: Margin after the predicted refill, as a share of the interval (adapted by 429s).
    GUARD_MIN = 0.02
    GUARD_MAX = 0.25

    def __init__(self) -> None:
        self.estimates: deque[float] = deque(maxlen=15)
        self.readings: deque[tuple[int, float]] = deque(maxlen=32)  # (remaining, reset_s)
        self.last_seq = -1  # the latest in-order reading: its permit and reported TAT
        self.last_at = -math.inf
        self.tat: float | None = None  # predicted clock time the bucket is full
        self.tat_seq = -1
        self.interval: float | None = None
        self.capacity = 1.0
        self.active = False
        self.guard = self.GUARD_MIN

    def observe(
        self,
        *,
        seq: int,
        served: bool,
        remaining: int,
        reset_s: float,
        tat: float,
        counted: Callable[[int, int], tuple[int, float] | None],
        unseen: list[float],
        limit: int | None,
        period: float | None,
    ) -> None:
        """Take in one reading: the call ``seq`` reported ``remaining`` and a reset at ``tat``.

        ``counted(a, b)`` gives how many calls granted after ``a`` up to ``b``
        the server may have counted (not known to be refused), with the grant
        time of the first of them, or None when that is no longer known.
        ``unseen`` are the grant times of calls still in flight granted no
        earlier than this one: the server may not have counted them yet.
        """
        # Only served calls' readings are compared: a refused call may reach
        # the server after calls granted later, its reading counting them.
        if served and seq > self.last_seq:
            if self.last_seq >= 0:
                span = counted(self.last_seq, seq)
                if span is not None and span[0] >= 1:
                    calls, first_grant = span
                    self.estimates.append((tat - max(self.last_at, first_grant)) / calls)
            self.last_seq, self.last_at = seq, tat
        self.readings.append((remaining, reset_s))
        self._settle(limit, period)
        if self.interval is not None and seq >= self.tat_seq:
            # The server's figure, advanced by the calls it may not have seen.
            predicted = tat
            for granted_at in sorted(unseen):
                predicted = max(predicted, granted_at) + self.interval
            self.tat, self.tat_seq = predicted, seq

    def _settle(self, limit: int | None, period: float | None) -> None:
        if len(self.estimates) < self.MIN_ESTIMATES:
            return
        ordered = sorted(self.estimates)
        median = ordered[len(ordered) // 2]
        # A bucket advances by one interval per call, reading after reading;
        # a window's end stands still and then jumps by whatever was left of
        # the window, so its advances scatter.
        steady = sum(1 for e in ordered if 0.75 * median <= e <= 1.25 * median)
        self.active = bool(
            limit
            and period
            and median > 0
            and median >= self.SHARE * period / limit
            and steady >= max(self.MIN_ESTIMATES, math.ceil(2 * len(ordered) / 3))
        )
        if not self.active:
            self.interval = None
            return
        self.interval = median
        fullest = max(r + s / median for r, s in self.readings)
        capacity = max(1.0, math.floor(fullest + 0.25))
        self.capacity = min(capacity, float(limit)) if limit else capacity

    def spend(self, amount: float, now: float) -> None:
        if self.interval is not None and self.tat is not None:
            self.tat = max(self.tat, now) + amount * self.interval

    def ready_at(self, amount: float, now: float) -> float:
        """Earliest time a call of ``amount`` finds a token waiting in the bucket."""
        if not self.active or self.interval is None or self.tat is None:
            return now
        amount = min(amount, self.capacity)
        allowed = self.tat - (self.capacity - amount) * self.interval
        return max(now, allowed + self.guard * self.interval)

    def one_token_in(self, reset_s: float) -> float | None:
        """Seconds until one more call is allowed, given a reset of ``reset_s``."""
        if not self.active or self.interval is None:
            return None
        return max(0.0, reset_s - (self.capacity - 1.0) * self.interval)

    def refused(self) -> None:
        """A call the prediction allowed was refused: keep a wider margin."""
        if self.active:
            self.guard = min(self.GUARD_MAX, self.guard + 0.05)

    def succeeded(self) -> None:
        self.guard = max(self.GUARD_MIN, self.guard - 0.005)


@dataclass(slots=True)
class _Held:
    """A granted permit the governor is waiting to hear back about."""

    id: str
    seq: int
    granted_at: float
    expires_at: float
    tokens: int
    saturated: bool
    swarm_id: str
    subtask_id: str


@dataclass(slots=True, eq=False)
class _Waiter:
    enqueued_at: float
    wake: asyncio.Future[None] | None = field(default=None)


class RateGovernor:
    """Permits for one :class:`GovernorKey`; see the module docs for the policy.

    Use from one event loop. ``acquire`` is the only coroutine; ``report`` and
    ``stats`` are plain calls.
    """

    def __init__(
        self,
        key: GovernorKey,
        settings: GovernorSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Rng = random.random,
        wall_clock: WallClock | None = None,
    ) -> None:
        self.key = key
        self.settings = settings or GovernorSettings()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))

        self._limit = self.settings.initial_concurrency
        # Slow start runs while the limit is below this; a 429 sets it to the
        # halved limit, after which growth is additive.
        self._slow_start_below = self.settings.max_concurrency if self.settings.slow_start else 0
        self._successes = 0
        self._consecutive_429 = 0
        self._decrease_seq = 0  # permits with seq <= this predate the last decrease
        self._decrease_at = -math.inf
        self._pause_until = -math.inf

        self._queue: deque[_Waiter] = deque()
        self._held: dict[str, _Held] = {}  # grant order == expiry order
        self._seq = 0
        self._avg_tokens = 0.0
        self._requests = _Budget()
        self._tokens = _Budget()
        self._refill = _Refill()  # whether the request budget is a token bucket
        self._grant_times: deque[float] = deque(maxlen=_GRANT_HISTORY)  # of the latest seqs
        self._refused: set[int] = set()  # recent seqs answered with a 429
        self._closed = False

        self._total_requests = 0
        self._rate_limit_hits = 0
        self._expired = 0
        self._total_wait_s = 0.0
        self._recent: deque[float] = deque()

    # ------------------------------------------------------------------ figures

    @property
    def concurrency_limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        self._expire(self._clock())
        return len(self._held)

    @property
    def waiting(self) -> int:
        """Callers in line for a permit."""
        return len(self._queue)

    @property
    def expired_permits(self) -> int:
        """Permits released because their lease ran out."""
        return self._expired

    def holds(self, permit_id: str) -> bool:
        return permit_id in self._held

    def pause_remaining(self) -> float:
        """Seconds until a 429-imposed pause ends (0 when none)."""
        return max(0.0, self._pause_until - self._clock())

    def stats(self) -> common_pb2.RateLimitStats:
        now = self._clock()
        self._expire(now)
        self._trim_recent(now)
        delay = max(0.0, self._ready_at(now, self._token_estimate(0)) - now)
        return common_pb2.RateLimitStats(
            key=self.key.label(),
            total_requests=self._total_requests,
            rate_limit_hits=self._rate_limit_hits,
            in_flight=len(self._held),
            concurrency_limit=self._limit,
            current_delay_ms=round(delay * 1000),
            requests_per_minute=float(len(self._recent)),
            total_wait_ms=round(self._total_wait_s * 1000),
            remaining_requests=_or_unknown(self._requests.seen_remaining),
            remaining_tokens=_or_unknown(self._tokens.seen_remaining),
        )

    # ------------------------------------------------------------------ permits

    async def acquire(
        self, *, swarm_id: str = "", subtask_id: str = "", estimated_tokens: int = 0
    ) -> Permit:
        """Wait in line for a permit (FIFO). Cancelling leaves the line cleanly."""
        if self._closed:
            raise GovernorClosed(f"rate governor {self.key.label()} is closed")
        waiter = _Waiter(enqueued_at=self._clock())
        self._queue.append(waiter)
        try:
            while True:
                if self._closed:
                    raise GovernorClosed(f"rate governor {self.key.label()} is closed")
                if self._queue[0] is not waiter:
                    await self._park(waiter, None)
                    continue
                now = self._clock()
                self._expire(now)
                tokens = self._token_estimate(estimated_tokens)
                if len(self._held) >= self._limit:
                    # The earliest lease to run out frees a slot at the latest then.
                    first = next(iter(self._held.values()))
                    await self._park(waiter, first.expires_at - now)
                    continue
                ready_at = self._ready_at(now, tokens)
                if ready_at > now:
                    await self._park(waiter, ready_at - now)
                    continue
                # Granting and returning happen in one step: nothing can cancel
                # this task in between, so a permit is never lost in transit.
                return self._grant(waiter, now, tokens, swarm_id, subtask_id)
        finally:
            was_head = bool(self._queue) and self._queue[0] is waiter
            try:
                self._queue.remove(waiter)
            except ValueError:
                pass
            if was_head:
                self._wake_head()

    def report(
        self,
        permit_id: str,
        outcome: int,
        http_status: int = 0,
        headers: Mapping[str, str] | None = None,
        *,
        tokens_used: int = 0,
    ) -> float:
        """Record how a permitted call ended; returns the pause imposed, in seconds.

        ``outcome`` is a ``CallOutcome`` value; an HTTP status of 429 counts as
        RATE_LIMITED whatever the outcome says. An unknown or expired permit
        still feeds its headers and its 429 in.
        """
        now = self._clock()
        self._expire(now)
        held = self._held.pop(permit_id, None)
        snapshot = parse_headers(headers or {}, now=self._wall_clock())
        limited = outcome == orchestrator_pb2.CALL_OUTCOME_RATE_LIMITED or http_status == 429
        if held is not None and outcome == orchestrator_pb2.CALL_OUTCOME_SUCCESS and http_status != 429:
            self._requests.count_served(1, held.granted_at)
            self._tokens.count_served(max(0, tokens_used), held.granted_at)
        if held is not None and limited:
            self._refused.add(held.seq)
            if len(self._refused) > _GRANT_HISTORY:
                oldest = self._seq - _GRANT_HISTORY
                self._refused = {seq for seq in self._refused if seq > oldest}
        self._observe(snapshot, held, now, served=not limited and outcome == orchestrator_pb2.CALL_OUTCOME_SUCCESS)
        if tokens_used > 0:
            if self._avg_tokens == 0:
                self._avg_tokens = float(tokens_used)
            else:
                self._avg_tokens += _TOKENS_EWMA_ALPHA * (tokens_used - self._avg_tokens)

        pause = 0.0
        if limited:
            pause = self._on_rate_limited(snapshot, held, now)
        elif outcome in (
            orchestrator_pb2.CALL_OUTCOME_SUCCESS,
            orchestrator_pb2.CALL_OUTCOME_UNSPECIFIED,
        ):
            self._on_success(held)
        elif outcome == orchestrator_pb2.CALL_OUTCOME_ERROR and snapshot.retry_after_s is not None:
            # An overloaded server (503) asking for room: honour it, no decrease.
            pause = self._pause_for(min(snapshot.retry_after_s, self.settings.max_pause_s), now)
        self._wake_head()
        return pause

    async def aclose(self) -> None:
        """Refuse new permits and send every waiter away with GovernorClosed."""
        self._closed = True
        for waiter in list(self._queue):
            _resolve(waiter.wake)
        await asyncio.sleep(0)

    # ------------------------------------------------------------------ internals

    async def _park(self, waiter: _Waiter, timeout: float | None) -> None:
        waiter.wake = asyncio.get_running_loop().create_future()
        if timeout is None:
            await waiter.wake
            return
        sleeper = asyncio.ensure_future(self._sleep(max(0.0, timeout)))
        try:
            await asyncio.wait((waiter.wake, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()

    def _wake_head(self) -> None:
        if self._queue:
            _resolve(self._queue[0].wake)

    def _token_estimate(self, estimated: int) -> int:
        return estimated if estimated > 0 else round(self._avg_tokens)

    def _ready_at(self, now: float, tokens: int) -> float:
        low_water = self.settings.low_water
        if self._refill.active:
            requests_at = self._refill.ready_at(1, now)
        else:
            requests_at = self._requests.ready_at(1, now, low_water, self._limit)
        return max(
            self._pause_until,
            requests_at,
            self._tokens.ready_at(tokens, now, low_water, tokens * self._limit),
        )

    def _grant(
        self, waiter: _Waiter, now: float, tokens: int, swarm_id: str, subtask_id: str
    ) -> Permit:
        self._queue.popleft()
        self._seq += 1
        held = _Held(
            id=uuid.uuid4().hex,
            seq=self._seq,
            granted_at=now,
            expires_at=now + self.settings.lease_secs,
            tokens=tokens,
            # Only a call that fills the last slot tests the limit; when pacing
            # or a pause holds callers back, the limit proves nothing.
            saturated=len(self._held) + 1 >= self._limit,
            swarm_id=swarm_id,
            subtask_id=subtask_id,
        )
        self._held[held.id] = held
        self._grant_times.append(now)
        self._requests.spend(1, now)
        self._refill.spend(1, now)
        self._tokens.spend(tokens, now)
        waited = max(0.0, now - waiter.enqueued_at)
        self._total_wait_s += waited
        self._total_requests += 1
        self._recent.append(now)
        self._trim_recent(now)
        self._wake_head()  # the next in line may go at once
        return Permit(
            id=held.id,
            key=self.key,
            waited_ms=round(waited * 1000),
            lease_ms=round(self.settings.lease_secs * 1000),
        )

    def _expire(self, now: float) -> None:
        while self._held:
            first = next(iter(self._held.values()))
            if first.expires_at > now:
                return
            del self._held[first.id]
            self._expired += 1
            log.warning(
                "rate governor %s: permit %s (swarm %s, subtask %s) expired unreported",
                self.key.label(),
                first.id,
                first.swarm_id or "-",
                first.subtask_id or "-",
            )

    def _trim_recent(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - _RPM_WINDOW_S:
            self._recent.popleft()

    def _observe(
        self, snap: RateLimitSnapshot, held: _Held | None, now: float, *, served: bool
    ) -> None:
        # Calls still in flight that were granted no earlier than the one
        # reporting may not be counted in its response yet (servers see calls
        # of one burst in their own order), so their share is held back. For
        # an unknown permit every call in flight is held back.
        since = held.granted_at if held is not None else -math.inf
        unseen = [h for h in self._held.values() if h.granted_at >= since]
        # Servers count a call when it arrives, long before a slow response is
        # reported back: a delta reset is measured from the grant, when known.
        # A timestamp reset was converted at the report and is exact as is.
        granted_at = held.granted_at if held is not None else now
        # An absurd reset (a daily quota, a bogus header) means a probe every
        # max_pause_s at worst, never a wait without end.
        cap = self.settings.max_pause_s
        seq = held.seq if held is not None else 0
        self._requests.observe(
            snap.limit_requests,
            snap.remaining_requests,
            _capped(snap.reset_requests_s, cap),
            seq=seq,
            unseen=float(len(unseen)),
            now=now,
            measured_at=now if snap.reset_requests_absolute else granted_at,
            counted_at=granted_at,
            exact=snap.reset_requests_absolute,
        )
        self._tokens.observe(
            snap.limit_tokens,
            snap.remaining_tokens,
            _capped(snap.reset_tokens_s, cap),
            seq=seq,
            unseen=float(sum(h.tokens for h in unseen)),
            now=now,
            measured_at=now if snap.reset_tokens_absolute else granted_at,
            counted_at=granted_at,
            exact=snap.reset_tokens_absolute,
        )
        reset_s = _capped(snap.reset_requests_s, cap)
        if held is not None and snap.remaining_requests is not None and reset_s is not None:
            measured_at = now if snap.reset_requests_absolute else granted_at
            self._refill.observe(
                seq=held.seq,
                served=served,
                remaining=snap.remaining_requests,
                reset_s=reset_s,
                tat=measured_at + reset_s,
                counted=self._counted,
                unseen=[h.granted_at for h in unseen],
                limit=self._requests.limit,
                period=self._requests.period,
            )

    def _counted(self, after: int, upto: int) -> tuple[int, float] | None:
        """Calls granted after seq ``after`` up to ``upto`` not known to be refused,
        with the grant time of the first of them; None when there are none or
        they are no longer remembered."""
        first = self._seq - len(self._grant_times) + 1  # seq of _grant_times[0]
        if after + 1 < first or upto > self._seq or upto <= after:
            return None
        counted = [seq for seq in range(after + 1, upto + 1) if seq not in self._refused]
        if not counted:
            return None
        return len(counted), self._grant_times[counted[0] - first]

    def _on_success(self, held: _Held | None) -> None:
        self._consecutive_429 = 0
        self._refill.succeeded()
        if held is None or not held.saturated or held.seq <= self._decrease_seq:
            return
        self._successes += 1
        if self._limit < self._slow_start_below:
            window = 1
        else:
            window = self.settings.success_window or self._limit
        if self._successes >= window:
            self._successes = 0
            if self._limit < self.settings.max_concurrency:
                self._limit += 1
                log.debug("rate governor %s: concurrency -> %d", self.key.label(), self._limit)

    def _on_rate_limited(self, snap: RateLimitSnapshot, held: _Held | None, now: float) -> float:
        settings = self.settings
        self._rate_limit_hits += 1
        # One decrease per congestion event: a permit granted before the last
        # decrease saw the old limit. Unknown permits (expired) were granted at
        # least a lease ago, so they count only if no decrease is that recent.
        # The back-off escalates per event too, not per 429 of one burst.
        fresh = (
            held.seq > self._decrease_seq
            if held is not None
            else now - self._decrease_at >= settings.lease_secs
        )
        # Against a token bucket whose refill rate is known, pacing, not the
        # number of calls in flight, decides when calls land: a 429 means the
        # prediction ran a little early, so it widens the margin and the
        # server's figures correct the prediction; halving would only starve
        # a key whose calls take longer than one refill interval.
        bucket = self._refill.active and snap.remaining_requests is not None
        if bucket:
            self._refill.refused()
        if fresh and not bucket:
            self._consecutive_429 += 1
            self._limit = max(1, self._limit // 2)
            self._slow_start_below = self._limit
            self._successes = 0
            self._decrease_seq = self._seq
            self._decrease_at = now
            log.info("rate governor %s: 429, concurrency -> %d", self.key.label(), self._limit)

        floor = 0.0
        if snap.retry_after_s is not None:
            floor = snap.retry_after_s
        else:
            if snap.remaining_requests == 0 and snap.reset_requests_s is not None:
                # A bucket has a call's worth again before it is full.
                token = self._refill.one_token_in(snap.reset_requests_s) if bucket else None
                floor = max(floor, snap.reset_requests_s if token is None else token)
            if snap.remaining_tokens == 0 and snap.reset_tokens_s is not None:
                floor = max(floor, snap.reset_tokens_s)
        if floor > 0:
            # The server said when to come back: wait exactly that long. The
            # halved concurrency limit, not extra sleep, keeps the callers
            # from returning as one herd.
            pause = floor
        else:
            exponent = min(max(self._consecutive_429 - 1, 0), 30)
            backoff = min(settings.backoff_max_s, settings.backoff_base_s * 2.0**exponent)
            pause = full_jitter(backoff, self._rng)
        return self._pause_for(min(pause, settings.max_pause_s), now)

    def _pause_for(self, pause: float, now: float) -> float:
        """Hold every caller of this key for ``pause`` seconds; returns the time left."""
        self._pause_until = max(self._pause_until, now + pause)
        return max(0.0, self._pause_until - now)


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _capped(seconds: float | None, cap: float) -> float | None:
    return None if seconds is None else min(seconds, cap)


def _or_unknown(value: int | None) -> int:
    return -1 if value is None else value


class GovernorRegistry:
    """All governors of one orchestrator, created on first use of a key.

    Also remembers which keys each swarm used, so a swarm's statistics list
    only its own governors.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Rng = random.random,
        wall_clock: WallClock | None = None,
        initial_concurrency: int = 4,
        max_concurrency: int = 64,
        success_window: int | None = None,
        slow_start: bool = True,
        lease_secs: float = 300.0,
        low_water: float = 0.2,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_pause_s: float = 900.0,
    ) -> None:
        self.settings = GovernorSettings(
            initial_concurrency=initial_concurrency,
            max_concurrency=max_concurrency,
            success_window=success_window,
            slow_start=slow_start,
            lease_secs=lease_secs,
            low_water=low_water,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            max_pause_s=max_pause_s,
        )
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._wall_clock = wall_clock
        self._governors: dict[GovernorKey, RateGovernor] = {}
        self._swarm_keys: dict[str, dict[GovernorKey, None]] = {}
        self._closed = False

    def governor(self, key: GovernorKey) -> RateGovernor:
        """The governor of ``key``, created on first use."""
        gov = self._governors.get(key)
        if gov is None:
            if self._closed:
                raise GovernorClosed("rate governors are closed")
            gov = RateGovernor(
                key,
                self.settings,
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
                wall_clock=self._wall_clock,
            )
            self._governors[key] = gov
        return gov

    def _note_swarm(self, swarm_id: str, key: GovernorKey) -> None:
        if swarm_id:
            self._swarm_keys.setdefault(swarm_id, {})[key] = None

    async def acquire(
        self,
        key: GovernorKey,
        *,
        swarm_id: str = "",
        subtask_id: str = "",
        estimated_tokens: int = 0,
    ) -> Permit:
        """Wait for a permit to call ``key``'s endpoint once."""
        if estimated_tokens < 0:
            raise InvalidArgument("estimated_tokens must not be negative")
        gov = self.governor(key)
        self._note_swarm(swarm_id, key)
        return await gov.acquire(
            swarm_id=swarm_id, subtask_id=subtask_id, estimated_tokens=estimated_tokens
        )

    def report(
        self,
        permit_id: str,
        key: GovernorKey | None,
        outcome: int,
        http_status: int = 0,
        headers: Mapping[str, str] | None = None,
        *,
        swarm_id: str = "",
        tokens_used: int = 0,
    ) -> int:
        """Record a call's outcome; returns the pause now imposed on the key, in ms.

        The permit's own governor is used when it is still held; otherwise
        (expired, unknown) ``key``'s, so the headers are not lost. With
        neither, nothing is recorded and 0 is returned.
        """
        gov = self._governors.get(key) if key is not None else None
        if gov is None or not gov.holds(permit_id):
            gov = next((g for g in self._governors.values() if g.holds(permit_id)), gov)
        if gov is None:
            if key is None or self._closed:
                return 0
            gov = self.governor(key)
        self._note_swarm(swarm_id, gov.key)
        pause = gov.report(permit_id, outcome, http_status, headers, tokens_used=tokens_used)
        return math.ceil(round(pause * 1000, 6))

    def keys(self) -> list[GovernorKey]:
        """Every key with a governor, in order of first use."""
        return list(self._governors)

    def keys_for_swarm(self, swarm_id: str) -> list[GovernorKey]:
        """Keys ``swarm_id`` asked permits for or reported on, in order of first use."""
        return list(self._swarm_keys.get(swarm_id, {}))

    def forget_swarm(self, swarm_id: str) -> None:
        """Drop the record of a swarm's keys (the governors stay)."""
        self._swarm_keys.pop(swarm_id, None)

    def stats(self, keys: Iterable[GovernorKey] | None = None) -> list[common_pb2.RateLimitStats]:
        """Figures of the given keys' governors (all when None); unknown keys are skipped."""
        chosen = self._governors.keys() if keys is None else keys
        return [self._governors[k].stats() for k in chosen if k in self._governors]

    async def aclose(self) -> None:
        """Close every governor; idempotent."""
        self._closed = True
        for gov in list(self._governors.values()):
            await gov.aclose()
