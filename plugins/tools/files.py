"""File tools: read, write, edit, multiedit, list.

Every path goes through :meth:`ToolContext.resolve`, so ``..``, absolute
paths and symlinks that lead outside the worktree are refused. Paths shown
to the model are relative to the worktree.

The file system work of each call runs off the event loop
(:func:`~swarmd.plugins.tool.run_blocking`) and is bounded: only regular
files are opened (a named pipe or a device is refused, never waited on),
read pages through a file of any size (see :mod:`._reading`), edits load at
most ``MAX_EDIT_BYTES``, and list looks at ``ListTool.max_scan`` entries at most.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from swarmd.plugins.tool import CallStop, Tool, ToolContext, ToolError, ToolResult, run_blocking
from swarmd.plugins.tools._common import (
    SKIP_DIRS,
    SNIFF_BYTES,
    index_children,
    is_binary,
    open_regular,
    read_bounded,
    read_text,
    refuse_vcs,
    write_text,
)
from swarmd.plugins.tools._reading import read_window

__all__ = ["EditTool", "ListTool", "MultiEditTool", "ReadTool", "WriteTool", "apply_edit"]

DEFAULT_READ_LINES = 2000
MAX_LINE_CHARS = 2000
MAX_LIST_ENTRIES = 1000
#: Entries of a directory list looks at (sorting needs them all in memory).
MAX_LIST_SCAN = 100_000

_PATH = {"type": "string", "minLength": 1, "description": "File path relative to the working directory."}


class ReadTool(Tool):
    name = "read"
    description = (
        "Read a text file. Returns numbered lines (cat -n style). Use offset (1-based first line) "
        "and limit (number of lines) to page through large files."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": _PATH,
            "offset": {"type": "integer", "minimum": 1, "description": "First line to show (1-based). Default 1."},
            "limit": {"type": "integer", "minimum": 1, "description": f"Lines to show. Default {DEFAULT_READ_LINES}."},
        },
        "required": ["path"],
        "additionalProperties": False,
    }
    read_only = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = await ctx.aresolve(args["path"], must_exist=True)
        return await run_blocking(self._read, path, ctx.relative(path), args.get("offset", 1), args.get("limit", DEFAULT_READ_LINES))

    @staticmethod
    def _read(stop: CallStop, path: Path, shown: str, offset: int, limit: int) -> ToolResult:
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; use the list tool")
        fd, size = open_regular(path, shown)
        try:
            start = read_bounded(fd, SNIFF_BYTES, stop)
            if is_binary(start):
                raise ToolError(f"{shown} is a binary file ({size} bytes)")
            window = read_window(fd, start, offset, limit, stop, shown=shown, size=size, max_line_bytes=MAX_LINE_CHARS * 4)
        finally:
            os.close(fd)
        if window.total == 0:
            return ToolResult(f"{shown} is empty", metadata={"lines": 0})
        if not window.lines:
            raise ToolError(f"offset {offset} is past the end of {shown} ({window.total} lines)")
        out = []
        for number, (line, cut) in enumerate(window.lines, start=offset):
            if cut or len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + f"... [line cut at {MAX_LINE_CHARS} chars]"
            out.append(f"{number:>6}\t{line}")
        last = offset + len(window.lines) - 1
        of = f"of {window.total}" if window.total is not None else f"of more; the file is {size} bytes"
        if offset > 1 or window.total is None or last < window.total:
            capped = ", as much as one call returns" if window.full else ""
            out.append(f"\n(lines {offset}-{last} {of}{capped}; use offset/limit to read more)")
        return ToolResult("\n".join(out), metadata={"lines": window.total})


class WriteTool(Tool):
    name = "write"
    description = "Create or overwrite a file with the given content (parent directories are created)."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"path": _PATH, "content": {"type": "string", "description": "The full new content."}},
        "required": ["path", "content"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = await ctx.aresolve(args["path"])
        shown = ctx.relative(path)
        refuse_vcs(ctx, path, shown)
        return await run_blocking(self._write, path, shown, args["content"])

    @staticmethod
    def _write(stop: CallStop, path: Path, shown: str, content: str) -> ToolResult:
        if path.is_dir():
            raise ToolError(f"{shown} is a directory")
        existed = path.exists()
        size = write_text(path, content, shown)
        verb = "Overwrote" if existed else "Created"
        return ToolResult(f"{verb} {shown} ({size} bytes)", metadata={"path": shown, "bytes": size})


def apply_edit(text: str, old: str, new: str, replace_all: bool, shown: str) -> tuple[str, int]:
    """Replace ``old`` by ``new`` in ``text``; ``old`` must occur exactly once
    unless ``replace_all``. Returns (new text, replacements)."""
    if old == new:
        raise ToolError(f"old_string and new_string are identical; nothing to change in {shown}")
    count = text.count(old)
    if count == 0:
        hint = _near_miss(text, old)
        raise ToolError(f"old_string was not found in {shown}{hint}")
    if count > 1 and not replace_all:
        raise ToolError(
            f"old_string occurs {count} times in {shown}; include more surrounding lines to make it "
            "unique, or set replace_all to true"
        )
    return text.replace(old, new) if replace_all else text.replace(old, new, 1), count if replace_all else 1


def _near_miss(text: str, old: str) -> str:
    """A hint when ``old`` matches except for indentation or trailing spaces."""
    wanted = [line.strip() for line in old.strip("\n").splitlines()]
    if not wanted or not any(wanted):
        return ""
    lines = text.splitlines()
    for i in range(len(lines) - len(wanted) + 1):
        if [line.strip() for line in lines[i : i + len(wanted)]] == wanted:
            return (
                f" exactly; lines {i + 1}-{i + len(wanted)} match if whitespace is ignored. "
                "Read the file and copy the text exactly, indentation included"
            )
    return "; read the file and copy the text to replace exactly"


_EDIT_FIELDS = {
    "old_string": {"type": "string", "minLength": 1, "description": "Exact text to replace (must be unique)."},
    "new_string": {"type": "string", "description": "Replacement text."},
    "replace_all": {"type": "boolean", "description": "Replace every occurrence. Default false."},
}


class EditTool(Tool):
    name = "edit"
    description = (
        "Edit a file by exact search and replace. old_string must match the file exactly once "
        "(whitespace included) unless replace_all is true."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"path": _PATH, **_EDIT_FIELDS},
        "required": ["path", "old_string", "new_string"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = await ctx.aresolve(args["path"])
        shown = ctx.relative(path)
        refuse_vcs(ctx, path, shown)
        return await run_blocking(self._edit, path, shown, args)

    @staticmethod
    def _edit(stop: CallStop, path: Path, shown: str, args: dict[str, Any]) -> ToolResult:
        if path.is_dir():
            raise ToolError(f"{shown} is a directory")
        text = read_text(path, shown, stop)
        new_text, n = apply_edit(text, args["old_string"], args["new_string"], args.get("replace_all", False), shown)
        stop.check()
        write_text(path, new_text, shown)
        return ToolResult(f"Edited {shown}: {n} replacement{'s' if n != 1 else ''}", metadata={"path": shown})


class MultiEditTool(Tool):
    name = "multiedit"
    description = (
        "Apply several search-and-replace edits, possibly across files, atomically: either every edit "
        "applies or none does. Edits to the same file apply in order."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "edits": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {"path": _PATH, **_EDIT_FIELDS},
                    "required": ["path", "old_string", "new_string"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["edits"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await run_blocking(self._apply, ctx, args)

    @staticmethod
    def _apply(stop: CallStop, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        originals: dict[Path, str] = {}
        staged: dict[Path, str] = {}
        for index, edit in enumerate(args["edits"], start=1):
            path = ctx.resolve(edit["path"])
            shown = ctx.relative(path)
            try:
                refuse_vcs(ctx, path, shown)
                if path.is_dir():
                    raise ToolError(f"{shown} is a directory")
                if path not in staged:
                    originals[path] = staged[path] = read_text(path, shown, stop)
                staged[path], _ = apply_edit(
                    staged[path], edit["old_string"], edit["new_string"], edit.get("replace_all", False), shown
                )
            except ToolError as exc:
                raise ToolError(f"edit {index} of {len(args['edits'])} failed, nothing was changed: {exc}") from None
        # Past this point the edits are written whole, even when the call is being
        # stopped: a half-applied multiedit is the one outcome it must not have.
        stop.check()
        written: list[Path] = []
        try:
            for path, text in staged.items():
                write_text(path, text, ctx.relative(path))
                written.append(path)
        except (OSError, ToolError) as exc:
            failed = ctx.relative(path)
            for done in written:  # put back what was already written
                write_text(done, originals[done])
            raise ToolError(f"writing {failed} failed, all edits rolled back: {exc}") from None
        files = ", ".join(ctx.relative(p) for p in staged)
        return ToolResult(f"Applied {len(args['edits'])} edits to {len(staged)} file(s): {files}")


class ListTool(Tool):
    name = "list"
    description = "List a directory's entries (directories end with '/'). Default: the working directory."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Directory path. Default '.'."}},
        "additionalProperties": False,
    }
    read_only = True
    #: Entries of the directory looked at.
    max_scan: ClassVar[int] = MAX_LIST_SCAN

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = await ctx.aresolve(args.get("path") or ".", must_exist=True)
        return await run_blocking(self._list, ctx, path, ctx.relative(path), self.max_scan)

    @staticmethod
    def _list(stop: CallStop, ctx: ToolContext, path: Path, shown: str, max_scan: int) -> ToolResult:
        if not path.is_dir():
            raise ToolError(f"{shown} is not a directory")
        entries: list[str] = []
        scanned_all = True
        virtual = index_children(ctx, path)
        with os.scandir(path) as it:
            for entry in it:
                if len(entries) % 256 == 0:
                    stop.check()
                if len(entries) >= max_scan:
                    scanned_all = False
                    break
                if entry.name in SKIP_DIRS:
                    continue
                virtual.pop(entry.name, None)
                if entry.is_symlink():
                    entries.append(f"{entry.name} -> {os.readlink(entry.path)}")
                elif entry.is_dir():
                    entries.append(entry.name + "/")
                else:
                    entries.append(entry.name)
        for name, is_dir in virtual.items():
            if len(entries) >= max_scan:
                scanned_all = False
                break
            entries.append(name + "/" if is_dir else name)
        entries.sort()
        total = len(entries)
        if total == 0:
            return ToolResult(f"{shown}/ is empty")
        counted = f"{total} entries" if scanned_all else f"more than {max_scan} entries, the first {total} looked at"
        more = f"\n... and {total - MAX_LIST_ENTRIES} more" if total > MAX_LIST_ENTRIES else ""
        if not scanned_all:
            more += "; use glob with a pattern to find names in a directory this large"
        return ToolResult(f"{shown}/ ({counted})\n" + "\n".join(entries[:MAX_LIST_ENTRIES]) + more)
