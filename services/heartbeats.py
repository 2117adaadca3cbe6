"""Heartbeats on long server streams (ExecuteSubTask, AttachSubTask, WatchSwarm).

A stream that waits (a sub-agent inside a long model call, a swarm with
nothing new to report) sends no data for minutes; some proxies and NATs drop
such a connection, and the receiver cannot tell a quiet stream from a dead
one. So such streams carry a :class:`StreamHeartbeat` whenever nothing else
was sent for the heartbeat interval. Heartbeats are never numbered, logged
or shown; receivers skip them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from swarmd.v1 import common_pb2

__all__ = ["heartbeat", "with_heartbeats"]

T = TypeVar("T")
R = TypeVar("R")


def heartbeat(last_sequence: int, interval_secs: float) -> common_pb2.StreamHeartbeat:
    """A heartbeat stamped now."""
    beat = common_pb2.StreamHeartbeat(last_sequence=last_sequence, interval_ms=int(interval_secs * 1000))
    beat.time.GetCurrentTime()
    return beat


async def with_heartbeats(
    items: AsyncIterator[T],
    interval_secs: float,
    *,
    wrap: Callable[[T], R],
    beat: Callable[[common_pb2.StreamHeartbeat], R],
    sequence: Callable[[T], int],
) -> AsyncIterator[R]:
    """``wrap(item)`` for each item, and ``beat(heartbeat)`` after each
    ``interval_secs`` in which no item came."""
    iterator = items.__aiter__()
    last = 0
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval_secs)
            if not done:
                yield beat(heartbeat(last, interval_secs))
                continue
            ready, pending = pending, None
            try:
                item = ready.result()
            except StopAsyncIteration:
                return
            last = sequence(item) or last
            yield wrap(item)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(RuntimeError):
                await aclose()
