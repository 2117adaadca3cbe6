"""What the fake model server plays, as plain data: no sockets here.

:class:`ServerConfig` is everything a benchmark scenario sets on
:mod:`benchmarks.fake_model_server` (JSON-able, sent to ``POST
/bench/config``): the :class:`LatencyModel` of each call, the
:class:`RateLimit` enforced by a :class:`TokenBucket`, the steps and tools of
the scripted conversations. :func:`directive` writes the per-subtask script a
subtask's instruction can carry (``[[fake-model id=a7 steps=10 latency=1.0
tool=list]]``) and :func:`parse_directive` reads it back; :func:`go_duration`
formats the reset times of OpenAI's rate-limit headers.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "LatencyModel",
    "RateLimit",
    "ServerConfig",
    "TokenBucket",
    "directive",
    "go_duration",
    "parse_directive",
]

_DIRECTIVE = re.compile(r"\[\[fake-model ([^\]]*)\]\]")


def directive(**fields: Any) -> str:
    """The instruction marker that scripts one conversation, e.g. ``directive(id="a1", steps=3)``."""
    return "[[fake-model " + " ".join(f"{k}={v}" for k, v in fields.items()) + "]]"


def parse_directive(text: str) -> dict[str, str]:
    """The first directive in ``text`` as a dict ({} when there is none)."""
    match = _DIRECTIVE.search(text)
    if not match:
        return {}
    out: dict[str, str] = {}
    for part in match.group(1).split():
        key, _, value = part.partition("=")
        out[key] = value
    return out


def go_duration(seconds: float) -> str:
    """A duration as OpenAI writes it in ``x-ratelimit-reset-*``: ``6m0s``, ``1.5s``, ``20ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, secs = divmod(seconds, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


@dataclass
class LatencyModel:
    """How long one model call takes, in seconds."""

    kind: str = "constant"  # constant | uniform | exponential | lognormal
    mean: float = 0.0
    #: uniform: half-width of the interval; lognormal: sigma of the log.
    spread: float = 0.0
    #: Added per completion token (a generation speed of 1/per_token tokens/s).
    per_token: float = 0.0

    def sample(self, rng: random.Random, mean: float | None = None, tokens: int = 0) -> float:
        mu = self.mean if mean is None else mean
        if mu <= 0:
            base = 0.0
        elif self.kind == "uniform":
            base = rng.uniform(max(0.0, mu - self.spread), mu + self.spread)
        elif self.kind == "exponential":
            base = rng.expovariate(1.0 / mu)
        elif self.kind == "lognormal":
            sigma = self.spread or 0.25
            # Parameterised so that the mean of the distribution is ``mu``.
            base = rng.lognormvariate(math.log(mu) - sigma * sigma / 2, sigma)
        else:
            base = mu
        return base + tokens * self.per_token


@dataclass
class RateLimit:
    """A requests-per-minute limit (0 = none), enforced as a token bucket."""

    requests_per_minute: float = 0.0
    #: Bucket capacity in requests: how many may arrive at once after a quiet spell.
    burst: float = 1.0


class TokenBucket:
    """Continuous refill at ``rate`` per second up to ``capacity``; starts full."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
            self._at = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_for_one(self, now: float) -> float:
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate)

    def time_to_full(self, now: float) -> float:
        self._refill(now)
        return (self.capacity - self.tokens) / self.rate


@dataclass
class ServerConfig:
    """Everything a benchmark scenario sets on the server (JSON-able)."""

    latency: LatencyModel = field(default_factory=LatencyModel)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    #: Model calls per conversation when no directive says otherwise.
    steps: int = 2
    #: Tool the scripted calls use: list, read, glob, grep, write, bash, none.
    tool: str = "list"
    #: Tool calls per scripted step.
    calls: int = 1
    tokens_per_response: int = 16
    seed: int = 1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerConfig:
        data = dict(data)
        latency = LatencyModel(**data.pop("latency", {}))
        rate = RateLimit(**data.pop("rate_limit", {}))
        return cls(latency=latency, rate_limit=rate, **data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
