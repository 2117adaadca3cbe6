"""Helpers shared by the built-in tools."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from swarmd.plugins.tool import ToolContext, ToolError

#: Directories never walked by list/glob/grep (version control internals).
SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
#: Bytes inspected to decide whether a file is binary.
SNIFF_BYTES = 8192


def is_binary(data: bytes) -> bool:
    return b"\x00" in data[:SNIFF_BYTES]


def refuse_vcs(ctx: ToolContext, path: Path, shown: str) -> None:
    """Refuse to modify version-control internals (e.g. a worktree's ``.git`` file)."""
    rel = Path(ctx.relative(path))
    if any(part in SKIP_DIRS for part in rel.parts):
        raise ToolError(f"refusing to modify {shown}: version-control internals are off limits")


def read_text(ctx: ToolContext, path: Path, shown: str) -> str:
    """A file's text for editing (UTF-8, line endings preserved)."""
    if path.is_dir():
        raise ToolError(f"{shown} is a directory")
    if not path.exists():
        raise ToolError(f"file not found: {shown}")
    data = path.read_bytes()
    if is_binary(data):
        raise ToolError(f"{shown} is a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not UTF-8 text") from None


def write_text(path: Path, text: str) -> int:
    """Write ``text`` as UTF-8 (creating parent directories); returns bytes written."""
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def walk_files(ctx: ToolContext, base: Path) -> Iterator[Path]:
    """Files under ``base`` (or ``base`` itself), skipping VCS directories and
    anything (a symlink) that resolves outside the worktree."""
    if base.is_file():
        yield base
        return
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            candidate = Path(dirpath) / name
            if candidate.is_symlink():
                try:
                    ctx.resolve(str(candidate))
                except ToolError:
                    continue
            yield candidate
