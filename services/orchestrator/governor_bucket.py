"""Whether a request budget is a token bucket, and how fast it refills.

See :class:`RefillEstimate`. The window logic (:mod:`.governor_window`)
covers every budget; this estimate, once confident, lets calls go as the
bucket refills instead of waiting for the whole reset.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

__all__ = ["RefillEstimate"]


class RefillEstimate:
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
