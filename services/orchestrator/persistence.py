"""Durable swarm state: every change saved, in order, without slowing the run.

The run calls :meth:`StateWriter.save_subtask` on each subtask state change
and :meth:`StateWriter.save_swarm` at the milestones (planned, running,
finished). Both take a snapshot at once and return; one writer task per
swarm sends them to the result store in the order they were made. Pending
saves are coalesced: a whole-swarm save supersedes everything queued before
it (its snapshot already holds those subtask states), and a newer save of a
subtask replaces an older queued one. A failed save is retried with backoff;
if the store lost the swarm (NOT_FOUND on a subtask save), the whole swarm is
saved again from a fresh snapshot. A save the store refuses for its content
(INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a message over the size limit)
is logged and skipped rather than retried forever.

With a :class:`~.journal.Journal`, every save is journaled as it is queued
(the journal coalesces the same way) and leaves it once the store has
confirmed it, or refused it for its content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import cast

from swarmd.services.errors import InvalidArgument, NotFound, ResourceExhausted, SwarmdError
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.v1 import common_pb2

__all__ = ["StateWriter"]

log = logging.getLogger(__name__)


class StateWriter:
    """Ordered, coalescing background saves of one swarm's state."""

    def __init__(
        self,
        store: StoreClient,
        swarm_id: str,
        snapshot: Callable[[], common_pb2.Swarm],
        journal: Journal | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        # The journal's version of each queued op, for confirming it.
        self._versions: dict[tuple[str, str], int] = {}
        self._swarm_id = swarm_id
        self._snapshot = snapshot
        # Ops in order, one per thing saved: ("swarm", "") -> Swarm or
        # ("subtask", id) -> SubTaskState (a newer save of it replaces it and
        # moves to the end).
        self._ops: dict[tuple[str, str], object] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.failures = 0
        self.refused = 0

    def save_swarm(self, swarm: common_pb2.Swarm | None = None) -> None:
        snap = common_pb2.Swarm()
        snap.CopyFrom(swarm if swarm is not None else self._snapshot())
        self._ops = {("swarm", ""): snap}
        if self._journal is not None:
            self._versions = {("swarm", ""): self._journal.save_state(self._swarm_id, snap)}
        self._kick()

    def save_subtask(self, state: common_pb2.SubTaskState) -> None:
        snap = common_pb2.SubTaskState()
        snap.CopyFrom(state)
        key = ("subtask", state.subtask.id)
        self._ops.pop(key, None)
        self._ops[key] = snap
        if self._journal is not None:
            self._versions[key] = self._journal.save_state(self._swarm_id, snap)
        self._kick()

    def _kick(self) -> None:
        if self._closed:
            return
        self._idle.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"state-{self._swarm_id}"
            )
        self._wake.set()

    async def _loop(self) -> None:
        delay = 0.05
        while True:
            if not self._ops:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                # A background save: let a dispatch made ready at the same moment go first.
                for _ in range(3):
                    await asyncio.sleep(0)
                continue
            key, payload = next(iter(self._ops.items()))
            kind = key[0]
            try:
                if kind == "swarm":
                    await self._store.save_swarm(cast(common_pb2.Swarm, payload))
                else:
                    await self._store.save_subtask(self._swarm_id, cast(common_pb2.SubTaskState, payload))
            except NotFound:
                if kind == "subtask":
                    # The stored swarm is missing: save the whole swarm again.
                    self.save_swarm()
                    continue
                self._retry_log("store refused the swarm as not found")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except (InvalidArgument, ResourceExhausted) as exc:
                # Refused for what it is (e.g. larger than a gRPC message):
                # retrying cannot help; later saves carry the state on.
                log.error(
                    "swarm %s: the store refused a %s save: %s", self._swarm_id, kind, exc.message
                )
                self.refused += 1
                self._done(key, payload)
                continue
            except SwarmdError as exc:
                self._retry_log(exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            self._done(key, payload)

    def _done(self, key: tuple[str, str], payload: object) -> None:
        """The op ``key`` is stored (or refused): unqueue it unless a newer save replaced it."""
        if self._ops.get(key) is not payload:
            return
        del self._ops[key]
        version = self._versions.pop(key, None)
        if self._journal is not None and version is not None:
            self._journal.state_stored(self._swarm_id, key[1], version)

    def _retry_log(self, why: str) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 50 == 0:
            log.warning("swarm %s: cannot save state (%s); retrying", self._swarm_id, why)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every save made so far is stored; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def aclose(self, flush_timeout: float = 5.0) -> None:
        if self._closed:
            return
        if self._ops and not await self.flush(flush_timeout):
            log.warning(
                "swarm %s: %d state saves could not be stored before shutdown%s",
                self._swarm_id,
                len(self._ops),
                "" if self._journal is None else "; the journal keeps them for the next orchestrator",
            )
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
