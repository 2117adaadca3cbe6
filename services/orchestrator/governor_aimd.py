"""AIMD concurrency: how many permits of one key may be out at once.

After a window of successes (by default as many as the limit, i.e. one
"round") the limit grows by one, up to ``max_concurrency``; a 429 halves it,
never below one. Like TCP, only permits granted after the last decrease can
cause another one, so a burst of 429s from calls that were already in flight
halves the limit once, not once per call. Only calls that took the last free
slot count as successes of the limit, so a governor held back by pacing or
by a lack of callers does not grow a limit nobody tested. Until the first
429 a key is in *slow start*: every such success earns a slot.
"""

from __future__ import annotations

import logging
import math

from swarmd.services.orchestrator.governor_types import GovernorSettings, Rng, full_jitter

__all__ = ["ConcurrencyLimit"]

log = logging.getLogger(__name__)


class ConcurrencyLimit:
    """The AIMD limit of one key, and the back-off its 429s escalate."""

    __slots__ = (
        "consecutive_429",
        "decrease_at",
        "decrease_seq",
        "label",
        "limit",
        "settings",
        "slow_start_below",
        "successes",
    )

    def __init__(self, settings: GovernorSettings, label: str) -> None:
        self.settings = settings
        self.label = label
        self.limit = settings.initial_concurrency
        # Slow start runs while the limit is below this; a 429 sets it to the
        # halved limit, after which growth is additive.
        self.slow_start_below = settings.max_concurrency if settings.slow_start else 0
        self.successes = 0
        self.consecutive_429 = 0
        self.decrease_seq = 0  # permits with seq <= this predate the last decrease
        self.decrease_at = -math.inf

    def succeeded(self, seq: int | None, saturated: bool) -> None:
        """A call (permit ``seq``, None when unknown) succeeded."""
        self.consecutive_429 = 0
        if seq is None or not saturated or seq <= self.decrease_seq:
            return
        self.successes += 1
        if self.limit < self.slow_start_below:
            window = 1
        else:
            window = self.settings.success_window or self.limit
        if self.successes >= window:
            self.successes = 0
            if self.limit < self.settings.max_concurrency:
                self.limit += 1
                log.debug("rate governor %s: concurrency -> %d", self.label, self.limit)

    def is_fresh(self, seq: int | None, now: float) -> bool:
        """Whether a 429 of permit ``seq`` is a new congestion event.

        A permit granted before the last decrease saw the old limit. Unknown
        permits (expired) were granted at least a lease ago, so they count
        only if no decrease is that recent.
        """
        if seq is not None:
            return seq > self.decrease_seq
        return now - self.decrease_at >= self.settings.lease_secs

    def decrease(self, latest_seq: int, now: float) -> None:
        """Halve the limit (one congestion event); the back-off escalates with it."""
        self.consecutive_429 += 1
        self.limit = max(1, self.limit // 2)
        self.slow_start_below = self.limit
        self.successes = 0
        self.decrease_seq = latest_seq
        self.decrease_at = now
        log.info("rate governor %s: 429, concurrency -> %d", self.label, self.limit)

    def backoff(self, rng: Rng) -> float:
        """A capped exponential back-off with full jitter, for a 429 that names no wait."""
        settings = self.settings
        exponent = min(max(self.consecutive_429 - 1, 0), 30)
        backoff = min(settings.backoff_max_s, settings.backoff_base_s * 2.0**exponent)
        return full_jitter(backoff, rng)
