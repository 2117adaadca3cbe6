"""The sizes of each scenario in the quick and the full profile.

The full profile runs the sizes the benchmark was specified with; the quick
one (``make bench``, under five minutes on two cores) scales them down
where they would take too long, and every scaled size is said in the
report next to its scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FULL", "PROFILES", "QUICK", "Profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    #: (a) wide: subtasks, steps each, seconds per model call.
    wide: tuple[int, int, float]
    #: (a) on the large repository: subtasks, steps each, seconds per call.
    wide_large: tuple[int, int, float]
    #: (b) layered DAG: layers, width, short steps, long steps, seconds per call.
    layered: tuple[int, int, int, int, float]
    #: (c) zero latency: subtasks (one model call each), and the length of the dependency chain.
    zero: int
    zero_chain: int
    #: (d) rate limits: (requests per minute, subtasks, steps each, seconds per call).
    rate_limited: tuple[tuple[int, int, int, float], ...]
    #: (e) result store: concurrent clients, publish+get pairs per client.
    store: tuple[int, int]
    #: (f) cache: mutating subtasks, steps each, seconds per call.
    cache: tuple[int, int, float]
    #: Scaling sweep: sub-agent counts, steps each, seconds per call.
    sweep: tuple[int, ...]
    sweep_steps: int
    sweep_latency: float
    #: How many subtasks the sequential agent really runs before scaling by steps.
    sequential_sample: int
    #: Requests per HTTP client in the client comparison.
    http_requests: int
    notes: tuple[str, ...] = field(default=())


FULL = Profile(
    name="full",
    wide=(100, 10, 1.0),
    wide_large=(100, 10, 1.0),
    layered=(4, 25, 2, 8, 0.5),
    zero=1000,
    zero_chain=200,
    rate_limited=((60, 30, 2, 0.2), (600, 100, 3, 0.2)),
    store=(200, 100),
    cache=(10, 3, 0.2),
    sweep=(1, 10, 50, 100, 200, 500),
    sweep_steps=10,
    sweep_latency=1.0,
    sequential_sample=10,
    http_requests=2000,
)

QUICK = Profile(
    name="quick",
    wide=(100, 5, 1.0),
    wide_large=(30, 5, 1.0),
    layered=(4, 25, 2, 8, 0.5),
    zero=300,
    zero_chain=50,
    rate_limited=((60, 8, 2, 0.2), (600, 30, 3, 0.2)),
    store=(50, 40),
    cache=(8, 3, 0.2),
    sweep=(1, 10, 50, 100, 200, 500),
    sweep_steps=4,
    sweep_latency=0.5,
    sequential_sample=2,
    http_requests=500,
    notes=(
        "(a) runs 5 steps per subtask instead of 10, and 30 sub-agents instead of 100 on the large repository",
        "(c) runs 300 zero-latency subtasks instead of 1,000 and a chain of 50 instead of 200",
        "(d) runs 16 calls at 60/min and 90 calls at 600/min",
        "(e) runs 50 clients x 40 publish+get pairs",
        "the sweep runs 4 steps at 0.5 s per call",
        "the sequential agent runs 2 subtasks and is scaled by model calls",
    ),
)

PROFILES = {p.name: p for p in (QUICK, FULL)}
