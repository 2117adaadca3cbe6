"""What a branch changed since the commit it started from, as ``git`` sees it.

Counts include staged, unstaged and untracked files (ignored ones excepted):
a sub-agent that has only created new files has changed something.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from swarmd.plugins.health import run_in_group

__all__ = ["DiffStat", "changed_paths", "diff_stat"]

GIT_TIMEOUT_SECS = 30.0
#: Bytes of one untracked file read to count its lines.
UNTRACKED_READ_LIMIT = 1 << 20


@dataclass(frozen=True)
class DiffStat:
    """Changed files and lines (added + deleted) of a worktree."""

    files: frozenset[str]
    lines: int


async def _git(worktree: Path, *args: str) -> str:
    outcome = await run_in_group(["git", *args], worktree, timeout_secs=GIT_TIMEOUT_SECS, output_limit=None)
    if outcome.returncode != 0:
        raise OSError(f"git {args[0]} failed in {worktree}: {outcome.output.strip()[:300]}")
    return outcome.output


async def _untracked(worktree: Path) -> list[str]:
    out = await _git(worktree, "ls-files", "--others", "--exclude-standard", "-z")
    return [p for p in out.split("\0") if p]


async def changed_paths(worktree: Path, base_commit: str = "") -> list[str]:
    """Tracked files that differ from ``base_commit`` (HEAD when empty), plus untracked ones."""
    tracked = await _git(worktree, "diff", "--no-renames", "--name-only", "-z", base_commit or "HEAD", "--")
    return sorted({p for p in tracked.split("\0") if p} | set(await _untracked(worktree)))


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return f.read(UNTRACKED_READ_LIMIT).count(b"\n")
    except OSError:
        return 0


async def diff_stat(worktree: Path, base_commit: str = "") -> DiffStat:
    """Files and lines changed against ``base_commit``; binary files count 0 lines."""
    numstat = await _git(worktree, "diff", "--no-renames", "--numstat", "-z", base_commit or "HEAD", "--")
    files: set[str] = set()
    lines = 0
    for record in numstat.split("\0"):
        parts = record.split("\t")
        if len(parts) == 3 and parts[2]:
            files.add(parts[2])
            lines += sum(int(n) for n in parts[:2] if n.isdigit())
    untracked = await _untracked(worktree)
    files.update(untracked)
    counts = await asyncio.gather(*(asyncio.to_thread(_count_lines, worktree / p) for p in untracked))
    return DiffStat(frozenset(files), lines + sum(counts))
