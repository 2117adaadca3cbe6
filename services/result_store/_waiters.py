"""In-process wake-ups for clients waiting on a shared-result key.

A waiter registers under ``(scope, key)`` *before* it reads the current
value, and publish notifies after its commit, so no update can fall between
the read and the wait. Nothing polls: a waiter sleeps on an
``asyncio.Event`` until a publish (or shutdown) sets it.

Each waiter buffers at most :data:`BUFFER` undelivered updates; a follower
that cannot keep up loses the oldest ones, never the newest — a shared
result is a value, and its latest state is what matters.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from swarmd.v1.result_store_pb2 import SharedResult

__all__ = ["BUFFER", "Waiter", "WaiterHub"]

BUFFER = 256

WaitKey = tuple[str, str]


class Waiter:
    """One waiting client: its pending updates and the event that wakes it."""

    __slots__ = ("event", "pending")

    def __init__(self) -> None:
        self.pending: deque[SharedResult] = deque(maxlen=BUFFER)
        self.event = asyncio.Event()

    def push(self, result: SharedResult) -> None:
        self.pending.append(result)
        self.event.set()


class WaiterHub:
    """Waiters by ``(scope, key)``; publish calls :meth:`notify`."""

    def __init__(self) -> None:
        self._waiters: dict[WaitKey, set[Waiter]] = {}
        self.closed = False

    @contextmanager
    def subscribe(self, scope: str, key: str) -> Iterator[Waiter]:
        """Register a waiter for the ``with`` block; always removed on exit (cancellation too)."""
        waiter = Waiter()
        waiters = self._waiters.setdefault((scope, key), set())
        waiters.add(waiter)
        try:
            yield waiter
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiters.get((scope, key)) is waiters:
                del self._waiters[(scope, key)]

    def notify(self, result: SharedResult) -> None:
        for waiter in self._waiters.get((result.scope, result.key), ()):
            waiter.push(result)

    def count(self, scope: str | None = None, key: str | None = None) -> int:
        """Waiters registered for ``(scope, key)``, or in total when both are None."""
        if scope is None and key is None:
            return sum(len(w) for w in self._waiters.values())
        return len(self._waiters.get((scope or "", key or ""), ()))

    def close(self) -> None:
        """Wake every waiter; they see :attr:`closed` and end."""
        self.closed = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.event.set()
