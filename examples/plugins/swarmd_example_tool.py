"""Example tool plugin: ``word_count`` counts the words of a worktree file.

Read-only (offered to read-only subtasks too); the path goes through
``ctx.resolve()``, which refuses escapes; the read runs off the event loop
through ``run_blocking``. Load it with ``SWARMD_PLUGINS=swarmd_example_tool``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from swarmd.plugins import Tool, ToolContext, ToolError, ToolResult, hookimpl
from swarmd.plugins.tool import CallStop, run_blocking


def _count(stop: CallStop, path: Path) -> int:
    words = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            stop.check()  # raises once the call is over (timeout, cancel)
            words += len(line.split())
    return words


class WordCountTool(Tool):
    """Counts words in one file."""

    name = "word_count"
    description = "Count the words of a text file in the worktree."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "File path, relative to the worktree."}},
        "required": ["path"],
        "additionalProperties": False,
    }
    read_only = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = await ctx.aresolve(args["path"], must_exist=True)
        if not path.is_file():
            raise ToolError(f"{args['path']} is not a file")
        words = await run_blocking(_count, path)
        return ToolResult(f"{ctx.relative(path)}: {words} words", metadata={"words": words})


@hookimpl
def swarmd_register_tools(registry: object) -> None:
    registry.add(WordCountTool)  # type: ignore[attr-defined]
