"""Work git would not commit: files a sub-agent wrote that the repository ignores.

``git add -A`` leaves out what ``.gitignore`` (or ``info/exclude``) matches,
so a sub-agent whose only output is, say, ``build/out.txt`` with ``build/``
ignored ends with nothing to commit. Removing its worktree then would drop
that work without a word. :func:`ignored_paths` lists such files (folders
collapsed, as ``git status --ignored`` shows them; swarmd's own ``.swarmd/``
left out); :func:`keep_worktree` locks the worktree with a reason saying why,
so neither ``swarmd worktrees prune`` nor a retry removes it;
:func:`force_add` stages them anyway when the swarm asks for it
(``worktree.commit_ignored=true``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from swarmd.plugins.runtime.worktree.git import names, run_git, split_z

__all__ = ["IGNORED_CODE", "describe", "force_add", "ignored_paths", "keep_worktree"]

#: ``SwarmWarning.code`` of the warning event and result note.
IGNORED_CODE = "ignored_files_only"
_STATE_DIR = ".swarmd/"
_TIMEOUT = 60.0


async def ignored_paths(worktree: Path, *, timeout: float = _TIMEOUT) -> list[str]:
    """Paths in ``worktree`` that git ignores and does not track, sorted; folders end in ``/``."""
    run = await run_git(
        worktree,
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--directory",
        timeout=timeout,
    )
    return sorted(p for p in split_z(run.out) if p != _STATE_DIR and not p.startswith(_STATE_DIR))


async def force_add(worktree: Path, paths: Sequence[str], *, timeout: float = _TIMEOUT) -> None:
    """Stage ``paths`` although git ignores them (``git add -f``)."""
    await run_git(worktree, "add", "-f", "--", *paths, timeout=timeout)


async def keep_worktree(worktree: Path, subtask_id: str, *, timeout: float = _TIMEOUT) -> None:
    """Re-lock ``worktree`` with a reason no live-process check can clear."""
    await run_git(worktree, "worktree", "unlock", str(worktree), timeout=timeout, check=False)
    reason = f"swarmd: subtask {subtask_id} left files git ignores here; unlock to remove"
    await run_git(worktree, "worktree", "lock", "--reason", reason, str(worktree), timeout=timeout)


def describe(subtask_id: str, paths: Sequence[str], worktree: Path) -> str:
    """The warning's text: what was left, where, and how to have it committed."""
    return (
        f"subtask {subtask_id} changed no tracked file but wrote files git ignores: {names(list(paths))}; "
        f"they were not committed or merged; worktree {worktree} kept with them "
        "(set the option worktree.commit_ignored=true to commit ignored files)"
    )
