"""Pauses, and the guarantee that no caller waits without a reason.

A 429 pauses the whole key for what it asks (its Retry-After, or the reset
of the budget it says is spent); a newer response's pause replaces an older
one's, an older response arriving late can only lengthen it up to its own
ask. The governor's other brakes (pacing, extrapolated windows) work from
what earlier responses said, and headers from different windows, proxies
and providers disagree; so, whatever they conclude, a waiting caller is let
through no later than the longest wait the newest response itself justifies
plus ``pause_ceiling_s`` (and never later than its own arrival plus the
ceiling, when the newest response justified nothing longer). A response
that justifies a wait longer than the ceiling is honoured, and announced
once, so the caller can say why the swarm is waiting.
"""

from __future__ import annotations

import math

from swarmd.services.orchestrator.governor_types import GovernorSettings
from swarmd.services.orchestrator.ratelimit_headers import RateLimitSnapshot

__all__ = ["Pauses", "justified_wait"]


class Pauses:
    """The pause of one key and the latest moment any waiter may be held to."""

    __slots__ = ("ceiling", "live_until", "seq", "until", "warned_until")

    def __init__(self, ceiling: float) -> None:
        self.ceiling = ceiling
        self.until = -math.inf  # no permit before this (a 429's pause)
        self.seq = -1  # grant order of the response that set ``until``
        self.live_until = -math.inf  # the newest response's justified wait, plus the ceiling
        self.warned_until = -math.inf  # end of the longest wait already announced

    def impose(self, pause: float, now: float, seq: int) -> float:
        """Pause for ``pause`` seconds on the word of the response of permit ``seq``;
        returns the pause now in force."""
        if seq >= self.seq:
            self.until, self.seq = now + pause, seq
        else:
            self.until = max(self.until, now + pause)
        return max(0.0, self.until - now)

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    def justify(self, wait: float, now: float) -> bool:
        """The newest response justifies waiting ``wait`` seconds from ``now``.

        Returns True when that wait exceeds the ceiling and was not announced
        yet: the caller should say why.
        """
        self.live_until = now + wait + self.ceiling
        if wait <= self.ceiling or now + wait <= self.warned_until:
            return False
        self.warned_until = now + wait
        return True

    def latest_start(self, enqueued_at: float) -> float:
        """The latest a caller in line since ``enqueued_at`` may be held to."""
        return max(self.live_until, enqueued_at + self.ceiling)


def justified_wait(
    snap: RateLimitSnapshot, pause: float, settings: GovernorSettings, call_tokens: int
) -> tuple[float, str]:
    """The longest wait one response justifies by its own figures, and why.

    Its Retry-After; the reset of a budget it says cannot afford a call (of
    ``call_tokens``, for tokens) or is below the low water mark (pacing
    spreads what is left until the reset), plus a tenth as the guard against
    the server's clock; and the ``pause`` it imposed (a back-off, when it
    named no wait). Each is capped at ``max_pause_s``.
    """
    cap = settings.max_pause_s
    reasons: list[tuple[float, str]] = []
    if snap.retry_after_s is not None:
        reasons.append(
            (min(snap.retry_after_s, cap), f"the server's Retry-After asks for {snap.retry_after_s:g} s")
        )
    for name, limit, remaining, reset_s, need in (
        ("requests", snap.limit_requests, snap.remaining_requests, snap.reset_requests_s, 1),
        ("tokens", snap.limit_tokens, snap.remaining_tokens, snap.reset_tokens_s, call_tokens),
    ):
        if remaining is None or reset_s is None:
            continue
        if remaining < max(1, need) or (limit and remaining < settings.low_water * limit):
            stated = f"{remaining}" + (f" of {limit}" if limit else "")
            reasons.append(
                (
                    1.1 * min(reset_s, cap),
                    f"the server says {stated} {name} are left until a reset in {reset_s:g} s",
                )
            )
    reasons.append((pause, "the back-off after repeated 429s"))
    return max(reasons, key=lambda item: item[0])
