"""A swarm's event stream: numbered here, persisted in batches, fanned out to watchers.

:meth:`SwarmEventLog.emit` is synchronous: it gives the event the next dense
sequence number, queues it for the store and hands it to every live watcher
without awaiting anything, so emitting never blocks the run and the order of
``emit`` calls *is* the order of the log.

Persistence: one writer task per swarm appends whatever has accumulated in
one ``AppendEvents`` call (up to ``batch_size``), so a burst of tool-call
events costs one round trip, not hundreds. Sequence numbers are sent
explicitly; the store refuses a batch that does not follow its last one,
which the writer reconciles (after a reply was lost, the store may already
hold part of the batch). A failed write is retried with backoff; an event is
never dropped. With a :class:`~.journal.Journal`, each event is journaled
as it is emitted and leaves the journal once the store has confirmed it; a
full journal takes no more of this swarm's events until the store has caught
up with everything emitted (a ``journal_full`` warning says so).

Watchers: each gets its own queue, bounded at ``watcher_queue`` events.
A watcher that falls that far behind is not blocked on and loses nothing:
its queue stops filling, and once it has drained it reads the missed span
from the log (the store, plus the not-yet-written tail kept in memory) and
rejoins the live stream. The same catch-up serves late watchers and
watchers resuming from a sequence number: subscribe first, read the log up
to now, then take live events, skipping any already seen, so there is no
gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from swarmd.services.errors import (
    SWARM_FINISHED,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    SwarmdError,
)
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.v1 import common_pb2

__all__ = ["BATCH_BYTES", "SwarmEventLog", "read_stored_events", "stub_event"]

log = logging.getLogger(__name__)

#: Serialized bytes per AppendEvents call (gRPC's default limit is 16 MiB).
BATCH_BYTES = 4 * 1024 * 1024

_OVERFLOW = object()
_END = object()


class _Subscription:
    """One watcher's live queue."""

    def __init__(self, limit: int) -> None:
        self.items: deque[common_pb2.SwarmEvent] = deque()
        self.limit = limit
        self.overflowed = False
        self.ended = False
        self.ready = asyncio.Event()

    def push(self, event: common_pb2.SwarmEvent) -> None:
        if self.overflowed:
            return
        if len(self.items) >= self.limit:
            self.overflowed = True  # stop filling; the watcher reads the gap from the log
        else:
            self.items.append(event)
        self.ready.set()

    def end(self) -> None:
        self.ended = True
        self.ready.set()

    async def get(self) -> Any:
        while True:
            if self.items:
                return self.items.popleft()
            if self.overflowed:
                return _OVERFLOW
            if self.ended:
                return _END
            self.ready.clear()
            await self.ready.wait()


async def _yield_to_ready_work(rounds: int = 3) -> None:
    """Give the event loop's ready callbacks a few turns before a background write."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class SwarmEventLog:
    """Sequence numbering, batched persistence and live fan-out for one swarm."""

    def __init__(
        self,
        swarm_id: str,
        store: StoreClient,
        *,
        last_sequence: int = 0,
        batch_size: int = 500,
        watcher_queue: int = 10_000,
        clock_ns: Callable[[], int] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.swarm_id = swarm_id
        self._store = store
        self._last = last_sequence
        self._flushed = last_sequence
        self._unflushed: list[common_pb2.SwarmEvent] = []
        self._subs: set[_Subscription] = set()
        self._batch_size = batch_size
        self._batch_limit = batch_size
        self._watcher_queue = watcher_queue
        self._wake = asyncio.Event()
        self._flushed_changed = asyncio.Event()
        self._finished = False
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._clock_ns = clock_ns
        self._journal = journal
        #: While set, the highest sequence the full journal did not take: no
        #: event is journaled until the store holds everything up to it.
        self._journal_gap: int | None = None
        self.write_failures = 0

    # -- emitting ---------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        return self._last

    @property
    def flushed_sequence(self) -> int:
        return self._flushed

    @property
    def finished(self) -> bool:
        return self._finished

    def emit(self, kind: str, message: Any, *, time: Any = None) -> common_pb2.SwarmEvent:
        """Log one event (``kind`` is the oneof field name, e.g. ``"warning"``);
        ``time`` (a Timestamp) keeps the time the event happened elsewhere."""
        if self._finished:
            raise RuntimeError(f"event log of swarm {self.swarm_id} is finished; {kind} not logged")
        self._last += 1
        event = common_pb2.SwarmEvent(swarm_id=self.swarm_id, sequence=self._last)
        if time is not None and (time.seconds or time.nanos):
            event.time.CopyFrom(time)
        elif self._clock_ns is None:
            event.time.GetCurrentTime()
        else:
            event.time.FromNanoseconds(self._clock_ns())
        getattr(event, kind).CopyFrom(message)
        self._unflushed.append(event)
        if self._journal is not None:
            self._journal_event(event)
        for sub in self._subs:
            sub.push(event)
        self._start_writer()
        self._wake.set()
        return event

    def _journal_event(self, event: common_pb2.SwarmEvent) -> None:
        assert self._journal is not None
        if self._journal_gap is not None and self._flushed >= self._journal_gap:
            self._journal_gap = None  # the store caught up: the journal is dense again
        if self._journal_gap is None and self._journal.add_event(event):
            return
        first = self._journal_gap is None
        self._journal_gap = event.sequence
        if first and not self._finished:
            asyncio.get_running_loop().call_soon(self._warn_journal_full, event.sequence)

    def _journal_note(self) -> str:
        if self._journal is None:
            return ""
        if self._journal_gap is not None:
            return "; the journal was full and keeps only part of them"
        return "; the journal keeps them for the next orchestrator"

    def _warn_journal_full(self, sequence: int) -> None:
        if self._finished or self._closed:
            return
        self.emit(
            "warning",
            common_pb2.SwarmWarning(
                code="journal_full",
                message=f"the orchestrator journal is full: events from {sequence} on are kept "
                "only in memory until the result store has caught up",
            ),
        )

    def finish(self) -> None:
        """No more events: live watchers end once they have everything."""
        self._finished = True
        for sub in self._subs:
            sub.end()

    # -- persistence ------------------------------------------------------

    def _start_writer(self) -> None:
        if self._writer is None and not self._closed:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name=f"events-{self.swarm_id}"
            )

    def _next_batch(self) -> list[common_pb2.SwarmEvent]:
        """The oldest unwritten events: at most ``batch_size`` and about
        ``BATCH_BYTES`` (one event at least), well under gRPC's message limit."""
        batch: list[common_pb2.SwarmEvent] = []
        size = 0
        for event in self._unflushed[: self._batch_limit]:
            size += event.ByteSize()
            if batch and size > BATCH_BYTES:
                break
            batch.append(event)
        return batch

    async def _write_loop(self) -> None:
        delay = 0.05
        while True:
            if not self._unflushed:
                self._wake.clear()
                await self._wake.wait()
                # Let what was made ready with these events (a dependent's
                # dispatch) go first; later events of the moment join the batch.
                await _yield_to_ready_work()
                continue
            batch = self._next_batch()
            try:
                stored: int | None = await self._store.append_events(self.swarm_id, batch)
            except FailedPrecondition as exc:
                if exc.reason == SWARM_FINISHED:
                    # The store's log is closed (a terminal event another writer
                    # stored): what follows it can never be stored.
                    log.error("swarm %s: %s; %d events dropped", self.swarm_id, exc.message, len(self._unflushed))
                    self._mark_flushed(self._unflushed[-1].sequence)
                    continue
                stored = await self._stored_last()
            except (InvalidArgument, ResourceExhausted) as exc:
                # Refused for its content or size, not for a passing reason:
                # split the batch; a single event that cannot be stored is
                # replaced by a stub under the same sequence number, so the log
                # keeps its density (live watchers already had the original).
                if len(batch) > 1:
                    self._batch_limit = max(1, len(batch) // 2)
                else:
                    self._replace_with_stub(batch[0], exc.message)
                continue
            except SwarmdError as exc:
                self.write_failures += 1
                if self.write_failures == 1 or self.write_failures % 50 == 0:
                    log.warning(
                        "swarm %s: cannot write events (%s); retrying", self.swarm_id, exc.message
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if stored is not None:
                self._mark_flushed(stored)
            delay = 0.05
            self._batch_limit = self._batch_size

    def _replace_with_stub(self, event: common_pb2.SwarmEvent, why: str) -> None:
        stub = stub_event(event, why)
        if self._unflushed and self._unflushed[0].sequence == event.sequence:
            self._unflushed[0] = stub

    async def _stored_last(self) -> int | None:
        """The store's last sequence, after it refused a batch as out of order."""
        try:
            _, last = await self._store.read_events(
                self.swarm_id, after_sequence=self._flushed, limit=1
            )
        except SwarmdError:
            await asyncio.sleep(0.2)
            return None
        if last < self._flushed:
            log.error(
                "swarm %s: the store's event log ends at %d but %d events were written; "
                "the log was truncated outside swarmd",
                self.swarm_id,
                last,
                self._flushed,
            )
            await asyncio.sleep(1.0)
            return None
        return last

    def _mark_flushed(self, stored_last: int) -> None:
        drop = 0
        while drop < len(self._unflushed) and self._unflushed[drop].sequence <= stored_last:
            drop += 1
        if drop:
            del self._unflushed[:drop]
            self._flushed = max(self._flushed, stored_last)
            self._flushed_changed.set()
            if self._journal is not None:
                self._journal.events_stored(self.swarm_id, self._flushed)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted so far is stored; False on timeout."""
        target = self._last
        try:
            async with asyncio.timeout(timeout):
                while self._flushed < target:
                    self._flushed_changed.clear()
                    await self._flushed_changed.wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self, flush_timeout: float = 5.0) -> None:
        """Flush what can be flushed within ``flush_timeout``, stop the writer, end watchers."""
        if self._closed:
            return
        if self._writer is not None and self._unflushed:
            if not await self.flush(flush_timeout):
                log.warning(
                    "swarm %s: %d events could not be stored before shutdown%s",
                    self.swarm_id,
                    len(self._unflushed),
                    self._journal_note(),
                )
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        for sub in self._subs:
            sub.end()

    # -- reading and watching ---------------------------------------------

    async def read_after(self, after: int, limit: int = 1000) -> list[common_pb2.SwarmEvent]:
        """Events with sequence > ``after`` (up to ``limit``): from the store
        for the written part, from memory for the tail not written yet."""
        if after < self._flushed:
            events, _ = await self._store.read_events(self.swarm_id, after, limit)
            events = [e for e in events if e.sequence > after]
            if events:
                return events
            # The store is behind what we believe was written (cannot happen
            # unless the log was altered); fall through to memory.
        tail = [e for e in self._unflushed if e.sequence > after]
        return tail[:limit]

    async def watch(
        self, after: int = 0, *, history_only: bool = False
    ) -> AsyncIterator[common_pb2.SwarmEvent]:
        """Every event with sequence > ``after``, then live ones until the
        swarm finishes (or, with ``history_only``, up to the current last)."""
        last = after
        stop_at = self._last if history_only else None
        while True:
            sub: _Subscription | None = None
            if not history_only:
                sub = _Subscription(self._watcher_queue)
                self._subs.add(sub)
                if self._finished or self._closed:
                    sub.end()
            try:
                caught_up_from = last
                while True:  # catch up from the log
                    batch = await self.read_after(last)
                    progressed = False
                    for event in batch:
                        if event.sequence != last + 1 or (
                            stop_at is not None and event.sequence > stop_at
                        ):
                            break
                        yield event
                        last = event.sequence
                        progressed = True
                    if not progressed:
                        break
                if sub is None:
                    return
                while True:  # live
                    item = await sub.get()
                    if item is _OVERFLOW:
                        break  # fell behind: catch up from the log again
                    if item is _END:
                        if last >= self._last or last == caught_up_from:
                            # Everything was delivered (or the rest cannot be
                            # read: no progress since the last catch-up).
                            return
                        break  # finished, but there is a tail to read
                    if item.sequence <= last:
                        continue
                    if item.sequence != last + 1:
                        break
                    yield item
                    last = item.sequence
            finally:
                if sub is not None:
                    self._subs.discard(sub)

    @property
    def watcher_count(self) -> int:
        return len(self._subs)


def stub_event(event: common_pb2.SwarmEvent, why: str) -> common_pb2.SwarmEvent:
    """What takes the place of an event the store refuses for its content:
    a ``event_not_stored`` warning under the same sequence number, so the log
    keeps its density (live watchers already had the original)."""
    kind = event.WhichOneof("kind") or "unknown"
    log.error("swarm %s: event %d (%s) cannot be stored: %s", event.swarm_id, event.sequence, kind, why)
    stub = common_pb2.SwarmEvent(swarm_id=event.swarm_id, sequence=event.sequence)
    stub.time.CopyFrom(event.time)
    stub.warning.CopyFrom(
        common_pb2.SwarmWarning(
            code="event_not_stored",
            message=f"a {kind} event of {event.ByteSize()} bytes could not be stored ({why[:200]}); "
            "this stub takes its place in the log",
        )
    )
    return stub


async def read_stored_events(
    store: StoreClient, swarm_id: str, after: int, *, history_only: bool = False
) -> AsyncIterator[common_pb2.SwarmEvent]:
    """Every stored event of a swarm that is not live here, in order."""
    last = after
    while True:
        events, _ = await store.read_events(swarm_id, last)
        events = [e for e in events if e.sequence > last]
        if not events:
            return
        for event in events:
            yield event
            last = event.sequence
