"""grep's line search finds exactly the lines a line-by-line ``re`` search finds,
though it searches the whole text first."""

from __future__ import annotations

import re

import pytest
import regex

from swarmd.plugins import ToolError
from swarmd.plugins.tool import CallStop
from swarmd.plugins.tools._matching import LineSearch, compile_pattern

TEXTS = [
    "",
    "\n",
    "alpha\nbeta\ngamma",
    "alpha\r\nbeta\r\n\r\ngamma delta\r\n",
    "x = 1\n\ny = 2\n  z = 3\n\x0cpage two\n",
    "foo\nfoo bar\nbarfoo\n foo\nFOO\n" * 3,
    "a\nb\n" + "line without end",
]
PATTERNS = [
    "foo",
    "^foo",
    "foo$",
    "^$",
    r"\bbar\b",
    r"\s+",
    r"[^a]+",
    r"a\s*b",
    "",
    "x*",
    r"\Afoo",
    r"foo\Z",
    r"(?<!\s)foo",
    r"foo(?!\s)",
    r"(?=b)b",
    r"\d",
    "gamma|page",
    r"(?i)FOO",
    r"(foo)\s\1",
    r"\n",
    r"a\nb",
    r"$\n?",
]


def by_lines(pattern: str, text: str, flags: int = 0) -> list[tuple[int, str]]:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    compiled = re.compile(pattern, flags)
    return [(n, line) for n, line in enumerate(lines, start=1) if compiled.search(line)]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_lines_as_a_search_line_by_line(pattern: str) -> None:
    for flags, re_flags in [(0, 0), (regex.IGNORECASE, re.IGNORECASE)]:
        finder = LineSearch(pattern, flags, cap=5)
        for text in TEXTS:
            got = list(finder.lines(text, CallStop(), "f"))
            assert got == by_lines(pattern, text, re_flags), (pattern, text)


def test_bad_patterns_are_tool_errors() -> None:
    with pytest.raises(ToolError, match="invalid regular expression '\\(unclosed'"):
        compile_pattern("(unclosed")
