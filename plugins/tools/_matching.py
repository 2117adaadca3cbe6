"""Time-limited regular-expression matching for grep and glob.

Patterns are compiled with the ``regex`` package rather than ``re``: the
same syntax (``regex.V0`` is ``re``-compatible), but each match takes a
``timeout`` and, with ``concurrent=True``, releases the GIL while it runs.
A pattern that backtracks catastrophically, such as ``(a|aa)+$`` against a
long line, therefore neither freezes the service (``re`` holds the GIL for
the whole match, starving the event loop, its gRPC health checks and its
signal handlers) nor runs past its time: the match gives up after its cap
or at the call's deadline, whichever comes first, and the model is told
why. (A linear-time engine such as RE2 would rule the backtracking out, at
the price of refusing backreferences and lookaround, which Python's syntax
has.)

A match with a timeout costs several times one without, so grep does not
search line by line: :class:`LineSearch` first searches the whole text with
a ``MULTILINE`` twin of the pattern. A line's match is also a match of the
twin in the whole text, and a twin's match inside one line is a match of
that line, except for patterns that look past a line's ends (``\\A``,
``\\Z``, lookaround), which are searched line by line. Only where a twin's
match spans lines is its first line searched on its own.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator

import regex

from swarmd.plugins.tool import CallStop, ToolError, ToolTimeout

__all__ = ["MATCH_TIMEOUT_SECS", "LineSearch", "compile_pattern", "matches"]

#: Longest one match (of a line, a file's text, or a path against a glob) may take.
MATCH_TIMEOUT_SECS = 5.0
#: What in a pattern can tell a line from the same text inside a file.
_SEES_PAST_LINE = ("\\A", "\\Z", "\\z", "\\G", "(?=", "(?!", "(?<")


def compile_pattern(pattern: str, flags: int = 0) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern, flags | regex.V0)
    except regex.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None


def matches(
    compiled: regex.Pattern[str], text: str, stop: CallStop, cap: float, *, search: bool, what: str, pos: int = 0
) -> regex.Match[str] | None:
    """One time-limited match that releases the GIL; a clear error when it runs out of time."""
    limit = stop.remaining(cap)
    try:
        if search:
            return compiled.search(text, pos, timeout=limit, concurrent=True)
        return compiled.match(text, pos, timeout=limit, concurrent=True)
    except TimeoutError:
        stop.check()  # the call's own deadline: the toolbox reports it
        if limit is not None and limit < cap:
            # The call's deadline bounded this match, not the cap; the regex
            # engine's clock can give up a hair before ours says it has passed.
            raise ToolTimeout("the tool call ran out of time") from None
        raise ToolError(
            f"the pattern took more than {cap:g}s to match {what}: it backtracks catastrophically. "
            "Avoid nested or overlapping repetition such as (a+)+ or (a|aa)*, or anchor it"
        ) from None


class LineSearch:
    """The lines of a text that a pattern finds (as ``grep -n`` numbers them:
    lines end at ``\\n``, a ``\\r`` before it is dropped)."""

    def __init__(self, pattern: str, flags: int, cap: float) -> None:
        self.compiled = compile_pattern(pattern, flags)
        self.cap = cap
        self.whole: regex.Pattern[str] | None = None
        if not any(token in pattern for token in _SEES_PAST_LINE):
            self.whole = compile_pattern(pattern, flags | regex.MULTILINE)

    def lines(self, text: str, stop: CallStop, shown: str) -> Iterator[tuple[int, str]]:
        """(number, line) of every matching line of ``text``."""
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        if lines and lines[-1] == "":
            lines.pop()
        if self.whole is None:
            yield from self._each(lines, 0, stop, shown)
            return
        joined = "\n".join(lines)
        starts: list[int] | None = None
        pos = 0
        while pos <= len(joined):
            try:
                found = self.whole.search(joined, pos, timeout=stop.remaining(self.cap / 4), concurrent=True)
            except TimeoutError:
                stop.check()
                # Too slow on the whole text; lines may still be fine one by one.
                first = 0 if starts is None else bisect.bisect_right(starts, pos) - 1
                yield from self._each(lines, first, stop, shown)
                return
            if found is None:
                return
            if starts is None:
                starts = [0, *itertools.accumulate(len(line) + 1 for line in lines)]
            index = bisect.bisect_right(starts, found.start()) - 1
            if index >= len(lines):
                return
            line = lines[index]
            # A match inside one line is that line's match; one that spans lines proves nothing.
            if found.end() <= starts[index] + len(line) or matches(
                self.compiled, line, stop, self.cap, search=True, what=f"line {index + 1} of {shown}"
            ):
                yield index + 1, line
            pos = starts[index + 1]

    def _each(self, lines: list[str], first: int, stop: CallStop, shown: str) -> Iterator[tuple[int, str]]:
        for index in range(first, len(lines)):
            line = lines[index]
            if matches(self.compiled, line, stop, self.cap, search=True, what=f"line {index + 1} of {shown}"):
                yield index + 1, line
