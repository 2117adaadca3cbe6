"""Process groups and descendants, as the tools, health checks and the plugin kit see them.

A command swarmd starts gets a session and process group of its own, so
killing the group ends everything it started that stayed in it. Zombies do
not count as running anywhere here: a killed process whose parent died first
stays one until its new parent reaps it, though it runs nothing. On Linux
the process table is read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["group_running", "kill_process_group", "live_descendants"]


def kill_process_group(pgid: int) -> None:
    """SIGKILL every process in the group; quiet when it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _table() -> dict[int, tuple[bytes, int, int]] | None:
    """pid -> (state, ppid, pgrp) of every process; None without ``/proc``."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    table: dict[int, tuple[bytes, int, int]] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            table[int(pid)] = (fields[0], int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            continue
    return table


def group_running(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies do not count).

    ``killpg(pgid, 0)`` also succeeds while only zombies are left, so the
    group's members are looked up in the process table.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    table = _table()
    if table is None:
        return True
    return any(pgrp == pgid and state not in (b"Z", b"X") for state, _ppid, pgrp in table.values())


def live_descendants(pid: int | None = None) -> set[int]:
    """The running (not zombie) descendants of ``pid`` (this process by default);
    empty where there is no ``/proc``."""
    table = _table() or {}
    found: set[int] = set()
    frontier = {os.getpid() if pid is None else pid}
    while frontier:
        frontier = {
            child for child, (state, ppid, _pgrp) in table.items()
            if ppid in frontier and state not in (b"Z", b"X")
        } - found
        found |= frontier
    return found
