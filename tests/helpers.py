"""Helpers shared by the tests (import as `from helpers import git`)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return stdout (raises on failure)."""
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def process_running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie.

    ``os.kill(pid, 0)`` also succeeds for a zombie: a killed process whose
    parent died first stays one until its new parent (often PID 1, which
    may reap only every second or two) collects it, though it runs nothing.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def command_running(cmdline: str) -> bool:
    """Whether a process whose command line is exactly ``cmdline`` runs (zombies
    do not count). Unlike a PID, this works across PID namespaces: a command
    in the bash sandbox sees its own PIDs, not the host's."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if (
            raw.replace(b"\0", b" ").strip().decode(errors="replace") == cmdline
            and state not in "ZX"
        ):
            return True
    return False


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def relock(repo: Path, path: Path, pid: int) -> None:
    """Lock the worktree ``path`` as swarmd does, on behalf of process ``pid``."""
    git(repo, "worktree", "unlock", str(path))
    reason = f"swarmd: in use by pid {pid} on {socket.gethostname()}"
    git(repo, "worktree", "lock", "--reason", reason, str(path))


async def until(
    condition: Callable[[], object], timeout: float = 2.0, interval: float = 0.005
) -> None:
    """Wait for ``condition()`` to hold, polling every ``interval`` seconds;
    fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(interval)


async def committed_work(mgr: Any, name: str, swarm: str = "s") -> tuple[Any, str]:
    """A sub-agent's worktree ``name`` with the file ``<name>.txt`` written and
    committed through ``mgr`` (a WorktreeManager): (the worktree, its commit)."""
    wt = await mgr.create(swarm, name)
    (wt.path / f"{name}.txt").write_text(f"work of {name}\n")
    sha = await mgr.commit(wt, f"{name} did its work")
    assert sha is not None
    return wt, sha
