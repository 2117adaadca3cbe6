"""What keeps a ``swarmd`` command honest when its terminal goes away.

* SIGTERM and SIGHUP (the terminal was closed) end a command the way Ctrl-C
  does: the command's task is cancelled, so ``swarmd run`` cancels its swarm
  and records why before its embedded services stop. A repeated signal
  while that happens is ignored.
* A broken stdout (``swarmd run ... | head``, or a closed terminal) does not
  end the command half-way: output is dropped from then on and the swarm
  runs on to its end, recorded as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

__all__ = ["ENDING_SIGNALS", "SafeOutput", "Terminated", "run_guarded"]

#: Signals that end a command like Ctrl-C.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(Exception):
    """The command was ended by a signal (SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SafeOutput(io.TextIOBase):
    """A text stream that stops writing, without raising, once its reader is gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def _break(self) -> None:
        self.broken = True
        # Later writes by anything else (and the flush at exit) go nowhere.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except (BrokenPipeError, OSError, ValueError):
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self._break()

    def isatty(self) -> bool:
        return not self.broken and self._stream.isatty()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def _watch_children_with_pidfds(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Reap child processes (git, tools) through pidfds on the loop, not a thread each.

    Python 3.11's default child watcher starts a thread for every
    subprocess, which with a hundred sub-agents committing and merging at
    once costs more than the processes themselves; 3.12 and later use
    pidfds already. Kept as it is where the kernel has no ``pidfd_open``.
    Returns what puts the previous watcher back (the loop is about to end).
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return lambda: None
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return lambda: None
    previous = asyncio.get_child_watcher()
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)

    def restore() -> None:
        watcher.close()
        asyncio.set_child_watcher(previous)

    return restore


async def _guarded(coro: Coroutine[Any, Any, int], received: list[int]) -> int:
    loop = asyncio.get_running_loop()
    restore_watcher = _watch_children_with_pidfds(loop)
    task = asyncio.current_task()
    assert task is not None

    def on_signal(signum: int) -> None:
        if received:
            return  # already ending; let the cancellation finish its work
        received.append(signum)
        task.cancel()

    installed = []
    for sig in ENDING_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        return await coro
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        restore_watcher()


def run_guarded(coro: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(coro)`` with SIGTERM/SIGHUP ending it like Ctrl-C
    (:class:`Terminated`) and stdout/stderr that survive their reader."""
    received: list[int] = []
    streams = (sys.stdout, sys.stderr)
    sys.stdout = SafeOutput(sys.stdout)
    sys.stderr = SafeOutput(sys.stderr)
    try:
        return asyncio.run(_guarded(coro, received))
    except asyncio.CancelledError:
        if received:
            raise Terminated(received[0]) from None
        raise
    except KeyboardInterrupt:
        if received:
            raise Terminated(received[0]) from None
        raise
    finally:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = streams
        for stream in (out, err):
            with contextlib.suppress(Exception):
                stream.flush()
