"""Measures computed from a run's clocks (pure functions, no processes involved).

* :func:`server_view` reads the fake model server's call log;
* :func:`overheads` turns it, with the run's finish times, into the
  per-subtask dispatch and finish overheads (see :mod:`benchmarks.runner`).
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmarks.workloads import Workload

__all__ = ["overheads", "percentile", "server_view"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def server_view(
    log: list[tuple[float, float, str, int, int]],
) -> tuple[dict[str, float], dict[str, float], int, int, float]:
    """First call arrival and last answer per subtask, successes, 429s, success rate."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    ok_times: list[float] = []
    limited = 0
    for arrival, answered, sid, _step, status in log:
        if status == 429:
            limited += 1
            continue
        if status != 200:
            continue
        ok_times.append(arrival)
        if sid not in first or arrival < first[sid]:
            first[sid] = arrival
        last[sid] = max(last.get(sid, 0.0), answered)
    rate = 0.0
    if len(ok_times) > 1:
        span = max(ok_times) - min(ok_times)
        rate = (len(ok_times) - 1) / span if span > 0 else 0.0
    return first, last, len(ok_times), limited, rate


def overheads(
    workload: Workload,
    start: float,
    done: Mapping[str, float],
    first: Mapping[str, float],
    last: Mapping[str, float],
) -> tuple[list[float], list[float]]:
    dispatch: list[float] = []
    finish: list[float] = []
    for spec in workload.subtasks:
        sid = spec.id
        if sid not in first or sid not in done:
            continue
        deps = [done[d] for d in spec.dependencies if d in done]
        ready = max(deps) if deps else start
        dispatch.append(max(0.0, first[sid] - ready) * 1000)
        finish.append(max(0.0, done[sid] - last[sid]) * 1000)
    return dispatch, finish
