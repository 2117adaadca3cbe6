"""Health checks: the built-ins, the process-group runner, timeouts and cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from helpers import git, process_running, until

from swarmd.plugins import HealthStatus
from swarmd.plugins.checks import CommandCheck, NoCheck, PythonCompileCheck, diff_stat
from swarmd.plugins.manager import load_plugins


def _head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def test_builtins_are_registered_through_the_hook() -> None:
    plugins = load_plugins(autoload=False)
    assert {"command", "python-compile", "none"} <= set(plugins.health_checks.names())
    assert plugins.health_checks.entry("command").distribution.startswith("swarmd")


async def test_command_passes_and_fails_with_its_output(git_repo: Path) -> None:
    ok = await CommandCheck({"command": "test -f README.md"}).run(git_repo)
    bad = await CommandCheck({"command": "echo broken build; exit 3"}).run(git_repo)
    assert ok.status is HealthStatus.PASS
    assert bad.status is HealthStatus.FAIL
    assert "exited 3" in bad.detail and "broken build" in bad.detail
    assert bad.duration_secs > 0


async def test_command_without_a_command_is_unknown(git_repo: Path) -> None:
    assert (await CommandCheck({}).run(git_repo)).status is HealthStatus.UNKNOWN
    assert (await NoCheck().run(git_repo)).status is HealthStatus.UNKNOWN


async def test_a_hanging_check_is_killed_as_a_group_and_counts_unknown(git_repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 300 & echo $! > {pids}; sleep 300"
    result = await CommandCheck({"command": command}, timeout_secs=0.5).run(git_repo)
    assert result.status is HealthStatus.UNKNOWN
    assert "did not finish" in result.detail or "no answer" in result.detail
    child = int(pids.read_text())
    await until(lambda: not process_running(child), timeout=5)


async def test_a_cancelled_check_kills_its_process_group(git_repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    check = CommandCheck({"command": f"sleep 300 & echo $! > {pids}; sleep 300"}, timeout_secs=60)
    task = asyncio.ensure_future(check.run(git_repo))
    await until(lambda: pids.exists() and pids.read_text().strip() != "", timeout=5)
    child = int(pids.read_text())
    assert process_running(child)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await until(lambda: not process_running(child), timeout=5)


async def test_python_compile_judges_changed_files_and_writes_no_pyc(git_repo: Path) -> None:
    base = _head(git_repo)
    check = PythonCompileCheck()
    assert (await check.run(git_repo, base)).status is HealthStatus.UNKNOWN  # nothing changed
    (git_repo / "good.py").write_text("def f():\n    return 1\n")
    assert (await check.run(git_repo, base)).status is HealthStatus.PASS
    (git_repo / "pkg").mkdir()
    (git_repo / "pkg" / "bad.py").write_text("def f(:\n")
    git(git_repo, "add", "pkg/bad.py")  # staged counts too
    bad = await check.run(git_repo, base)
    assert bad.status is HealthStatus.FAIL
    assert "pkg/bad.py:1" in bad.detail
    assert not list(git_repo.rglob("*.pyc")) and not list(git_repo.rglob("__pycache__"))


async def test_diff_stat_counts_staged_unstaged_and_untracked(git_repo: Path) -> None:
    base = _head(git_repo)
    (git_repo / "README.md").write_text("# demo\nmore\n")
    (git_repo / "staged.txt").write_text("a\nb\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "new.txt").write_text("x\ny\nz\n")
    stat = await diff_stat(git_repo, base)
    assert stat.files == {"README.md", "staged.txt", "new.txt"}
    assert stat.lines == 1 + 2 + 3
