"""The bash tool: confinement of cwd, timeouts that kill the whole process
group, cancellation, scrubbed environment, bounded output."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from helpers import process_running

from swarmd.plugins import PathEscapeError, ToolContext, ToolError
from swarmd.plugins.runtime.env import scrub_environment
from swarmd.plugins.tools.bash import BashTool, fit_output


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return root


@pytest.fixture
def ctx(work: Path) -> ToolContext:
    return ToolContext(workdir=work.resolve(), env=scrub_environment(os.environ))


async def wait_gone(pids: list[int], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(process_running(p) for p in pids):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_runs_in_the_worktree_with_exit_code(ctx: ToolContext, work: Path) -> None:
    out = await BashTool().run({"command": "pwd; echo err >&2"}, ctx)
    assert out.success
    assert out.output.splitlines()[0] == str(work.resolve())
    assert "err" in out.output and out.output.endswith("[exit code: 0]")
    out = await BashTool().run({"command": "pwd; exit 3", "cwd": "sub"}, ctx)
    assert not out.success and out.metadata["exit_code"] == 3
    assert out.output.splitlines()[0] == str((work / "sub").resolve())
    assert "[exit code: 3]" in out.output
    assert (await BashTool().run({"command": "true"}, ctx)).output.startswith("(no output)")


async def test_cwd_outside_is_refused(ctx: ToolContext, work: Path) -> None:
    os.symlink(work.parent / "outside", work / "escape")
    for cwd in ["..", str(work.parent / "outside"), "/tmp", "escape", "sub/../.."]:
        with pytest.raises(PathEscapeError):
            await BashTool().run({"command": "touch pwned", "cwd": cwd}, ctx)
    assert not (work.parent / "outside" / "pwned").exists()
    with pytest.raises(ToolError, match="no such file"):
        await BashTool().run({"command": "true", "cwd": "missing"}, ctx)


async def test_timeout_kills_the_whole_process_group(ctx: ToolContext, work: Path) -> None:
    started = time.monotonic()
    out = await BashTool().run(
        {"command": "sleep 100 & echo $! > bg.pid; sleep 100 & echo $! >> bg.pid; wait", "timeout": 1}, ctx
    )
    assert time.monotonic() - started < 5
    assert not out.success and out.metadata["timed_out"]
    assert "timed out after 1s" in out.output
    children = [int(x) for x in (work / "bg.pid").read_text().split()]
    assert len(children) == 2
    assert await wait_gone([*children, out.metadata["pid"]])


async def test_background_child_cannot_hang_the_call(ctx: ToolContext, work: Path) -> None:
    started = time.monotonic()
    out = await BashTool().run({"command": "sleep 100 & echo $! > bg.pid; echo started"}, ctx)
    assert time.monotonic() - started < 5
    assert out.success and "started" in out.output
    assert await wait_gone([int((work / "bg.pid").read_text())])


async def test_cancellation_kills_the_process_group(ctx: ToolContext, work: Path) -> None:
    task = asyncio.create_task(BashTool().run({"command": "sleep 100 & echo $! > bg.pid; wait"}, ctx))
    pid_file = work / "bg.pid"
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    child = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone([child])


async def test_environment_is_scrubbed(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://x")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "t")
    monkeypatch.setenv("DB_PASSWORD", "p")
    monkeypatch.setenv("aws_secret_access_key", "a")
    monkeypatch.setenv("GCP_CREDENTIALS", "c")
    monkeypatch.setenv("SWARMD_ORCHESTRATOR__X", "1")
    monkeypatch.setenv("ANTHROPIC_MODEL", "m")
    monkeypatch.setenv("HARMLESS", "yes")
    # Without an env in the context, the tool scrubs the process environment itself.
    ctx = ToolContext(workdir=work.resolve())
    out = (await BashTool().run({"command": "env"}, ctx)).output
    names = {line.split("=", 1)[0] for line in out.splitlines() if "=" in line}
    for gone in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "MY_SERVICE_TOKEN", "DB_PASSWORD",
                 "aws_secret_access_key", "GCP_CREDENTIALS", "SWARMD_ORCHESTRATOR__X", "ANTHROPIC_MODEL"]:
        assert gone not in names
    assert "HARMLESS" in names and "HOME" in names and "PATH" in names
    assert "GIT_TERMINAL_PROMPT=0" in out


async def test_output_keeps_head_and_tail(ctx: ToolContext) -> None:
    out = await BashTool().run({"command": "for i in $(seq 1 5000); do echo line$i; done"}, ctx)
    assert out.success
    assert "line1\n" in out.output and "line5000" in out.output
    assert "characters omitted" in out.output
    assert len(out.output) < 6200
    assert fit_output("short") == "short"


async def test_a_process_that_leaves_the_group_cannot_hang_the_call(ctx: ToolContext, work: Path) -> None:
    started = time.monotonic()
    try:
        out = await BashTool().run({"command": "setsid sleep 30 & echo $! > bg.pid; echo started"}, ctx)
        assert time.monotonic() - started < 6
        assert out.success and "started" in out.output
    finally:
        pid_file = work / "bg.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 9)
