"""Which failures are worth another attempt, and how long to wait before it.

The seed retried every failure, max-steps and timeouts included, with a fixed
exponential delay (no jitter), and never consulted its own transient-error
classifier. swarmd retries only *transient* failures:

* the executor's result says ``FAILURE_KIND_TRANSIENT``;
* the result's kind is unspecified and its error text matches the seed's
  transient list (:data:`TRANSIENT_MARKERS`, seed §4.5);
* the executor call itself failed with ``UNAVAILABLE`` or
  ``DEADLINE_EXCEEDED`` (or ``RESOURCE_EXHAUSTED``: the executor is at
  capacity, which passes).

Max steps, budgets, permanent errors, timeouts and cancellations are final.
The delay before retry ``n`` (0-based) is drawn from the upper half of its
ceiling, ``uniform(c / 2, c)`` with ``c = min(max_delay, base * 2**n)``: the
jitter keeps a burst of failures from coming back as a synchronised burst of
retries, and the floor makes the retries span a service restart. With the
defaults (base 1 s, 3 retries) the waits are 0.5-1, 1-2 and 2-4 s, 3.5 to
7 s in all (full jitter from 0.5 s, as before, could spend under a second).

A subtask's retry replays its sub-agent from the start, so it is the second
line: the sub-agent loop retries a failed model call in place first (0.5 to
8 s doubling, 11 to 15 s in all; see :mod:`swarmd.plugins.runtime.loop`),
which outlasts a model server's restart (3 to 9 s) without losing progress,
and a deterministic server error is permanent there, never retried here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

from swarmd.v1 import common_pb2

__all__ = [
    "RETRYABLE_RPC_CODES",
    "TRANSIENT_MARKERS",
    "Backoff",
    "resumed_first_attempt",
    "classify_failure",
    "is_transient_error",
    "is_transient_kind",
]

#: Lower-case substrings that mark an error message as transient (seed §4.5).
TRANSIENT_MARKERS: tuple[str, ...] = (
    "rate limit",
    "ratelimit",
    "too many requests",
    "429",
    "timeout",
    "timed out",
    "connection reset",
    "connection refused",
    "broken pipe",
    "network",
    "socket",
    "io error",
    "503",
    "502",
    "504",
    "service unavailable",
    "bad gateway",
    "gateway timeout",
    "overloaded",
    "temporarily unavailable",
)

#: Status codes of the executor call that mean "try again".
RETRYABLE_RPC_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def is_transient_error(message: str) -> bool:
    """True when ``message`` reads like a transient failure (seed list)."""
    text = message.lower()
    return any(marker in text for marker in TRANSIENT_MARKERS)


def classify_failure(result: common_pb2.SubTaskResult) -> common_pb2.FailureKind:
    """The failure kind of an unsuccessful result, filling in an unspecified one.

    An executor that does not classify its failures gets the seed's text
    classifier: transient when the error text matches, permanent otherwise.
    """
    kind = result.failure_kind
    if kind != common_pb2.FAILURE_KIND_UNSPECIFIED:
        return kind
    if result.status == common_pb2.SUB_TASK_STATUS_TIMED_OUT:
        return common_pb2.FAILURE_KIND_TIMEOUT
    if result.status == common_pb2.SUB_TASK_STATUS_CANCELLED:
        return common_pb2.FAILURE_KIND_CANCELLED
    if is_transient_error(result.error):
        return common_pb2.FAILURE_KIND_TRANSIENT
    return common_pb2.FAILURE_KIND_PERMANENT


def is_transient_kind(kind: common_pb2.FailureKind) -> bool:
    """Only transient failures are retried."""
    return kind == common_pb2.FAILURE_KIND_TRANSIENT


@dataclass
class Backoff:
    """Capped exponential backoff, jittered within the upper half of each ceiling.

    ``rng`` is injectable so tests can check the bounds deterministically.
    """

    base_ms: int = 1000
    max_ms: int = 30_000
    rng: random.Random = field(default_factory=random.Random)

    def ceiling_ms(self, retry: int) -> float:
        """Upper bound of the delay before retry number ``retry`` (0-based)."""
        # Cap the exponent first: 2**retry overflows floats for silly retry counts.
        return float(min(self.max_ms, self.base_ms * 2 ** min(retry, 62)))

    def delay_ms(self, retry: int) -> float:
        """A delay drawn uniformly from ``[ceiling_ms(retry) / 2, ceiling_ms(retry)]``."""
        ceiling = self.ceiling_ms(retry)
        return self.rng.uniform(ceiling / 2, ceiling)


def resumed_first_attempt(attempts_started: int, max_retries: int) -> tuple[int, int]:
    """(first attempt number, retries already used) for a subtask (re)launched
    after ``attempts_started`` attempts. The interrupted attempt counts as one;
    the attempt number never goes past the retry budget (1 + ``max_retries``):
    at the budget, the last attempt is run again under its own number."""
    first = min(attempts_started + 1, max(0, max_retries) + 1)
    return first, first - 1
