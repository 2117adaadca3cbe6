"""Reading and writing refs without a git process per question.

Sub-agents running at once ask the same repository the same small things
(what does this ref point at, what tree does this commit have) and move
refs (create a branch, record a base, advance a branch by a commit, delete
what was merged) in bursts. A git process for each costs a fork and exec and
the repository's setup every time, which on a loaded machine dominates
these operations. Two long-lived helpers per repository replace them:

:class:`RefReader`
    One ``git cat-file --batch-check`` process answers every lookup, one line
    in, one line out. Refs and objects are read from disk on every question,
    so answers are never stale; what it cannot answer for sure (an object id
    it reports missing, which could be an abbreviation or a pack it has not
    seen yet) goes to ``git rev-parse`` as before.

:class:`RefWriter`
    Ref changes queued while one ``git update-ref --stdin`` runs are applied
    together in the next one, as a single transaction, starting no reflog
    (these are swarmd's own refs). Each caller's lines
    stay together and keep their all-or-nothing meaning: when a combined
    transaction is refused (one branch already exists, one old value no
    longer holds), it is split in halves and retried until the unit that
    fails is alone, so one refusal costs a few processes, not one per caller.

Both are per process: a reader per working tree (``HEAD`` is that tree's),
shared by threads and event loops; a writer per repository (the common git
directory) and event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import collections
import contextlib
import os
import subprocess
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from swarmd.plugins.runtime.worktree.git import (
    GitRun,
    end_batch_process,
    run_git,
    start_batch_process,
)

__all__ = ["RefReader", "RefWriter", "Unavailable", "reader_for", "without_new_reflogs", "writer_for"]

#: The reflog message of refs moved by a combined transaction.
REFLOG_MESSAGE = "swarmd: update worktree refs"


def without_new_reflogs() -> dict[str, str]:
    """Environment for a git that starts no reflog (``core.logAllRefUpdates=false``, added
    to whatever ``GIT_CONFIG_COUNT`` already injects).

    The writer moves only swarmd's own refs (sub-agents' branches, their base
    refs): a reflog of each would be two files made and deleted per
    sub-agent and keeps nothing, since deleting a branch deletes its reflog.
    A reflog that already exists is still appended to.
    """
    try:
        n = max(0, int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0))
    except ValueError:
        n = 0
    return {
        "GIT_CONFIG_COUNT": str(n + 1),
        f"GIT_CONFIG_KEY_{n}": "core.logAllRefUpdates",
        f"GIT_CONFIG_VALUE_{n}": "false",
    }


class Unavailable(Exception):
    """The reader's git process is gone or did not answer in time."""


@dataclass
class _Lookup:
    oid: str
    kind: str


class RefReader:
    """A ``git cat-file --batch-check`` process answering ``rev -> (id, type)``.

    Thread-safe; one question at a time. Started on first use and restarted
    when it died; :meth:`lookup` raises :class:`Unavailable` when it cannot
    answer, and callers then ask ``git rev-parse``.
    """

    def __init__(self, top: Path) -> None:
        self.top = top
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = 0

    def _process(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None or proc.poll() is not None or self._pid != os.getpid():
            if proc is not None:
                end_batch_process(proc)
            proc = self._proc = start_batch_process(self.top, "cat-file", "--batch-check=%(objectname) %(objecttype)")
            self._pid = os.getpid()
        return proc

    def lookup(self, rev: str) -> _Lookup | None:
        """What ``rev`` names (``None``: git reports it missing or ambiguous)."""
        if not rev or "\n" in rev or "\r" in rev:
            raise Unavailable("not a single-line revision")
        with self._lock:
            try:
                proc = self._process()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(rev.encode("utf-8", "surrogateescape") + b"\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except (OSError, ValueError) as exc:
                self._kill()
                raise Unavailable(str(exc)) from None
            if not line.endswith(b"\n"):
                self._kill()
                raise Unavailable("git cat-file ended")
        fields = line.decode("utf-8", "replace").split()
        if len(fields) == 2 and fields[1] in ("missing", "ambiguous"):
            return None
        if len(fields) != 2 or len(fields[0]) not in (40, 64):
            raise Unavailable(f"unexpected answer {line[:80]!r}")
        return _Lookup(fields[0], fields[1])

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            end_batch_process(proc)

    def close(self) -> None:
        """End the git process (it also ends by itself when this process exits)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            end_batch_process(proc)

    async def resolve(self, rev: str, timeout: float) -> _Lookup | None:
        """:meth:`lookup` off the event loop, within ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.lookup, rev), timeout)
        except TimeoutError:
            await asyncio.to_thread(self._kill)
            raise Unavailable(f"no answer within {timeout:g}s") from None


#: Readers kept at most; the least recently used one is closed beyond that.
MAX_READERS = 16
_READERS: collections.OrderedDict[str, RefReader] = collections.OrderedDict()
_READERS_LOCK = threading.Lock()


def reader_for(top: Path) -> RefReader:
    """The reader of the working tree ``top`` (its ``HEAD`` is the one ``HEAD`` names)."""
    with _READERS_LOCK:
        reader = _READERS.get(str(top))
        if reader is None:
            reader = _READERS[str(top)] = RefReader(top)
        _READERS.move_to_end(str(top))
        evicted = []
        while len(_READERS) > MAX_READERS:
            evicted.append(_READERS.popitem(last=False)[1])
    for old in evicted:
        old.close()
    return reader


@atexit.register
def _close_readers() -> None:
    with _READERS_LOCK:
        readers = list(_READERS.values())
        _READERS.clear()
    for reader in readers:
        reader.close()


@dataclass
class _Unit:
    lines: str
    done: asyncio.Future[GitRun]


class RefWriter:
    """Ref transactions of one repository, combined while one is running.

    :meth:`apply` takes ``update-ref --stdin`` lines (``create``, ``update``,
    ``delete``, full ref names) that must succeed or fail together and
    returns the result of the ``git update-ref`` that applied them: ``rc`` 0
    when they were applied, otherwise the refusal of that unit alone. Units
    are applied in the order they were queued. A caller cancelled while
    waiting does not withdraw its unit: it is applied anyway, as a ref
    change already handed to git would be.
    """

    def __init__(self, top: Path, timeout: float) -> None:
        self.top = top
        self.timeout = timeout
        self._queue: builtins.list[_Unit] = []
        self._drainer: asyncio.Task[None] | None = None

    async def apply(self, lines: str) -> GitRun:
        loop = asyncio.get_running_loop()
        unit = _Unit(lines if lines.endswith("\n") else lines + "\n", loop.create_future())
        self._queue.append(unit)
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await asyncio.shield(unit.done)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._apply_group(batch)
            except BaseException as exc:  # a timeout or cancellation: tell everyone waiting
                for unit in batch:
                    if not unit.done.done():
                        unit.done.set_exception(
                            exc if isinstance(exc, Exception) else asyncio.CancelledError()
                        )
                if not isinstance(exc, Exception):
                    for unit in self._queue:
                        unit.done.set_exception(asyncio.CancelledError())
                    self._queue = []
                    raise

    async def _apply_group(self, group: builtins.list[_Unit]) -> None:
        run = await run_git(
            self.top,
            "update-ref",
            "-m",
            REFLOG_MESSAGE,
            "--stdin",
            timeout=self.timeout,
            check=False,
            stdin="".join(u.lines for u in group).encode(),
            env=without_new_reflogs(),
        )
        if run.rc == 0 or len(group) == 1:
            for unit in group:
                if not unit.done.done():
                    unit.done.set_result(run)
            return
        half = len(group) // 2
        await self._apply_group(group[:half])
        await self._apply_group(group[half:])


_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RefWriter]] = (
    weakref.WeakKeyDictionary()
)


def writer_for(common: Path, top: Path, timeout: float) -> RefWriter:
    """The running loop's writer for the repository whose common git directory is ``common``."""
    writers = _WRITERS.setdefault(asyncio.get_running_loop(), {})
    writer = writers.get(str(common))
    if writer is None:
        writer = writers[str(common)] = RefWriter(top, timeout)
    return writer
