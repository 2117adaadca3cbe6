"""What every worktree manager asks of its repository once: where it is, and
that ``.swarmd/`` (worktrees, the embedded database) is hidden from ``git status``.

A sub-agent attempt makes its own manager, so these answers are kept per
process: the top-level and common folders of a folder (asked of ``git
rev-parse`` once, by one manager even when a hundred start at the same
moment, and trusted while both folders are still there), and which
``info/exclude`` files already hold the line.

swarmd adds ``/.swarmd/`` to the repository's ``info/exclude``, never to a
tracked ``.gitignore``; an ``info/exclude`` is looked at again when its
modification time or size changed.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

from swarmd.plugins.runtime.worktree.git import run_git
from swarmd.plugins.runtime.worktree.model import EXCLUDE_PATTERN, NotAGitRepository

__all__ = ["find_toplevel", "hide_swarmd_dir"]

# Folder -> (top-level, common dir), as git answered; and the questions in flight, per loop.
_TOPLEVELS: dict[str, tuple[Path, Path]] = {}
_ASKING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future[tuple[Path, Path]]]] = (
    weakref.WeakKeyDictionary()
)


async def find_toplevel(folder: Path, timeout: float) -> tuple[Path, Path]:
    """(top-level folder, common git dir) of the working tree ``folder`` is in;
    :class:`NotAGitRepository` when it is in none."""
    key = str(folder)
    known = _TOPLEVELS.get(key)
    if known is not None and known[0].is_dir() and (known[1] / "HEAD").exists():
        return known
    pending = _ASKING.setdefault(asyncio.get_running_loop(), {})
    task = pending.get(key)
    if task is None:
        task = pending[key] = asyncio.ensure_future(_ask(folder, timeout))
        task.add_done_callback(lambda _done: pending.pop(key, None))
    known = await asyncio.shield(task)
    _TOPLEVELS[key] = known
    return known


async def _ask(folder: Path, timeout: float) -> tuple[Path, Path]:
    run = await run_git(folder, "rev-parse", "--show-toplevel", "--git-common-dir", timeout=timeout, check=False)
    if run.rc != 0:
        raise NotAGitRepository(f"{folder} is not inside a git working tree: {run.error}")
    top, common = run.text.splitlines()
    return Path(top), (folder / common).resolve()

# ``info/exclude`` files known to hide .swarmd/, by common dir: their (mtime, size) then.
_HIDDEN: dict[str, tuple[int, int] | None] = {}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


async def hide_swarmd_dir(common: Path) -> None:
    """Make sure ``<common>/info/exclude`` holds the ``/.swarmd/`` line."""
    exclude = common / "info" / "exclude"
    known = _HIDDEN.get(str(common))
    if known is not None and known == _stamp(exclude):
        return

    def update() -> None:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        if EXCLUDE_PATTERN not in text.split("\n"):
            sep = "" if not text or text.endswith("\n") else "\n"
            with exclude.open("a") as fh:
                fh.write(f"{sep}# swarmd worktrees\n{EXCLUDE_PATTERN}\n")

    await asyncio.to_thread(update)
    _HIDDEN[str(common)] = _stamp(exclude)
