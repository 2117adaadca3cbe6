"""The rate governor's vocabulary: keys, permits, settings, and the clock types.

Everything here is plain data shared by the governor's parts (see
:mod:`swarmd.services.orchestrator.governor` for the policy): a
:class:`GovernorKey` names the limits calls share, a :class:`Permit` is the
leave to make one call, :class:`GovernorSettings` tunes every governor of a
registry, and ``Clock``/``Sleep``/``Rng``/``WallClock`` are the injectable
time sources that let tests run on virtual time.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from swarmd.services.errors import InvalidArgument, Unavailable
from swarmd.v1 import coordinator_pb2

__all__ = [
    "Clock",
    "GovernorClosed",
    "GovernorKey",
    "GovernorSettings",
    "Permit",
    "Rng",
    "Sleep",
    "WallClock",
    "full_jitter",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]
Rng = Callable[[], float]
WallClock = Callable[[], datetime]
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
    def from_proto(cls, pb: coordinator_pb2.RateLimitKey) -> GovernorKey:
        """Build from the wire form; provider and model are required."""
        if not pb.provider or not pb.model:
            raise InvalidArgument("rate-limit key needs a provider and a model")
        return cls(pb.provider, pb.base_url, pb.model, pb.api_key_fingerprint)

    def to_proto(self) -> coordinator_pb2.RateLimitKey:
        return coordinator_pb2.RateLimitKey(
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

    def to_proto(self) -> coordinator_pb2.AcquirePermitResponse:
        return coordinator_pb2.AcquirePermitResponse(
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
    #: No caller waits longer than this beyond what the newest response
    #: itself justifies; a response that justifies a longer wait gets it, with
    #: a warning saying why (see :mod:`.governor_pauses`).
    pause_ceiling_s: float = 60.0

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
        if not self.pause_ceiling_s > 0:
            raise ValueError("pause_ceiling_s must be positive")
