"""Where the time of isolation goes: one record per worktree operation.

Each ``create``, ``commit`` and ``merge`` records its duration and the time it
waited for the repository lock. With ``SWARMD_WORKTREE_TIMINGS`` set to a
file path, every record is appended there as one JSON line (``op``,
``swarm``, ``subtask``, ``seconds``, ``lock_wait``, ``pid``, ``at``, and for
merges the ``batch`` size), which is how the benchmarks measure the price of
isolation inside the executor's process. Unset, recording costs nothing.
"""

from __future__ import annotations

import json
import os
import time

__all__ = ["TIMINGS_ENV", "record"]

TIMINGS_ENV = "SWARMD_WORKTREE_TIMINGS"


def record(op: str, swarm: str, subtask: str, seconds: float, **extra: float) -> None:
    """Append one timing record when ``SWARMD_WORKTREE_TIMINGS`` names a file."""
    path = os.environ.get(TIMINGS_ENV)
    if not path:
        return
    line = json.dumps(
        {
            "op": op,
            "swarm": swarm,
            "subtask": subtask,
            "seconds": round(seconds, 6),
            "lock_wait": round(float(extra.pop("lock_wait", 0.0)), 6),
            "pid": os.getpid(),
            "at": time.time(),
            **extra,
        }
    )
    # One short O_APPEND write per record: lines from several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
