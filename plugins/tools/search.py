"""Search tools: glob and grep.

Both walk the worktree (:class:`~swarmd.plugins.tools._common.Walk`) without
following symlinks, skip ``.git`` and anything that is not a regular file,
and never report a file that resolves outside the worktree. The walk runs
off the event loop (:func:`~swarmd.plugins.tool.run_blocking`) and stops at
the call's deadline or when the call is cancelled.

Patterns (grep's, and globs translated to regular expressions) are matched
with time limits and without holding the GIL; see :mod:`._matching`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import regex

from swarmd.plugins.tool import (
    BlobSource,
    CallStop,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    run_blocking,
)
from swarmd.plugins.tools._common import (
    MAX_DIR_ENTRIES,
    SNIFF_BYTES,
    Walk,
    is_binary,
    open_regular,
    read_bounded,
)
from swarmd.plugins.tools._matching import MATCH_TIMEOUT_SECS, LineSearch, matches

__all__ = ["GlobTool", "GrepTool", "glob_to_regex"]

MAX_GREP_FILE_BYTES = 2 * 1024 * 1024
MAX_MATCH_LINE_CHARS = 300


def _segment(seg: str) -> str:
    """Translate one path segment of a glob (no '/') into a regex."""
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = seg.find("]", i + 2 if i + 1 < n and seg[i + 1] in "!^" else i + 1)
            if j == -1:
                out.append(regex.escape(c))
            else:
                body = seg[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "{":
            j = seg.find("}", i)
            if j == -1:
                out.append(regex.escape(c))
            else:
                out.append("(?:" + "|".join(_segment(alt) for alt in seg[i + 1 : j].split(",")) + ")")
                i = j
        else:
            out.append(regex.escape(c))
        i += 1
    return "".join(out)


def glob_to_regex(pattern: str) -> regex.Pattern[str]:
    """Compile a glob (``*``, ``?``, ``[...]``, ``{a,b}``, ``**`` for any
    number of directories) matched against a whole relative POSIX path."""
    parts = pattern.strip("/").split("/")
    # Consecutive ``**`` mean what one does; each would add a nested repetition.
    parts = [seg for i, seg in enumerate(parts) if not (seg == "**" and i and parts[i - 1] == "**")]
    out = ""
    for index, seg in enumerate(parts):
        last = index == len(parts) - 1
        if seg == "**":
            out += ".*" if last else "(?:[^/]*/)*"
        else:
            out += _segment(seg) + ("" if last else "/")
    try:
        return regex.compile(out + r"\Z", regex.V0)
    except regex.error as exc:
        raise ToolError(f"invalid glob pattern {pattern!r}: {exc}") from None


def _check_pattern(pattern: str) -> None:
    if pattern.startswith("/") or PurePosixPath(pattern).is_absolute():
        raise ToolError("pattern must be relative to the search path (no leading '/')")
    if ".." in PurePosixPath(pattern).parts:
        raise ToolError("pattern must not contain '..'")


class GlobTool(Tool):
    name = "glob"
    description = (
        "Find files whose path matches a glob pattern, e.g. '**/*.py' or 'src/**/test_*.{py,txt}'. "
        "The pattern matches the whole path relative to `path` ('*.py' matches only the top level)."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1, "description": "Glob pattern."},
            "path": {"type": "string", "description": "Directory to search. Default '.'."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 5000, "description": "Maximum results (200)."},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }
    read_only = True
    #: Longest the match of one path may take.
    match_timeout_secs: ClassVar[float] = MATCH_TIMEOUT_SECS
    #: Entries of one directory the walk looks at.
    max_dir_entries: ClassVar[int] = MAX_DIR_ENTRIES

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = args["pattern"]
        _check_pattern(pattern)
        base = await ctx.aresolve(args.get("path") or ".", must_exist=True)
        if not base.is_dir():
            raise ToolError(f"{ctx.relative(base)} is not a directory")
        limit = args.get("limit", 200)
        compiled = glob_to_regex(pattern)
        cap = self.match_timeout_secs

        def search(stop: CallStop) -> tuple[list[str], int, bool]:
            found: list[str] = []
            total = 0
            walk = Walk(ctx, base, stop, max_dir_entries=self.max_dir_entries)
            for file in walk:
                rel = file.relative_to(base).as_posix()
                if matches(compiled, rel, stop, cap, search=False, what=f"the path {rel}"):
                    total += 1
                    if len(found) < limit:
                        found.append(ctx.relative(file))
            return found, total, walk.truncated

        found, total, truncated = await run_blocking(search)
        note = _TRUNCATED if truncated else ""
        if not found:
            return ToolResult(f"No files match {pattern!r} under {ctx.relative(base)}{note}")
        more = f"\n(showing {len(found)} of {total}; narrow the pattern or raise limit)" if total > len(found) else ""
        return ToolResult("\n".join(found) + more + note, metadata={"matches": total})


class GrepTool(Tool):
    name = "grep"
    description = (
        "Search file contents with a regular expression (Python syntax). Returns path:line: text. "
        "Skips .git and binary files. Use include (a glob like '*.py' or 'src/**/*.ts') to filter files."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1, "description": "Regular expression."},
            "path": {"type": "string", "description": "File or directory to search. Default '.'."},
            "include": {"type": "string", "description": "Only files matching this glob (name or relative path)."},
            "case_insensitive": {"type": "boolean", "description": "Ignore case. Default false."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 2000, "description": "Maximum matches (100)."},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }
    read_only = True
    #: Longest the search of one line may take.
    match_timeout_secs: ClassVar[float] = MATCH_TIMEOUT_SECS
    #: Entries of one directory the walk looks at.
    max_dir_entries: ClassVar[int] = MAX_DIR_ENTRIES

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        flags = regex.IGNORECASE if args.get("case_insensitive") else 0
        finder = LineSearch(args["pattern"], flags, self.match_timeout_secs)
        base = await ctx.aresolve(args.get("path") or ".", must_exist=True)
        include: str = args.get("include") or ""
        include_re = None
        if include:
            _check_pattern(include)
            include_re = glob_to_regex(include)
        limit = args.get("limit", 100)
        root = base if base.is_dir() else base.parent

        cap = self.match_timeout_secs

        def wanted(file: Path, stop: CallStop) -> bool:
            if include_re is None:
                return True
            rel = file.relative_to(root).as_posix()
            name = rel if "/" in include else file.name
            return matches(include_re, name, stop, cap, search=False, what=rel) is not None

        def search(stop: CallStop) -> tuple[list[str], int, int, bool]:
            with contextlib.closing(_Contents(ctx)) as contents:
                return scan(stop, contents)

        def scan(stop: CallStop, contents: _Contents) -> tuple[list[str], int, int, bool]:
            hits: list[str] = []
            total = files = 0
            walk = Walk(ctx, base, stop, max_dir_entries=self.max_dir_entries)
            for file in walk:
                if not wanted(file, stop):
                    continue
                data = contents.read(file, stop)
                if data is None:
                    continue
                files += 1
                shown = ctx.relative(file)
                for number, line in finder.lines(data.decode("utf-8", errors="replace"), stop, shown):
                    total += 1
                    if len(hits) < limit:
                        if len(line) > MAX_MATCH_LINE_CHARS:
                            line = line[:MAX_MATCH_LINE_CHARS] + "..."
                        hits.append(f"{shown}:{number}: {line}")
            return hits, total, files, walk.truncated

        hits, total, files, truncated = await run_blocking(search)
        note = _TRUNCATED if truncated else ""
        if not hits:
            return ToolResult(f"No matches for {args['pattern']!r} in {files} file(s){note}")
        more = f"\n(showing {len(hits)} of {total} matches; narrow the search or raise limit)" if total > len(hits) else ""
        return ToolResult("\n".join(hits) + more + note, metadata={"matches": total})


_TRUNCATED = "\n(some directories have too many entries and were only partly searched)"


class _Contents:
    """File contents for grep: from the disk, or, for a file a lazy worktree has
    not written yet, from the object store (as checkout would write it)."""

    def __init__(self, ctx: ToolContext) -> None:
        self._ctx = ctx
        self._root = ctx.workdir.resolve()
        self._blobs: BlobSource | None = None

    def read(self, file: Path, stop: CallStop) -> bytes | None:
        files = self._ctx.files
        if files is not None and not os.path.lexists(file):
            rel = file.relative_to(self._root).as_posix()
            if files.blob_id(rel) is not None:
                if self._blobs is None:
                    self._blobs = files.open_blobs()
                data = self._blobs.read(rel, MAX_GREP_FILE_BYTES)
                if data is not None:
                    return None if is_binary(data[:SNIFF_BYTES]) else data
        return _grep_bytes(file, stop)

    def close(self) -> None:
        if self._blobs is not None:
            self._blobs.close()


def _grep_bytes(file: Path, stop: CallStop) -> bytes | None:
    """A text file's bytes, or None for one grep skips (too large, binary, unreadable)."""
    try:
        fd, size = open_regular(file, file.name)
    except (ToolError, OSError):
        return None
    try:
        if size > MAX_GREP_FILE_BYTES:
            return None
        data = read_bounded(fd, MAX_GREP_FILE_BYTES + 1, stop)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_GREP_FILE_BYTES or is_binary(data[:SNIFF_BYTES]):
        return None
    return data
