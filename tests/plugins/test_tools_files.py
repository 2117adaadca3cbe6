"""File and search tools: behaviour, errors and every escape attempt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmd.plugins import PathEscapeError, ToolContext, ToolError
from swarmd.plugins.tools.files import EditTool, ListTool, MultiEditTool, ReadTool, WriteTool
from swarmd.plugins.tools.search import GlobTool, GrepTool, glob_to_regex


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.py").write_text("import os\n\ndef main():\n    return 1\n")
    (root / "src" / "pkg" / "util.py").write_text("def helper():\n    return 'x'\n")
    (root / "README.md").write_text("# Title\nhello world\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\nhello = git\n")
    (root / "blob.bin").write_bytes(b"\x00\x01hello\x00")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("hello secret\n")
    return root


@pytest.fixture
def ctx(work: Path) -> ToolContext:
    return ToolContext(workdir=work.resolve(), swarm_id="s", subtask_id="t")


def escapes(work: Path) -> list[str]:
    outside = work.parent / "outside"
    os.symlink(outside / "secret.txt", work / "link_file")
    os.symlink(outside, work / "link_dir")
    return ["../outside/secret.txt", str(outside / "secret.txt"), "link_file", "link_dir/secret.txt", "src/../../outside/secret.txt"]


# -- read ---------------------------------------------------------------------------


async def test_read_numbers_lines_and_pages(ctx: ToolContext, work: Path) -> None:
    out = await ReadTool().run({"path": "src/main.py"}, ctx)
    assert out.output.splitlines()[0] == "     1\timport os"
    assert "     4\t    return 1" in out.output
    (work / "big.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    page = await ReadTool().run({"path": "big.txt", "offset": 10, "limit": 3}, ctx)
    lines = page.output.splitlines()
    assert lines[:3] == ["    10\tline 10", "    11\tline 11", "    12\tline 12"]
    assert "lines 10-12 of 100" in page.output


async def test_read_errors(ctx: ToolContext, work: Path) -> None:
    with pytest.raises(ToolError, match="no such file"):
        await ReadTool().run({"path": "nope.txt"}, ctx)
    with pytest.raises(ToolError, match="is a directory"):
        await ReadTool().run({"path": "src"}, ctx)
    with pytest.raises(ToolError, match="binary"):
        await ReadTool().run({"path": "blob.bin"}, ctx)
    with pytest.raises(ToolError, match="past the end"):
        await ReadTool().run({"path": "README.md", "offset": 50}, ctx)
    (work / "empty").write_text("")
    assert "empty" in (await ReadTool().run({"path": "empty"}, ctx)).output


async def test_read_refuses_every_escape(ctx: ToolContext, work: Path) -> None:
    for path in escapes(work):
        with pytest.raises(PathEscapeError, match="outside the worktree"):
            await ReadTool().run({"path": path}, ctx)


async def test_absolute_path_inside_is_allowed(ctx: ToolContext, work: Path) -> None:
    out = await ReadTool().run({"path": str(work / "README.md")}, ctx)
    assert "hello world" in out.output


# -- write --------------------------------------------------------------------------


async def test_write_creates_and_overwrites(ctx: ToolContext, work: Path) -> None:
    out = await WriteTool().run({"path": "new/dir/file.txt", "content": "héllo\n"}, ctx)
    assert out.output == "Created new/dir/file.txt (7 bytes)"
    assert (work / "new/dir/file.txt").read_text() == "héllo\n"
    out = await WriteTool().run({"path": "new/dir/file.txt", "content": "x"}, ctx)
    assert out.output.startswith("Overwrote")


async def test_write_refuses_escapes_and_vcs(ctx: ToolContext, work: Path) -> None:
    for path in escapes(work):
        with pytest.raises(PathEscapeError):
            await WriteTool().run({"path": path, "content": "pwned"}, ctx)
    assert (work.parent / "outside" / "secret.txt").read_text() == "hello secret\n"
    assert not (work.parent / "outside" / "new").exists()
    with pytest.raises(ToolError, match="version-control"):
        await WriteTool().run({"path": ".git/config", "content": "x"}, ctx)
    with pytest.raises(ToolError, match="is a directory"):
        await WriteTool().run({"path": "src", "content": "x"}, ctx)


# -- edit / multiedit ---------------------------------------------------------------


async def test_edit_unique_match(ctx: ToolContext, work: Path) -> None:
    out = await EditTool().run({"path": "src/main.py", "old_string": "return 1", "new_string": "return 2"}, ctx)
    assert out.output == "Edited src/main.py: 1 replacement"
    assert "return 2" in (work / "src/main.py").read_text()


async def test_edit_errors_are_clear(ctx: ToolContext, work: Path) -> None:
    (work / "dup.txt").write_text("a\na\nb\n")
    with pytest.raises(ToolError, match="occurs 2 times.*replace_all"):
        await EditTool().run({"path": "dup.txt", "old_string": "a", "new_string": "c"}, ctx)
    out = await EditTool().run({"path": "dup.txt", "old_string": "a", "new_string": "c", "replace_all": True}, ctx)
    assert "2 replacements" in out.output and (work / "dup.txt").read_text() == "c\nc\nb\n"
    with pytest.raises(ToolError, match="not found"):
        await EditTool().run({"path": "dup.txt", "old_string": "zzz", "new_string": "c"}, ctx)
    with pytest.raises(ToolError, match="whitespace is ignored"):
        await EditTool().run({"path": "src/main.py", "old_string": "return 1  ", "new_string": "x"}, ctx)
    with pytest.raises(ToolError, match="identical"):
        await EditTool().run({"path": "dup.txt", "old_string": "b", "new_string": "b"}, ctx)
    with pytest.raises(ToolError, match="file not found"):
        await EditTool().run({"path": "nope", "old_string": "b", "new_string": "c"}, ctx)
    for path in escapes(work):
        with pytest.raises(PathEscapeError):
            await EditTool().run({"path": path, "old_string": "hello", "new_string": "bye"}, ctx)
    assert (work.parent / "outside" / "secret.txt").read_text() == "hello secret\n"


async def test_multiedit_is_atomic(ctx: ToolContext, work: Path) -> None:
    before_main = (work / "src/main.py").read_text()
    before_util = (work / "src/pkg/util.py").read_text()
    with pytest.raises(ToolError, match="edit 3 of 3 failed, nothing was changed"):
        await MultiEditTool().run(
            {
                "edits": [
                    {"path": "src/main.py", "old_string": "return 1", "new_string": "return 2"},
                    {"path": "src/pkg/util.py", "old_string": "'x'", "new_string": "'y'"},
                    {"path": "src/main.py", "old_string": "not there", "new_string": "z"},
                ]
            },
            ctx,
        )
    assert (work / "src/main.py").read_text() == before_main
    assert (work / "src/pkg/util.py").read_text() == before_util

    out = await MultiEditTool().run(
        {
            "edits": [
                {"path": "src/main.py", "old_string": "return 1", "new_string": "return 2"},
                {"path": "src/main.py", "old_string": "return 2", "new_string": "return 3"},
                {"path": "src/pkg/util.py", "old_string": "'x'", "new_string": "'y'"},
            ]
        },
        ctx,
    )
    assert "3 edits to 2 file(s)" in out.output
    assert "return 3" in (work / "src/main.py").read_text()
    assert "'y'" in (work / "src/pkg/util.py").read_text()


async def test_multiedit_refuses_an_escape_without_touching_anything(ctx: ToolContext, work: Path) -> None:
    before = (work / "src/main.py").read_text()
    with pytest.raises(PathEscapeError):
        await MultiEditTool().run(
            {
                "edits": [
                    {"path": "src/main.py", "old_string": "return 1", "new_string": "return 2"},
                    {"path": "../outside/secret.txt", "old_string": "hello", "new_string": "bye"},
                ]
            },
            ctx,
        )
    assert (work / "src/main.py").read_text() == before


# -- list / glob / grep -------------------------------------------------------------


async def test_list(ctx: ToolContext, work: Path) -> None:
    out = (await ListTool().run({}, ctx)).output
    assert out.splitlines()[0] == "./ (3 entries)"
    assert "src/" in out.splitlines() and "README.md" in out.splitlines()
    assert ".git" not in out
    assert (await ListTool().run({"path": "src"}, ctx)).output.splitlines()[1:] == ["main.py", "pkg/"]
    with pytest.raises(PathEscapeError):
        await ListTool().run({"path": ".."}, ctx)
    with pytest.raises(ToolError, match="not a directory"):
        await ListTool().run({"path": "README.md"}, ctx)


def test_glob_translation() -> None:
    assert glob_to_regex("**/*.py").match("a/b/c.py")
    assert glob_to_regex("**/*.py").match("c.py")
    assert not glob_to_regex("*.py").match("a/c.py")
    assert glob_to_regex("src/**").match("src/a/b")
    assert glob_to_regex("*.{py,md}").match("x.md")
    assert glob_to_regex("[!a]?.txt").match("bc.txt")
    assert not glob_to_regex("[!a]?.txt").match("ac.txt")


async def test_glob(ctx: ToolContext, work: Path) -> None:
    escapes(work)
    out = (await GlobTool().run({"pattern": "**/*.py"}, ctx)).output
    assert out.splitlines() == ["src/main.py", "src/pkg/util.py"]
    assert (await GlobTool().run({"pattern": "*.py", "path": "src"}, ctx)).output == "src/main.py"
    assert (await GlobTool().run({"pattern": "*.{md,bin}"}, ctx)).output.splitlines() == ["README.md", "blob.bin"]
    # The symlinked file pointing outside is never reported; .git is skipped.
    everything = (await GlobTool().run({"pattern": "**"}, ctx)).output
    assert "link_file" not in everything and "secret" not in everything and ".git" not in everything
    limited = (await GlobTool().run({"pattern": "**", "limit": 2}, ctx)).output
    assert "showing 2 of" in limited
    assert "No files match" in (await GlobTool().run({"pattern": "*.rs"}, ctx)).output
    with pytest.raises(ToolError, match=r"'\.\.'"):
        await GlobTool().run({"pattern": "../outside/*"}, ctx)
    with pytest.raises(ToolError, match="relative"):
        await GlobTool().run({"pattern": "/etc/*"}, ctx)
    with pytest.raises(PathEscapeError):
        await GlobTool().run({"pattern": "*", "path": "link_dir"}, ctx)


async def test_grep(ctx: ToolContext, work: Path) -> None:
    escapes(work)
    out = (await GrepTool().run({"pattern": "hello"}, ctx)).output
    # Only the worktree's text file: not .git, not the binary, not the symlink to outside.
    assert out == "README.md:2: hello world"
    out = (await GrepTool().run({"pattern": r"def \w+", "include": "*.py"}, ctx)).output
    assert out.splitlines() == ["src/main.py:3: def main():", "src/pkg/util.py:1: def helper():"]
    out = (await GrepTool().run({"pattern": "def", "include": "src/pkg/*.py"}, ctx)).output
    assert out.splitlines() == ["src/pkg/util.py:1: def helper():"]
    out = (await GrepTool().run({"pattern": "RETURN", "case_insensitive": True, "limit": 1}, ctx)).output
    assert out.startswith("src/main.py:4:") and "showing 1 of 2 matches" in out
    out = (await GrepTool().run({"pattern": "return", "path": "src/pkg/util.py"}, ctx)).output
    assert out == "src/pkg/util.py:2:     return 'x'"
    assert "No matches" in (await GrepTool().run({"pattern": "zzz"}, ctx)).output
    with pytest.raises(ToolError, match="invalid regular expression"):
        await GrepTool().run({"pattern": "("}, ctx)
    with pytest.raises(PathEscapeError):
        await GrepTool().run({"pattern": "hello", "path": "../outside"}, ctx)
    with pytest.raises(PathEscapeError):
        await GrepTool().run({"pattern": "hello", "path": "link_dir"}, ctx)
