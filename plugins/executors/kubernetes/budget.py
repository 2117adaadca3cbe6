"""The pod budget: at most N pods at once; waiting subtasks get slots by priority.

Higher ``SubTask.priority`` first, then first come first served. A waiter that
gives up (cancelled) leaves the queue without taking a slot.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["PodBudget"]


class PodBudget:
    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []

    async def acquire(self, priority: int = 0) -> None:
        if self.used < self.size and not self._waiting:
            self.used += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we gave up
            raise

    def release(self) -> None:
        self.used -= 1
        while self._waiting and self.used < self.size:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                self.used += 1
                future.set_result(None)
