"""Search tools: glob and grep, in pure Python.

Both walk the worktree without following symlinks, skip ``.git`` and never
report a file that resolves outside the worktree. The walk runs in a worker
thread (so a large tree does not stall the event loop) and stops early when
the call is cancelled.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from swarmd.plugins.tool import Tool, ToolContext, ToolError, ToolResult
from swarmd.plugins.tools._common import SNIFF_BYTES, is_binary, walk_files

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
                out.append(re.escape(c))
            else:
                body = seg[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "{":
            j = seg.find("}", i)
            if j == -1:
                out.append(re.escape(c))
            else:
                out.append("(?:" + "|".join(_segment(alt) for alt in seg[i + 1 : j].split(",")) + ")")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (``*``, ``?``, ``[...]``, ``{a,b}``, ``**`` for any
    number of directories) matched against a whole relative POSIX path."""
    parts = pattern.strip("/").split("/")
    out = ""
    for index, seg in enumerate(parts):
        last = index == len(parts) - 1
        if seg == "**":
            out += ".*" if last else "(?:[^/]*/)*"
        else:
            out += _segment(seg) + ("" if last else "/")
    return re.compile(out + r"\Z")


def _check_pattern(pattern: str) -> None:
    if pattern.startswith("/") or PurePosixPath(pattern).is_absolute():
        raise ToolError("pattern must be relative to the search path (no leading '/')")
    if ".." in PurePosixPath(pattern).parts:
        raise ToolError("pattern must not contain '..'")


async def _in_thread(fn: Any, *args: Any) -> Any:
    stop = threading.Event()
    try:
        return await asyncio.to_thread(fn, stop, *args)
    finally:
        stop.set()


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

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = args["pattern"]
        _check_pattern(pattern)
        base = ctx.resolve(args.get("path") or ".", must_exist=True)
        if not base.is_dir():
            raise ToolError(f"{ctx.relative(base)} is not a directory")
        limit = args.get("limit", 200)
        regex = glob_to_regex(pattern)

        def search(stop: threading.Event) -> tuple[list[str], int]:
            found: list[str] = []
            total = 0
            for file in walk_files(ctx, base):
                if stop.is_set():
                    break
                if regex.match(file.relative_to(base).as_posix()):
                    total += 1
                    if len(found) < limit:
                        found.append(ctx.relative(file))
            return found, total

        found, total = await _in_thread(search)
        if not found:
            return ToolResult(f"No files match {pattern!r} under {ctx.relative(base)}")
        more = f"\n(showing {len(found)} of {total}; narrow the pattern or raise limit)" if total > len(found) else ""
        return ToolResult("\n".join(found) + more, metadata={"matches": total})


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

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            regex = re.compile(args["pattern"], re.IGNORECASE if args.get("case_insensitive") else 0)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {args['pattern']!r}: {exc}") from None
        base = ctx.resolve(args.get("path") or ".", must_exist=True)
        include: str = args.get("include") or ""
        include_re = None
        if include:
            _check_pattern(include)
            include_re = glob_to_regex(include)
        limit = args.get("limit", 100)
        root = base if base.is_dir() else base.parent

        def wanted(file: Path) -> bool:
            if include_re is None:
                return True
            rel = file.relative_to(root).as_posix()
            return bool(include_re.match(rel if "/" in include else file.name))

        def search(stop: threading.Event) -> tuple[list[str], int, int]:
            hits: list[str] = []
            total = files = 0
            for file in walk_files(ctx, base):
                if stop.is_set():
                    break
                if not wanted(file):
                    continue
                try:
                    if file.stat().st_size > MAX_GREP_FILE_BYTES:
                        continue
                    data = file.read_bytes()
                except OSError:
                    continue
                if is_binary(data[:SNIFF_BYTES]):
                    continue
                files += 1
                shown = ctx.relative(file)
                for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                    if regex.search(line):
                        total += 1
                        if len(hits) < limit:
                            if len(line) > MAX_MATCH_LINE_CHARS:
                                line = line[:MAX_MATCH_LINE_CHARS] + "..."
                            hits.append(f"{shown}:{number}: {line}")
            return hits, total, files

        hits, total, files = await _in_thread(search)
        if not hits:
            return ToolResult(f"No matches for {args['pattern']!r} in {files} file(s)")
        more = f"\n(showing {len(hits)} of {total} matches; narrow the search or raise limit)" if total > len(hits) else ""
        return ToolResult("\n".join(hits) + more, metadata={"matches": total})
