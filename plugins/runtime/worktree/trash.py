"""Removed worktrees leave at once and are deleted later, off the sub-agents' path.

A merged sub-agent's worktree is removed once it is known clean. Deleting its
files there and then (a folder walk and an unlink per file, on a thread the
whole executor shares) is work that a batch of merges, and so the end of the
swarm, would wait for while it has nothing to do with the result. So
:func:`discard` moves the worktree's folder and its administrative folder
(``.git/worktrees/<name>``) into ``.swarmd/trash/`` of the repository, two
renames: from that moment git no longer lists the worktree, its path is free
for a new one, and nothing of it is left where a sub-agent or the user
would look. One reaper thread per process then deletes what the trash holds,
an entry at a time, at a lower CPU priority than the event loop.

Nothing in the trash is work: only worktrees found clean (everything in them
committed) are discarded, and a worktree that is not goes the careful way
(kept, with the reason). Trash left by a process that died (or that exited
before its reaper finished) is deleted by the next process that discards a
worktree of that repository, and by ``prune``. Where a rename cannot be made
(the worktree folder on another filesystem, a trash folder that cannot be
created), :func:`discard` says so and the caller deletes the files in place.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import threading
from pathlib import Path

from swarmd.plugins.runtime.worktree.model import TRASH_DIR

__all__ = ["discard", "pending", "sweep", "wait_empty"]

#: The reaper's nice increment (Linux schedules threads one by one).
REAPER_NICE = 10

_lock = threading.Lock()
_queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_pending = 0
_done = threading.Condition(_lock)
#: Trash folders already swept for leftovers by this process.
_swept: set[Path] = set()
#: Trash entries this process has queued (or is about to) and not yet deleted.
_mine: set[Path] = set()


def discard(top: Path, path: Path, admin: Path) -> bool:
    """Move the clean worktree at ``path`` and its admin folder into ``top``'s trash.

    True when the worktree folder moved (git no longer sees the worktree:
    the admin folder moved too, or was deleted where it could not move).
    False when nothing moved, and the caller deletes the files itself.
    """
    trash = top / TRASH_DIR
    try:
        trash.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    name = f"{path.name}-{secrets.token_hex(6)}"
    ours = (trash / name, trash / f"{name}.admin")
    with _lock:  # claimed before they exist, so a sweep running meanwhile leaves them to us
        first = trash not in _swept
        _swept.add(trash)
        _mine.update(ours)
    if first:
        sweep(top)
    try:
        os.rename(path, ours[0])
    except OSError:
        with _lock:
            _mine.difference_update(ours)
        return False
    try:
        os.rename(admin, ours[1])
    except OSError:
        shutil.rmtree(admin, ignore_errors=True)
    _reap(*ours)
    return True


def sweep(top: Path) -> int:
    """Queue for deletion whatever ``top``'s trash holds that this process has not
    queued already (an earlier process's leftovers). Returns how many were queued."""
    trash = top / TRASH_DIR
    try:
        names = os.listdir(trash)
    except OSError:
        return 0
    with _lock:
        _swept.add(trash)
        found = [trash / n for n in names if trash / n not in _mine]
        _mine.update(found)
    _reap(*found)
    return len(found)


def pending() -> int:
    """Trash entries queued and not yet deleted, in this process."""
    with _lock:
        return _pending


def wait_empty(timeout: float | None = None) -> bool:
    """Block until this process's reaper has deleted everything queued; False on timeout."""
    with _done:
        return _done.wait_for(lambda: _pending == 0, timeout)


def _reap(*paths: Path) -> None:
    global _pending, _thread
    if not paths:
        return
    with _lock:
        _pending += len(paths)
        for path in paths:
            _queue.put(path)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_reaper, name="swarmd-trash", daemon=True)
            _thread.start()


def _reaper() -> None:
    global _pending
    with contextlib.suppress(AttributeError, OSError):  # below the event loop, where Linux allows it
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REAPER_NICE)
    while True:
        path = _queue.get()
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        finally:
            with _done:
                _pending -= 1
                _mine.discard(path)
                _done.notify_all()
