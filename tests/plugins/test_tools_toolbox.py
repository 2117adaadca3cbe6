"""The toolbox: tool selection (read-only subset), argument validation and
error handling: nothing the model sends can crash the loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

import swarmd.plugins.tools as builtin_tools
from swarmd.plugins import Tool, ToolContext, ToolResult, hookimpl
from swarmd.plugins.manager import load_plugins
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS

ALL = ["read", "write", "edit", "multiedit", "list", "glob", "grep", "bash", "swarm_share"]
BLOCK_BUILTINS = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    (tmp_path / "a.txt").write_text("alpha\n")
    return ToolContext(workdir=tmp_path.resolve(), services={"share": object()})


def test_full_and_read_only_sets(ctx: ToolContext) -> None:
    full = Toolbox(BUILTIN_TOOLS, ctx)
    assert full.names == ALL
    assert [s.name for s in full.specs()] == ALL
    ro = Toolbox(BUILTIN_TOOLS, ctx, read_only=True)
    assert ro.names == ["read", "list", "glob", "grep", "swarm_share"]
    assert [s.name for s in ro.specs()] == ro.names
    # Without a result store, swarm_share is neither advertised nor executable.
    bare = Toolbox(BUILTIN_TOOLS, ToolContext(workdir=ctx.workdir))
    assert "swarm_share" not in bare.names and "swarm_share" not in bare
    # Each tool once, even when offered twice.
    assert Toolbox([*BUILTIN_TOOLS, *BUILTIN_TOOLS], ctx).names == ALL


async def test_read_only_toolbox_cannot_execute_mutating_tools(ctx: ToolContext) -> None:
    ro = Toolbox(BUILTIN_TOOLS, ctx, read_only=True)
    out = await ro.execute("write", json.dumps({"path": "b.txt", "content": "x"}))
    assert not out.success and "unknown tool 'write'" in out.output
    assert not (ctx.workdir / "b.txt").exists()
    out = await ro.execute("bash", json.dumps({"command": "touch b.txt"}))
    assert not out.success and not (ctx.workdir / "b.txt").exists()


async def test_bad_calls_are_tool_errors(ctx: ToolContext) -> None:
    box = Toolbox(BUILTIN_TOOLS, ctx)
    cases = {
        ("nope", "{}"): "unknown tool 'nope'. Available tools: read, write",
        ("read", "{not json"): "not valid JSON",
        ("read", "[1]"): "must be a JSON object, got list",
        ("read", "{}"): "invalid arguments for read: 'path' is a required property",
        ("read", '{"path": 3}'): "invalid arguments for read: path: 3 is not of type 'string'",
        ("read", '{"path": "a.txt", "offset": 0}'): "offset: 0 is less than the minimum of 1",
        ("read", '{"path": "a.txt", "file_path": "x"}'): "Additional properties are not allowed ('file_path'",
        ("bash", '{"command": "true", "timeout": 601}'): "601 is greater than the maximum of 600",
        ("edit", '{"path": "a.txt"}'): "'new_string' is a required property",
        ("read", '{"path": "../x"}'): "Error: path '../x' is outside the worktree",
        ("read", '{"path": "missing.txt"}'): "Error: no such file or directory: missing.txt",
    }
    for (name, args), expected in cases.items():
        out = await box.execute(name, args)
        assert not out.success, (name, args)
        assert expected in out.output, (name, args, out.output)
    ok = await box.execute("read", "")  # empty arguments mean {}
    assert "'path' is a required property" in ok.output
    ok = await box.execute("list", "")
    assert ok.success and "a.txt" in ok.output and ok.duration_ms >= 0


class Crashy(Tool):
    name = "crashy"
    description = "raises"
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"how": {"type": "string"}}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if args.get("how") == "os":
            raise PermissionError(13, "Permission denied", str(ctx.workdir / "locked.txt"))
        raise RuntimeError("boom")


class BadSchema(Tool):
    name = "bad_schema"
    description = "invalid schema"
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"x": {"type": "nonsense"}}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult("never")


async def test_crashing_tools_and_bad_schemas(ctx: ToolContext) -> None:
    box = Toolbox([Crashy, BadSchema], ctx)
    assert box.names == ["crashy"]
    out = await box.execute("crashy", "{}")
    assert not out.success and out.output == "Tool execution failed: RuntimeError: boom"
    out = await box.execute("crashy", '{"how": "os"}')
    assert not out.success and out.output == "Error: Permission denied: locked.txt"


class ThirdPartyPlugin:
    @hookimpl
    def swarmd_register_tools(self, registry: Any) -> None:
        registry.add(Crashy)


def test_tools_come_from_the_plugin_registry(ctx: ToolContext) -> None:
    plugins = load_plugins([builtin_tools, ThirdPartyPlugin()], env=BLOCK_BUILTINS)
    box = Toolbox.from_registry(plugins.tools, ctx)
    assert sorted(box.names) == sorted([*ALL, "crashy"])
    assert Toolbox.from_registry(plugins.tools, ctx, read_only=True).names == [
        "glob",
        "grep",
        "list",
        "read",
        "swarm_share",
    ]
