"""One key's governor: the waiting line, grants, leases and reports.

:class:`RateGovernor` combines the brakes of its parts (see
:mod:`swarmd.services.orchestrator.governor` for the whole policy): the
AIMD limit (:mod:`.governor_aimd`), the request and token budgets the
headers state (:mod:`.governor_window`, :mod:`.governor_bucket`) and the
pauses with their liveness bound (:mod:`.governor_pauses`). A permit is
granted when all agree.

Waiters are served strictly first come, first served: only the head of the
line may take a permit, and it does so in its own task, so a cancelled
acquire leaves the line without ever having held anything. The head sleeps
until the earliest moment its brakes allow, and is woken by every report
(which may end or shorten a pause, free a slot or restore a budget), so a
pause ending is never missed. Permits carry a lease; one whose outcome never
arrives (a dead executor) is released when the lease runs out, and a late
report for it still feeds its headers in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from swarmd.services.orchestrator.governor_aimd import ConcurrencyLimit
from swarmd.services.orchestrator.governor_bucket import RefillEstimate
from swarmd.services.orchestrator.governor_pauses import Pauses, justified_wait
from swarmd.services.orchestrator.governor_types import (
    Clock,
    GovernorClosed,
    GovernorKey,
    GovernorSettings,
    Permit,
    Rng,
    Sleep,
    WallClock,
)
from swarmd.services.orchestrator.governor_window import WindowBudget
from swarmd.services.orchestrator.ratelimit_headers import RateLimitSnapshot, parse_headers
from swarmd.v1 import common_pb2, coordinator_pb2

__all__ = ["RateGovernor", "WarningSink"]

log = logging.getLogger(__name__)

#: Told (key, code, message) when a response makes callers wait beyond the ceiling.
WarningSink = Callable[[GovernorKey, str, str], None]

_RPM_WINDOW_S = 60.0
_GRANT_HISTORY = 1024
_TOKENS_EWMA_ALPHA = 0.2
# Waits shorter than this are not waited: far from a clock's origin a float
# cannot tell them apart from now, and a timer for them would fire at once.
_RESOLUTION_S = 1e-6


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
        on_warning: WarningSink | None = None,
    ) -> None:
        self.key = key
        self.settings = settings or GovernorSettings()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._on_warning = on_warning

        self._aimd = ConcurrencyLimit(self.settings, key.label())
        self._pauses = Pauses(self.settings.pause_ceiling_s)

        self._queue: deque[_Waiter] = deque()
        self._held: dict[str, _Held] = {}  # grant order == expiry order
        self._seq = 0
        self._avg_tokens = 0.0
        self._requests = WindowBudget()
        self._tokens = WindowBudget()
        self._refill = RefillEstimate()  # whether the request budget is a token bucket
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
        return self._aimd.limit

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
        return self._pauses.remaining(self._clock())

    def stats(self) -> common_pb2.RateLimitStats:
        now = self._clock()
        self._expire(now)
        self._trim_recent(now)
        ready_at = min(self._ready_at(now, self._token_estimate(0)), self._pauses.latest_start(now))
        delay = max(0.0, ready_at - now)
        return common_pb2.RateLimitStats(
            key=self.key.label(),
            total_requests=self._total_requests,
            rate_limit_hits=self._rate_limit_hits,
            in_flight=len(self._held),
            concurrency_limit=self._aimd.limit,
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
                if len(self._held) >= self._aimd.limit:
                    # The earliest lease to run out frees a slot at the latest then.
                    first = next(iter(self._held.values()))
                    await self._park(waiter, first.expires_at - now)
                    continue
                # Whatever the brakes conclude from older figures, no caller
                # waits beyond what the newest response justifies (plus the
                # ceiling): a key whose headers disagree never stalls.
                ready_at = min(self._ready_at(now, tokens), self._pauses.latest_start(waiter.enqueued_at))
                if ready_at - now > _RESOLUTION_S:
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
        limited = outcome == coordinator_pb2.CALL_OUTCOME_RATE_LIMITED or http_status == 429
        if held is not None and outcome == coordinator_pb2.CALL_OUTCOME_SUCCESS and http_status != 429:
            self._requests.count_served(1, held.granted_at)
            self._tokens.count_served(max(0, tokens_used), held.granted_at)
        if held is not None and limited:
            self._refused.add(held.seq)
            if len(self._refused) > _GRANT_HISTORY:
                oldest = self._seq - _GRANT_HISTORY
                self._refused = {seq for seq in self._refused if seq > oldest}
        self._observe(snapshot, held, now, served=not limited and outcome == coordinator_pb2.CALL_OUTCOME_SUCCESS)
        if tokens_used > 0:
            if self._avg_tokens == 0:
                self._avg_tokens = float(tokens_used)
            else:
                self._avg_tokens += _TOKENS_EWMA_ALPHA * (tokens_used - self._avg_tokens)

        pause = 0.0
        seq = held.seq if held is not None else 0
        if limited:
            pause = self._on_rate_limited(snapshot, held, now)
        elif outcome in (
            coordinator_pb2.CALL_OUTCOME_SUCCESS,
            coordinator_pb2.CALL_OUTCOME_UNSPECIFIED,
        ):
            self._refill.succeeded()
            self._aimd.succeeded(held.seq if held else None, held.saturated if held else False)
        elif outcome == coordinator_pb2.CALL_OUTCOME_ERROR and snapshot.retry_after_s is not None:
            # An overloaded server (503) asking for room: honour it, no decrease.
            pause = self._pauses.impose(min(snapshot.retry_after_s, self.settings.max_pause_s), now, seq)
        self._justify(snapshot, pause, now)
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
            requests_at = self._requests.ready_at(1, now, low_water, self._aimd.limit)
        return max(
            self._pauses.until,
            requests_at,
            self._tokens.ready_at(tokens, now, low_water, tokens * self._aimd.limit),
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
            saturated=len(self._held) + 1 >= self._aimd.limit,
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
        # The newest figures replace older ones, so a call granted earlier
        # but still in flight may reach the server after this one: hold back
        # every call in flight from the budget's estimate.
        in_flight = list(self._held.values())
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
            unseen=float(len(in_flight)),
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
            unseen=float(sum(h.tokens for h in in_flight)),
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

    def _on_rate_limited(self, snap: RateLimitSnapshot, held: _Held | None, now: float) -> float:
        settings = self.settings
        self._rate_limit_hits += 1
        seq = held.seq if held is not None else None
        # One decrease per congestion event; the back-off escalates per event
        # too, not per 429 of one burst.
        fresh = self._aimd.is_fresh(seq, now)
        # Against a token bucket whose refill rate is known, pacing, not the
        # number of calls in flight, decides when calls land: a 429 means the
        # prediction ran a little early, so it widens the margin and the
        # server's figures correct the prediction; halving would only starve
        # a key whose calls take longer than one refill interval.
        bucket = self._refill.active and snap.remaining_requests is not None
        if bucket:
            self._refill.refused()
        if fresh and not bucket:
            self._aimd.decrease(self._seq, now)

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
        # The server said when to come back: wait exactly that long (the
        # halved concurrency limit, not extra sleep, keeps the callers from
        # returning as one herd); else a jittered back-off.
        pause = floor if floor > 0 else self._aimd.backoff(self._rng)
        return self._pauses.impose(min(pause, settings.max_pause_s), now, seq or 0)

    def _justify(self, snap: RateLimitSnapshot, pause: float, now: float) -> None:
        """Note the longest wait this (the newest) response justifies; announce it
        when it exceeds the ceiling."""
        wait, why = justified_wait(snap, pause, self.settings, self._token_estimate(0))
        if self._pauses.justify(wait, now) and self._on_warning is not None:
            capped = " (the longest pause allowed)" if wait >= self.settings.max_pause_s else ""
            self._on_warning(
                self.key,
                "rate_limit_long_pause",
                f"calls to {self.key.label()} wait up to {wait:.0f} s{capped}, beyond the "
                f"{self.settings.pause_ceiling_s:g} s ceiling: {why}",
            )


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _capped(seconds: float | None, cap: float) -> float | None:
    return None if seconds is None else min(seconds, cap)


def _or_unknown(value: int | None) -> int:
    return -1 if value is None else value
