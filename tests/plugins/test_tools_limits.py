"""Files the tools must not hang on or load whole: named pipes, devices,
sparse files of many GiB, endless lines, directories with many entries.

Each call either answers with a clear error or returns a bounded result;
none waits on a pipe or reads a device until memory runs out.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from swarmd.plugins import ToolContext
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS, GlobTool, GrepTool, ListTool
from swarmd.plugins.tools._reading import MAX_SKIP_BYTES

HUGE = 64 * 1024**3  # a sparse file's size: nothing of it is on disk


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 'needle'\n")
    return root.resolve()


@pytest.fixture
def box(work: Path) -> Toolbox:
    return Toolbox(BUILTIN_TOOLS, ToolContext(workdir=work), timeout=30)


async def call(box: Toolbox, name: str, **args: Any) -> Any:
    return await box.execute(name, json.dumps(args))


def sparse(path: Path, head: bytes, size: int = HUGE) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def device(path: Path) -> bool:
    """A /dev/zero inside the worktree (only root may make one)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError:
        return False
    return True


async def test_named_pipes_are_refused_not_waited_on(box: Toolbox, work: Path) -> None:
    os.mkfifo(work / "pipe")
    out = await call(box, "read", path="pipe")
    assert not out.success and "pipe is a named pipe; only regular files can be read" in out.output
    out = await call(box, "edit", path="pipe", old_string="a", new_string="b")
    assert not out.success and "named pipe" in out.output
    out = await call(box, "write", path="pipe", content="x")
    assert not out.success and "pipe is a named pipe; only regular files can be written" in out.output
    out = await call(box, "multiedit", edits=[{"path": "pipe", "old_string": "a", "new_string": "b"}])
    assert not out.success and "edit 1 of 1 failed, nothing was changed" in out.output
    assert stat.S_ISFIFO(os.stat(work / "pipe").st_mode)


async def test_a_device_is_refused(box: Toolbox, work: Path) -> None:
    if not device(work / "zero"):
        pytest.skip("making a device node needs root")
    out = await call(box, "read", path="zero")
    assert not out.success and "zero is a device; only regular files can be read" in out.output
    out = await call(box, "write", path="zero", content="x")
    assert not out.success and "zero is a device" in out.output


async def test_read_pages_through_a_file_of_many_gib(box: Toolbox, work: Path) -> None:
    text = "".join(f"line {i:04d}\n" for i in range(1, 1001)).encode()
    sparse(work / "huge.log", text)  # 1000 text lines, then one line of 64 GiB of NULs
    out = await call(box, "read", path="huge.log")
    assert out.success, out.output
    lines = out.output.splitlines()
    assert lines[0] == "     1\tline 0001" and lines[999] == "  1000\tline 1000"
    assert lines[1000].startswith("  1001\t") and lines[1000].endswith("[line cut at 2000 chars]")
    assert f"(lines 1-1001 of more; the file is {HUGE} bytes; use offset/limit" in out.output
    out = await call(box, "read", path="huge.log", offset=990, limit=5)
    assert out.success and out.output.splitlines()[0] == "   990\tline 0990"
    # Reaching a line far beyond the first MiBs is refused, not scanned for.
    out = await call(box, "read", path="huge.log", offset=5000)
    assert not out.success
    assert f"line 5000 lies beyond the first {MAX_SKIP_BYTES // 2**20} MiB of huge.log" in out.output
    assert f"the file is {HUGE} bytes" in out.output
    # Editing it would mean loading it whole.
    out = await call(box, "edit", path="huge.log", old_string="line 0001", new_string="x")
    assert not out.success and "edits work on files up to 16 MiB" in out.output
    assert os.stat(work / "huge.log").st_size == HUGE


async def test_grep_and_glob_skip_what_is_not_a_regular_file(box: Toolbox, work: Path) -> None:
    os.mkfifo(work / "src" / "pipe.py")
    device(work / "src" / "zero.py")
    sparse(work / "src" / "huge.py", b"needle\n")
    os.symlink("/dev/zero", work / "src" / "outside.py")
    out = await call(box, "grep", pattern="needle")
    assert out.success and out.output == "src/app.py:2:     return 'needle'"
    out = await call(box, "glob", pattern="**/*.py")
    assert out.success and out.output.splitlines() == ["src/app.py", "src/huge.py"]


async def test_large_directories_are_looked_at_in_part(work: Path) -> None:
    big = work / "big"
    big.mkdir()
    for i in range(120):
        (big / f"f{i:03d}.txt").write_text("needle\n")

    class SmallList(ListTool):
        max_scan = 50

    class SmallGlob(GlobTool):
        max_dir_entries = 50

    class SmallGrep(GrepTool):
        max_dir_entries = 50

    box = Toolbox([SmallList, SmallGlob, SmallGrep], ToolContext(workdir=work), timeout=30)
    out = await call(box, "list", path="big")
    assert out.success and "big/ (more than 50 entries, the first 50 looked at)" in out.output
    assert len(out.output.splitlines()) == 51 and "use glob with a pattern" in out.output
    out = await call(box, "glob", pattern="big/*.txt", limit=500)
    assert out.success and len([n for n in out.output.splitlines() if n.startswith("big/")]) == 50
    assert "only partly searched" in out.output
    out = await call(box, "grep", pattern="needle", path="big", limit=500)
    assert out.success and out.metadata["matches"] == 50 and "only partly searched" in out.output


def reference(data: bytes) -> list[str]:
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"one",
        b"one\ntwo",
        b"one\r\ntwo\r\n",
        b"\n\n\n",
        # lines crossing the 1 MiB chunk boundary, a long one cut, no final newline
        b"".join(f"{i}:{'x' * (i % 700)}\n".encode() for i in range(4000)) + b"y" * 9000 + b"\nlast",
    ],
)
async def test_read_numbers_lines_like_a_split_on_newlines(box: Toolbox, work: Path, data: bytes) -> None:
    (work / "f.txt").write_bytes(data)
    expected = reference(data)
    if not expected:
        out = await call(box, "read", path="f.txt")
        assert out.success and out.output == "f.txt is empty"
        return
    for offset, limit in [(1, 5), (1, 100_000), (len(expected), 3), (max(1, len(expected) // 2), 7)]:
        out = await call(box, "read", path="f.txt", offset=offset, limit=limit)
        assert out.success, out.output
        body = [line for line in out.output.split("\n") if "\t" in line]
        want = expected[offset - 1 : offset - 1 + limit]
        assert len(body) == len(want)
        for got, line, number in zip(body, want, range(offset, offset + len(want)), strict=True):
            shown = line if len(line) <= 2000 else line[:2000] + "... [line cut at 2000 chars]"
            assert got == f"{number:>6}\t{shown}"
        assert out.metadata["lines"] == len(expected)
    out = await call(box, "read", path="f.txt", offset=len(expected) + 1)
    assert not out.success and f"past the end of f.txt ({len(expected)} lines)" in out.output
