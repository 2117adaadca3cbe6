"""Hiding ``.swarmd/`` (worktrees, the embedded database) from ``git status``.

swarmd adds ``/.swarmd/`` to the repository's ``info/exclude``, never to a
tracked ``.gitignore``. Every worktree manager asks once; the process
remembers which files already hold the line (by their modification time and
size, so a file changed since is looked at again), so a hundred sub-agents
starting together do not each open the file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from swarmd.plugins.runtime.worktree.model import EXCLUDE_PATTERN

__all__ = ["hide_swarmd_dir"]

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
