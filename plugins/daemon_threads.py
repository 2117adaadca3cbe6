"""Daemon worker threads that are reused: where blocking tool work runs.

:func:`swarmd.plugins.tool.run_blocking` must never leave the interpreter
waiting at exit for work stuck in a system call, so its work runs on daemon
threads (``asyncio.to_thread``'s pool is joined at exit). Starting a new
thread for every call costs a ``clone``, a stack and a round of GIL hand-offs,
which with a hundred sub-agents calling tools at once is a large part of a
busy executor's system time. So finished workers wait (up to
:data:`IDLE_SECONDS`) for the next job instead of exiting, and a job starts
a new worker only when none is idle: concurrency is never capped, a stuck
job only ever holds its own thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["IDLE_SECONDS", "submit"]

#: How long an idle worker waits for another job before it exits.
IDLE_SECONDS = 30.0

_lock = threading.Lock()
#: The inboxes of the idle workers, the most recently idle last.
_idle: list[queue.SimpleQueue[tuple[Callable[[], None], str]]] = []
_started = 0


def _work(first: Callable[[], None], name: str) -> None:
    inbox: queue.SimpleQueue[tuple[Callable[[], None], str]] = queue.SimpleQueue()
    me = threading.current_thread()
    idle_name = me.name
    job = first
    while True:
        me.name = name
        job()  # jobs handle their own errors (run_blocking's target does)
        me.name = idle_name
        with _lock:
            _idle.append(inbox)
        try:
            job, name = inbox.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with _lock:
                if inbox in _idle:  # nobody picked this worker: exit
                    _idle.remove(inbox)
                    return
            # Picked just as the wait ended: the job was put under the lock, so it is there.
            job, name = inbox.get_nowait()


def submit(job: Callable[[], None], name: str = "swarmd-tool") -> None:
    """Run ``job()`` on an idle daemon worker, or on a new one when none is idle.

    The worker is called ``name`` while it runs the job and ``swarmd-idle-<n>``
    while it waits for the next, so a thread list shows what is busy.
    """
    global _started
    with _lock:
        if _idle:
            _idle.pop().put((job, name))
            return
        _started += 1
        number = _started
    threading.Thread(target=_work, args=(job, name), name=f"swarmd-idle-{number}", daemon=True).start()
