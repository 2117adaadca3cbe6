"""The orchestrator's write-ahead journal: what the result store has not confirmed yet.

Events (:class:`~.events.SwarmEventLog`) and state saves
(:class:`~.persistence.StateWriter`) go to the result store in the
background; while the store is slow or down they exist only in this
process. The journal keeps them on local disk until the store confirms
them, so an orchestrator that dies (SIGKILL included) loses nothing the
store would have received, and the next orchestrator on the same journal
replays them into the store (:mod:`.journal_replay`) before it resumes any
swarm.

Format: one SQLite file in WAL mode with ``synchronous=FULL`` (every commit
is fsynced; a commit torn by a crash is discarded by SQLite's WAL checksums,
so a reopened journal holds exactly the batches that were committed)::

    events(swarm_id, sequence, payload)          one row per unconfirmed event
    states(swarm_id, subtask_id, version, payload)  the newest unconfirmed save
                                                    of a swarm ("" subtask) or subtask

Writes are batched: the writers call the synchronous methods below, which
only record the change in memory; one flusher task commits whatever
accumulated every ``flush_interval`` seconds. An entry the store confirms
before its batch is committed never reaches the disk, so a healthy store
costs the journal almost nothing; what a crash can lose is the last
``flush_interval`` of changes the store had not confirmed either.

State is coalesced like the writer coalesces it: a newer save of a subtask
replaces the older row, a whole-swarm save replaces every row of that swarm,
and a confirmation removes a row only if no newer save replaced it. The
state rows are therefore bounded by the live swarms and their subtasks.
Events are bounded by ``max_bytes``: once the journal holds that much, new
events are not journaled (an error is logged, and the swarm's log says so
with a ``journal_full`` warning) until the store has caught up; the run is
never blocked.

One journal belongs to one orchestrator process: it is locked (``flock`` on
``PATH.lock``, holding the owner's pid) and a second orchestrator is refused
(:class:`JournalLocked`). An embedded orchestrator (``swarmd run``) that
finds the repository's journal locked by another ``swarmd`` command uses
``NAME-PID.db`` beside it instead; an orchestrator that opens a journal
takes in the rows of any such sibling whose process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections import deque
from pathlib import Path

import aiosqlite

from swarmd.services.errors import FailedPrecondition
from swarmd.v1 import common_pb2

__all__ = ["Journal", "JournalLocked", "StateKey"]

log = logging.getLogger(__name__)

#: (swarm id, subtask id); the subtask id is "" for a whole-swarm save.
StateKey = tuple[str, str]

_CLOSE_WAIT_SECS = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    swarm_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (swarm_id, sequence)
);
CREATE TABLE IF NOT EXISTS states (
    swarm_id TEXT NOT NULL,
    subtask_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (swarm_id, subtask_id)
);
"""


class JournalLocked(FailedPrecondition):
    """The journal file is held by another live orchestrator."""


def _lock(path: Path) -> int:
    """Take ``PATH.lock`` for this process; raises :class:`JournalLocked`."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise JournalLocked(
            f"the orchestrator journal {path} is in use by another orchestrator "
            f"(process {holder}); give each orchestrator its own journal_path"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class Journal:
    """One orchestrator's journal file; :meth:`open` it, :meth:`aclose` it."""

    def __init__(self, path: Path, *, max_bytes: int, flush_interval: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self._db: aiosqlite.Connection | None = None
        self._lock_fd: int | None = None
        self._version = 0
        # Not committed yet: events per swarm, the highest sequence confirmed per
        # swarm, and the state keys whose row must be rewritten (or deleted).
        self._new_events: dict[str, list[common_pb2.SwarmEvent]] = {}
        self._confirmed: dict[str, int] = {}
        self._dirty: set[StateKey] = set()
        # What the journal holds (or will once flushed): state versions and
        # payloads, and the committed events' (sequence, size) per swarm.
        self._states: dict[StateKey, tuple[int, common_pb2.Swarm | common_pb2.SubTaskState]] = {}
        self._state_sizes: dict[StateKey, int] = {}
        self._event_sizes: dict[str, deque[tuple[int, int]]] = {}
        self.bytes = 0
        self._full_logged = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.write_failures = 0
        #: What a previous orchestrator left: events per swarm (in order) and
        #: state saves ((version, swarm id, subtask id, payload), oldest first),
        #: for :func:`~.journal_replay.replay_journal`.
        self.left_events: dict[str, list[common_pb2.SwarmEvent]] = {}
        self.left_states: list[tuple[int, str, str, common_pb2.Swarm | common_pb2.SubTaskState]] = []

    # -- opening and closing --------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        flush_interval: float = 0.05,
        fallback: bool = False,
    ) -> Journal:
        """Open (creating) and lock the journal at ``path``; with ``fallback``,
        a journal locked by another process is replaced by ``NAME-PID.db``."""
        path = path.expanduser().absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = _lock(path)
        except JournalLocked as exc:
            if not fallback:
                raise
            mine = path.with_name(f"{path.stem}-{os.getpid()}{path.suffix}")
            log.info("%s; this process journals to %s", exc.message, mine)
            path, fd = mine, _lock(mine)
        journal = cls(path, max_bytes=max_bytes, flush_interval=flush_interval)
        journal._lock_fd = fd
        try:
            await journal._connect()
            await journal._adopt_siblings()
            await journal._load()
        except BaseException:
            await journal._disconnect()
            raise
        return journal

    async def _connect(self) -> None:
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.executescript(_SCHEMA)
        await self._db.commit()

    async def _adopt_siblings(self) -> None:
        """Take in the rows of ``NAME-PID.db`` journals whose process is gone."""
        assert self._db is not None
        for other in sorted(self.path.parent.glob(f"{self.path.stem}-*{self.path.suffix}")):
            if other == self.path:
                continue
            try:
                fd = _lock(other)
            except JournalLocked:
                continue  # its orchestrator is alive
            try:
                await self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
                await self._db.executescript(_SCHEMA.replace("EXISTS ", "EXISTS other."))
                await self._db.execute("INSERT OR IGNORE INTO events SELECT * FROM other.events")
                await self._db.execute(
                    "INSERT OR REPLACE INTO states SELECT swarm_id, subtask_id, "
                    "version + (SELECT COALESCE(MAX(version), 0) FROM main.states), payload "
                    "FROM other.states"
                )
                await self._db.commit()
                await self._db.execute("DETACH DATABASE other")
                log.warning("took in the orchestrator journal %s left by a stopped process", other)
                for name in (other.name, other.name + "-wal", other.name + "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        other.with_name(name).unlink()
            finally:
                with contextlib.suppress(FileNotFoundError):
                    other.with_name(other.name + ".lock").unlink()
                os.close(fd)

    async def _load(self) -> None:
        assert self._db is not None
        async with self._db.execute(
            "SELECT swarm_id, sequence, payload FROM events ORDER BY swarm_id, sequence"
        ) as cursor:
            async for swarm_id, sequence, payload in cursor:
                event = common_pb2.SwarmEvent.FromString(payload)
                self.left_events.setdefault(swarm_id, []).append(event)
                self._event_sizes.setdefault(swarm_id, deque()).append((sequence, len(payload)))
                self.bytes += len(payload)
        async with self._db.execute(
            "SELECT version, swarm_id, subtask_id, payload FROM states ORDER BY version"
        ) as cursor:
            async for version, swarm_id, subtask_id, payload in cursor:
                kind = common_pb2.SubTaskState if subtask_id else common_pb2.Swarm
                message = kind.FromString(payload)
                self.left_states.append((version, swarm_id, subtask_id, message))
                self._states[(swarm_id, subtask_id)] = (version, message)
                self._state_sizes[(swarm_id, subtask_id)] = len(payload)
                self.bytes += len(payload)
                self._version = max(self._version, version)

    @property
    def empty(self) -> bool:
        """Nothing unconfirmed is held (on disk or about to be)."""
        if self._states:
            return False
        for swarm_id, sizes in self._event_sizes.items():
            if sizes and sizes[-1][0] > self._confirmed.get(swarm_id, 0):
                return False
        return all(
            e.sequence <= self._confirmed.get(swarm_id, 0)
            for swarm_id, events in self._new_events.items()
            for e in events
        )

    async def aclose(self) -> None:
        """Commit what is pending, then close and unlock (idempotent). A
        ``NAME-PID.db`` journal left empty is removed."""
        if self._closed:
            return
        # Let a commit under way finish (a cancelled one may have reached the
        # disk all the same); a disk that does not answer is given up on.
        await self.flush(_CLOSE_WAIT_SECS)
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(Exception):
            await self._commit()
        empty = self.empty
        await self._disconnect()
        if empty and self.path.stem.rpartition("-")[2] == str(os.getpid()):
            for name in (self.path.name, self.path.name + "-wal", self.path.name + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(name).unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _disconnect(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
            self._db = None
        if self._closed:
            return
        if self._lock_fd is not None:  # opening failed
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- what the writers record (synchronous, never blocking) ---------------

    def add_event(self, event: common_pb2.SwarmEvent) -> bool:
        """Journal an event not stored yet; False when the journal is full (not journaled)."""
        if self._closed:
            return False
        if self.bytes >= self.max_bytes:
            if not self._full_logged:
                self._full_logged = True
                log.error(
                    "the orchestrator journal %s holds %d bytes (journal_max_bytes %d): new events "
                    "are not journaled until the result store has caught up",
                    self.path,
                    self.bytes,
                    self.max_bytes,
                )
            return False
        self._new_events.setdefault(event.swarm_id, []).append(event)
        self._kick()
        return True

    def events_stored(self, swarm_id: str, last_sequence: int) -> None:
        """The store holds the events of ``swarm_id`` up to ``last_sequence``."""
        if self._closed:
            return
        if last_sequence > self._confirmed.get(swarm_id, 0):
            self._confirmed[swarm_id] = last_sequence
            self._kick()

    def save_state(self, swarm_id: str, state: common_pb2.Swarm | common_pb2.SubTaskState) -> int:
        """Journal a state save (a Swarm replaces every row of the swarm);
        returns its version, for :meth:`state_stored`."""
        self._version += 1
        if self._closed:
            return self._version
        if isinstance(state, common_pb2.Swarm):
            key: StateKey = (swarm_id, "")
            for other in [k for k in self._states if k[0] == swarm_id]:
                del self._states[other]
                self._dirty.add(other)
        else:
            key = (swarm_id, state.subtask.id)
        self._states[key] = (self._version, state)
        self._dirty.add(key)
        self._kick()
        return self._version

    def state_stored(self, swarm_id: str, subtask_id: str, version: int) -> None:
        """The store holds the save ``version`` (a newer save of it stays journaled)."""
        key = (swarm_id, subtask_id)
        held = self._states.get(key)
        if held is not None and held[0] == version and not self._closed:
            del self._states[key]
            self._dirty.add(key)
            self._kick()

    # -- committing ------------------------------------------------------------

    def _kick(self) -> None:
        self._idle.clear()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_loop(), name="orchestrator-journal"
            )
        self._wake.set()

    async def _flush_loop(self) -> None:
        delay = 0.1
        while True:
            if not (self._new_events or self._confirmed or self._dirty):
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(self.flush_interval)  # gather a batch
            try:
                await self._commit()
            except (OSError, aiosqlite.Error) as exc:
                self.write_failures += 1
                if self.write_failures == 1 or self.write_failures % 50 == 0:
                    log.error("cannot write the orchestrator journal %s: %s", self.path, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1

    async def _commit(self) -> None:
        """Write one batch: new events not confirmed meanwhile, confirmed events
        removed, and each changed state key rewritten or removed."""
        if self._db is None:
            return
        new, self._new_events = self._new_events, {}
        confirmed, self._confirmed = self._confirmed, {}
        dirty, self._dirty = self._dirty, set()
        rows: list[tuple[str, int, bytes]] = []
        for swarm_id, events in new.items():
            upto = confirmed.get(swarm_id, 0)
            rows.extend(
                (swarm_id, e.sequence, e.SerializeToString()) for e in events if e.sequence > upto
            )
        puts: list[tuple[str, str, int, bytes]] = []
        deletes: list[StateKey] = []
        for key in dirty:
            held = self._states.get(key)
            if held is None:
                deletes.append(key)
            else:
                puts.append((key[0], key[1], held[0], held[1].SerializeToString()))
        # Only rows on disk need deleting; with nothing to change, nothing is written.
        event_drops = [
            (swarm_id, upto)
            for swarm_id, upto in confirmed.items()
            if (sizes := self._event_sizes.get(swarm_id)) and sizes[0][0] <= upto
        ]
        state_drops = [key for key in deletes if key in self._state_sizes]
        if not (rows or event_drops or state_drops or puts):
            return
        try:
            db = self._db
            await db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?)", rows)
            await db.executemany(
                "DELETE FROM events WHERE swarm_id = ? AND sequence <= ?", event_drops
            )
            await db.executemany(
                "DELETE FROM states WHERE swarm_id = ? AND subtask_id = ?", state_drops
            )
            await db.executemany("INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?)", puts)
            await db.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._db.rollback()
            # Nothing of the batch is on disk: take it up again with the next one.
            for swarm_id, events in new.items():
                self._new_events[swarm_id] = events + self._new_events.get(swarm_id, [])
            for swarm_id, upto in confirmed.items():
                self._confirmed[swarm_id] = max(upto, self._confirmed.get(swarm_id, 0))
            self._dirty |= dirty
            raise
        self._account(rows, confirmed, puts, deletes)

    def _account(
        self,
        rows: list[tuple[str, int, bytes]],
        confirmed: dict[str, int],
        puts: list[tuple[str, str, int, bytes]],
        deletes: list[StateKey],
    ) -> None:
        for swarm_id, sequence, payload in rows:
            self._event_sizes.setdefault(swarm_id, deque()).append((sequence, len(payload)))
            self.bytes += len(payload)
        for swarm_id, upto in confirmed.items():
            sizes = self._event_sizes.get(swarm_id)
            while sizes and sizes[0][0] <= upto:
                self.bytes -= sizes.popleft()[1]
            if sizes is not None and not sizes:
                del self._event_sizes[swarm_id]
        for swarm_id, subtask_id, _, payload in puts:
            self.bytes += len(payload) - self._state_sizes.get((swarm_id, subtask_id), 0)
            self._state_sizes[(swarm_id, subtask_id)] = len(payload)
        for key in deletes:
            self.bytes -= self._state_sizes.pop(key, 0)
        if self._full_logged and self.bytes < self.max_bytes:
            self._full_logged = False

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every change recorded so far is committed; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
