"""Virtual time for asyncio tests.

An event loop whose clock only moves when nothing is ready to run, jumping
straight to the next timer: a five-minute lease expires in microseconds of
real time, and timings are exact. Real I/O is still polled (without
blocking), so loopback sockets work alongside.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["VirtualTimeLoop", "now", "run_virtual", "settle", "virtual_time"]


class _AdvancingSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking; a wait for a timer advances the clock instead."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        if timeout is None:
            raise RuntimeError("virtual-time deadlock: nothing ready and no timer pending")
        self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_AdvancingSelector(self._advance))

    def _advance(self, seconds: float) -> None:
        self._now += seconds

    def time(self) -> float:
        return self._now


def run_virtual(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main()`` to completion on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh :class:`VirtualTimeLoop`."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run


def now() -> float:
    return asyncio.get_running_loop().time()


async def settle() -> None:
    """Let every ready task run without moving the clock."""
    for _ in range(20):
        await asyncio.sleep(0)
