"""The read tool's work: a window of numbered lines from a file of any size.

Memory and time stay bounded whatever the file: it is read a chunk at a
time; a line longer than ``max_line_bytes`` keeps its start and the rest is
skipped, not held; reaching the first line of the window scans at most
``MAX_SKIP_BYTES``, and so does reading the window; lines after the window are counted only within
``MAX_COUNT_BYTES`` (beyond that the total is reported as unknown); and the
:class:`~swarmd.plugins.tool.CallStop` is polled at every chunk.

Lines end at ``\\n`` (a ``\\r`` before it is dropped), as editors and
``grep -n`` number them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from swarmd.plugins.tool import CallStop, ToolError
from swarmd.plugins.tools._common import CHUNK_BYTES

__all__ = ["MAX_COUNT_BYTES", "MAX_SKIP_BYTES", "Window", "read_window"]

#: Bytes scanned to find the first line asked for.
MAX_SKIP_BYTES = 256 * 1024 * 1024
#: Bytes after the window scanned to count the file's lines.
MAX_COUNT_BYTES = 64 * 1024 * 1024
#: Characters of lines returned in one call, all lines together.
MAX_WINDOW_CHARS = 2 * 1024 * 1024


@dataclass
class Window:
    """Lines ``first``.. of a file; ``total`` is None when not counted to the end."""

    first: int
    lines: list[tuple[str, bool]] = field(default_factory=list)  # (text, cut)
    total: int | None = None
    full: bool = False  # stopped at MAX_WINDOW_CHARS


class _Chunks:
    """A file read a chunk at a time, with a read position in the current chunk."""

    def __init__(self, fd: int, stop: CallStop, start: bytes) -> None:
        self.fd = fd
        self.stop = stop
        self.buf = start
        self.pos = 0
        self.eof = False
        self.scanned = len(start)
        #: Bytes were consumed after the last newline (an unterminated line so far).
        self.partial = False
        #: A line went on past the scan budget.
        self.exhausted = False

    def fill(self) -> bool:
        """Replace the consumed buffer by the next chunk; False at the end of the file."""
        if self.eof:
            return False
        self.stop.check()
        chunk = os.read(self.fd, CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = chunk, 0
        self.scanned += len(chunk)
        return True

    def skip_lines(self, count: int, budget: int) -> int:
        """Skip ``count`` lines; returns how many the file had when fewer
        (an unterminated last line included)."""
        skipped = 0
        while skipped < count:
            if self.pos >= len(self.buf) and not self.fill():
                return skipped + (1 if self.partial else 0)
            if self.scanned > budget:
                raise _Budget(skipped)
            newlines = self.buf.count(b"\n", self.pos)
            if skipped + newlines < count:
                skipped += newlines
                if len(self.buf) > self.pos:
                    self.partial = not self.buf.endswith(b"\n")
                self.pos = len(self.buf)
                continue
            while skipped < count:
                self.pos = self.buf.index(b"\n", self.pos) + 1
                skipped += 1
            self.partial = False
        return skipped

    def take_line(self, max_bytes: int, budget: int) -> tuple[bytes, bool] | None:
        """The next line (its first ``max_bytes``) and whether it was cut; None at
        the end. A line still going on after ``budget`` bytes scanned is cut
        there and :attr:`exhausted` is set."""
        end = self.buf.find(b"\n", self.pos)
        if end != -1 and end - self.pos <= max_bytes:  # the common case: a whole line in the chunk
            line = self.buf[self.pos : end]
            self.pos = end + 1
            return line, False
        kept = bytearray()
        cut = False
        started = False
        while True:
            if self.pos >= len(self.buf):
                if started and self.scanned > budget:
                    self.exhausted = True
                    return bytes(kept), True
                if not self.fill():
                    return (bytes(kept), cut) if started else None
            started = True
            end = self.buf.find(b"\n", self.pos)
            stop_at = len(self.buf) if end == -1 else end
            room = max_bytes - len(kept)
            if stop_at - self.pos > room:
                cut = True
            if room > 0:
                kept += self.buf[self.pos : min(stop_at, self.pos + room)]
            if end == -1:
                self.pos = len(self.buf)
                continue
            self.pos = end + 1
            return bytes(kept), cut

    def count_rest(self, budget: int) -> int | None:
        """Lines after the current position; None when more than ``budget`` bytes remain."""
        count = 0
        last = b"\n"
        start = self.scanned
        while True:
            if self.pos < len(self.buf):
                count += self.buf.count(b"\n", self.pos)
                last = self.buf[-1:]
                self.pos = len(self.buf)
            if not self.fill():
                return count + (0 if last == b"\n" else 1)
            if self.scanned - start > budget:
                return None


class _Budget(Exception):
    def __init__(self, lines: int) -> None:
        self.lines = lines


def read_window(
    fd: int, start: bytes, offset: int, limit: int, stop: CallStop, *, shown: str, size: int, max_line_bytes: int
) -> Window:
    """Lines ``offset``..``offset+limit-1`` (1-based) of the open file ``fd``,
    whose first bytes ``start`` were already read."""
    chunks = _Chunks(fd, stop, start)
    try:
        skipped = chunks.skip_lines(offset - 1, MAX_SKIP_BYTES)
    except _Budget as exc:
        raise ToolError(
            f"line {offset} lies beyond the first {MAX_SKIP_BYTES // (1024 * 1024)} MiB of {shown} "
            f"({exc.lines} lines in it; the file is {size} bytes); use bash (e.g. sed -n, tail) for "
            "files this large"
        ) from None
    window = Window(first=offset)
    if skipped < offset - 1:
        window.total = skipped
        return window
    chars = 0
    budget = chunks.scanned + MAX_SKIP_BYTES
    while len(window.lines) < limit and not chunks.exhausted:
        taken = chunks.take_line(max_line_bytes, budget)
        if taken is None:
            break
        data, cut = taken
        text = data.decode("utf-8", errors="replace").removesuffix("\r")
        window.lines.append((text, cut))
        chars += len(text)
        if chars >= MAX_WINDOW_CHARS:
            window.full = True
            break
    if chunks.exhausted:
        return window  # the total stays unknown
    rest = chunks.count_rest(MAX_COUNT_BYTES)
    window.total = None if rest is None else offset - 1 + len(window.lines) + rest
    return window
