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
  replaced by each newer response's figure, less every call still in
  flight (the server may not have counted those yet, whatever order they
  reach it in), so concurrent calls cannot overspend a stale figure.
  Delta resets are measured from the reporting call's grant (servers count
  a call when it arrives, not when its slow answer is read).
* **Pauses.** A 429 pauses the whole key: for the server's Retry-After (or
  the header's reset when the budget reads zero), and otherwise for a
  capped exponential back-off with *full jitter* (uniform in ``[0, backoff]``)
  so independent clients sharing an API key do not retry in lockstep.
  Retry-After is a floor, never jittered below. A 503 with Retry-After
  pauses too, without a decrease.

Headers from different windows, proxies and providers disagree, so newer
information replaces older (responses are ordered by their calls' grants),
a 429's own Retry-After and reset bound the pause it causes, and no caller
waits longer than the newest response itself justifies plus
``pause_ceiling_s`` (60 s by default); a response that justifies more is
honoured and announced with a ``rate_limit_long_pause`` warning. The
governor never stalls.

A 429 never fails a subtask: the caller reports RATE_LIMITED and asks for a
new permit, joining the line again; the governor has already slowed down.

The parts, one module each:

=====================  ==================================================
``governor_types``     keys, permits, settings, clock types, jitter
``governor_aimd``      the AIMD concurrency limit and the 429 back-off
``governor_window``    a request or token budget as the headers state it
``governor_bucket``    whether a request budget is a token bucket
``governor_pauses``    pauses, the liveness bound, long-pause warnings
``governor_rate``      one key's governor: the waiting line and reports
``governor`` (here)    the registry of every key's governor
=====================  ==================================================

Time is injectable (``clock``, ``sleep``, ``rng``, ``wall_clock``), so tests
run on virtual time.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterable, Mapping

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.governor_rate import RateGovernor, WarningSink
from swarmd.services.orchestrator.governor_types import (
    Clock,
    GovernorClosed,
    GovernorKey,
    GovernorSettings,
    Permit,
    Rng,
    Sleep,
    WallClock,
    full_jitter,
)
from swarmd.v1 import common_pb2

__all__ = [
    "GovernorClosed",
    "GovernorKey",
    "GovernorRegistry",
    "GovernorSettings",
    "Permit",
    "RateGovernor",
    "WarningSink",
    "full_jitter",
]


class GovernorRegistry:
    """All governors of one orchestrator, created on first use of a key.

    Also remembers which keys each swarm used, so a swarm's statistics list
    only its own governors and a key's warnings reach the swarms that use it.
    ``on_warning(key, code, message)`` hears when a response makes a key's
    callers wait beyond ``pause_ceiling_s``.

    Keys come from clients, so their number is not ours to bound: at most
    ``max_idle_keys`` governors are kept beyond those in use (a permit out,
    a caller waiting, a pause running, or a key of a swarm not forgotten);
    past that, the least recently used idle governors are dropped. A key
    used again later starts afresh, as a new key does.
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
        pause_ceiling_s: float = 60.0,
        on_warning: WarningSink | None = None,
        max_idle_keys: int = 256,
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
            pause_ceiling_s=pause_ceiling_s,
        )
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._wall_clock = wall_clock
        self._on_warning = on_warning
        self._governors: dict[GovernorKey, RateGovernor] = {}
        self._used: dict[GovernorKey, None] = {}  # least recently used first
        self._swarm_keys: dict[str, dict[GovernorKey, None]] = {}
        self.max_idle_keys = max(0, max_idle_keys)
        self._closed = False

    def governor(self, key: GovernorKey) -> RateGovernor:
        """The governor of ``key``, created on first use."""
        gov = self._governors.get(key)
        self._used.pop(key, None)
        self._used[key] = None
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
                on_warning=self._on_warning,
            )
            self._governors[key] = gov
            self._forget_idle(keep=key)
        return gov

    def _forget_idle(self, keep: GovernorKey) -> None:
        """Drop the least recently used idle governors beyond ``max_idle_keys``."""
        if len(self._governors) <= self.max_idle_keys + 1:
            return
        claimed = {k for keys in self._swarm_keys.values() for k in keys}
        idle = [
            k
            for k in self._used
            if k != keep
            and k not in claimed
            and not self._governors[k].waiting
            and not self._governors[k].in_flight
            and not self._governors[k].pause_remaining()
        ]
        for k in idle[: max(0, len(idle) - self.max_idle_keys)]:
            del self._governors[k]
            del self._used[k]

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

    def swarms_using(self, key: GovernorKey) -> list[str]:
        """Swarms that asked permits for ``key`` or reported on it (and are not forgotten)."""
        return [swarm for swarm, keys in self._swarm_keys.items() if key in keys]

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
