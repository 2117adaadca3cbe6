"""Pacing from headers: one budget (requests or tokens) as the server states it.

A :class:`WindowBudget` holds what the newest response said about one
budget (limit, remaining, reset), spends it locally on every grant, restores
it at the reset, and says when a call of a given size may go so the rest
lasts until the reset. Whether a request budget is really a token bucket is
:mod:`.governor_bucket`'s question.
"""

from __future__ import annotations

import math

__all__ = ["WindowBudget"]


class WindowBudget:
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
