"""Helpers shared by the built-in tools: safe opening, bounded reads, the tree walk.

All of them are blocking and meant to run under
:func:`~swarmd.plugins.tool.run_blocking`; the long ones poll the
:class:`~swarmd.plugins.tool.CallStop` they are given. Only regular files
are ever opened: a named pipe would block ``open()`` until a writer comes,
and a device such as ``/dev/zero`` never ends.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from swarmd.plugins.tool import CallStop, ToolContext, ToolError

#: Directories never walked by list/glob/grep (version control internals).
SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
#: Bytes inspected to decide whether a file is binary.
SNIFF_BYTES = 8192
#: Largest file edit/multiedit load (they hold the whole text in memory).
MAX_EDIT_BYTES = 16 * 1024 * 1024
#: Entries of one directory a walk looks at; the rest are skipped (and said so).
MAX_DIR_ENTRIES = 100_000
#: Bytes read at a time.
CHUNK_BYTES = 1024 * 1024


def is_binary(data: bytes) -> bool:
    return b"\x00" in data[:SNIFF_BYTES]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: Path, shown: str) -> tuple[int, int]:
    """Open a regular file for reading; returns (fd, size).

    ``O_NONBLOCK`` keeps ``open()`` of a named pipe from waiting for a writer;
    ``fstat`` on the open descriptor then refuses anything that is not a
    regular file (no race with a file swapped in between).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ToolError(f"file not found: {shown}") from None
    except IsADirectoryError:
        raise ToolError(f"{shown} is a directory") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ToolError(f"{shown} is {_kind(info.st_mode)}; only regular files can be read")
    return fd, info.st_size


def read_bounded(fd: int, limit: int, stop: CallStop) -> bytes:
    """Up to ``limit`` bytes from ``fd``, a chunk at a time, polling ``stop``."""
    parts: list[bytes] = []
    got = 0
    while got < limit:
        stop.check()
        chunk = os.read(fd, min(CHUNK_BYTES, limit - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def refuse_vcs(ctx: ToolContext, path: Path, shown: str) -> None:
    """Refuse to modify version-control internals (e.g. a worktree's ``.git`` file)."""
    rel = Path(ctx.relative(path))
    if any(part in SKIP_DIRS for part in rel.parts):
        raise ToolError(f"refusing to modify {shown}: version-control internals are off limits")


def read_text(path: Path, shown: str, stop: CallStop) -> str:
    """A file's text for editing (UTF-8, line endings preserved), at most MAX_EDIT_BYTES."""
    fd, size = open_regular(path, shown)
    try:
        if size > MAX_EDIT_BYTES:
            raise ToolError(
                f"{shown} is {size} bytes; edits work on files up to {MAX_EDIT_BYTES // (1024 * 1024)} MiB "
                "(use bash, e.g. sed, for larger ones)"
            )
        data = read_bounded(fd, MAX_EDIT_BYTES + 1, stop)
    finally:
        os.close(fd)
    if is_binary(data):
        raise ToolError(f"{shown} is a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not UTF-8 text") from None


def write_text(path: Path, text: str, shown: str | None = None) -> int:
    """Write ``text`` as UTF-8 (creating parent directories); returns bytes written.

    Only a regular file is written (or created): opening a named pipe for
    writing would wait for a reader.
    """
    data = text.encode("utf-8")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        if not stat.S_ISREG(mode):
            raise ToolError(f"{shown or path.name} is {_kind(mode)}; only regular files can be written")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ToolError(f"{shown or path.name} is {_kind(mode)}; only regular files can be written")
        if os.fstat(fd).st_nlink > 1:
            # Another name of the same file may be outside the worktree.
            raise ToolError(
                f"{shown or path.name} is a hard link shared with another file; refusing to write "
                "through it (delete it and write a new file instead)"
            )
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return len(data)


class IndexEntry:
    """A directory entry a lazy worktree has only in its index (not written yet)."""

    def __init__(self, name: str, path: str, directory: bool) -> None:
        self.name = name
        self.path = path
        self._directory = directory

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._directory

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return not self._directory

    def is_symlink(self) -> bool:
        return False


def index_children(ctx: ToolContext, directory: str | Path) -> dict[str, bool]:
    """Entries of ``directory`` a lazy worktree has not written yet: {name: is a directory}.

    Empty for a full checkout. Links are always written, so these are
    regular files and directories.
    """
    if ctx.files is None:
        return {}
    root = ctx.workdir.resolve()
    path = Path(directory)
    if path == root:
        return ctx.files.children("")
    if root not in path.parents:
        return {}
    return ctx.files.children(path.relative_to(root).as_posix())


class Walk:
    """The regular files under ``base`` (or ``base`` itself), in name order,
    depth first, for glob and grep. In a lazy worktree it also yields the
    files not written yet (their paths do not exist until written: read
    them through ``ctx.files``).

    Skips VCS directories, anything that is not a regular file (pipes,
    sockets, devices) and symlinks that resolve outside the worktree or to a
    directory (symlinked directories are never descended into). Polls
    ``stop`` at every entry. A directory with more than ``max_dir_entries``
    entries is only partly looked at; :attr:`truncated` says so afterwards.
    """

    def __init__(
        self, ctx: ToolContext, base: Path, stop: CallStop, *, max_dir_entries: int = MAX_DIR_ENTRIES
    ) -> None:
        self.ctx = ctx
        self.base = base
        self.stop = stop
        self.max_dir_entries = max_dir_entries
        self.truncated = False

    def _regular_link(self, entry: os.DirEntry[str] | IndexEntry) -> bool:
        try:
            self.ctx.resolve(entry.path)
            return stat.S_ISREG(os.stat(entry.path).st_mode)
        except (ToolError, OSError):
            return False

    def _entries(self, directory: str) -> list[os.DirEntry[str] | IndexEntry]:
        found: list[os.DirEntry[str] | IndexEntry] = []
        virtual = index_children(self.ctx, directory)
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if len(found) % 256 == 0:
                        self.stop.check()
                    if len(found) >= self.max_dir_entries:
                        self.truncated = True
                        break
                    found.append(entry)
                    virtual.pop(entry.name, None)
        except FileNotFoundError:
            if not virtual:
                raise
        for name, is_dir in virtual.items():
            if len(found) >= self.max_dir_entries:
                self.truncated = True
                break
            found.append(IndexEntry(name, os.path.join(directory, name), is_dir))
        found.sort(key=lambda e: e.name)
        return found

    def __iter__(self) -> Iterator[Path]:
        try:
            mode = os.stat(self.base).st_mode
        except OSError:
            return
        if not stat.S_ISDIR(mode):
            if stat.S_ISREG(mode):
                yield self.base
            return
        stack = [str(self.base)]
        while stack:
            self.stop.check()
            try:
                entries = self._entries(stack.pop())
            except OSError:
                continue
            subdirs: list[str] = []
            for entry in entries:
                self.stop.check()
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS:
                            subdirs.append(entry.path)
                    elif entry.is_file(follow_symlinks=False) or (entry.is_symlink() and self._regular_link(entry)):
                        yield Path(entry.path)
                except OSError:
                    continue
            stack.extend(reversed(subdirs))
