"""Running git: one subprocess per call, isolated from the user's environment.

Every git call is an ``asyncio`` subprocess with no shell, its own process
group (killed whole on timeout or cancellation), a timeout,
``GIT_TERMINAL_PROMPT=0`` and ``LC_ALL=C``. Plumbing commands are preferred so
the user's git configuration (diff prefixes, signatures, hooks) cannot change
the results. Also here: the small text helpers the other modules share.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from swarmd.plugins.runtime.worktree.model import (
    BRANCH_PREFIX,
    MAX_CONFLICT_DIFF_BYTES,
    WorktreeError,
)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "swarmd",
    "GIT_AUTHOR_EMAIL": "swarmd@localhost",
    "GIT_COMMITTER_NAME": "swarmd",
    "GIT_COMMITTER_EMAIL": "swarmd@localhost",
}
# Variables that would point git at another repository, index or tree.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
)
_LOCK_REASON = re.compile(r"swarmd: in use by pid (\d+) on (\S+)")
_T = TypeVar("_T")

#: git processes started by this process, per subcommand (profiling; never reset here).
SPAWNED: collections.Counter[str] = collections.Counter()


@dataclass(frozen=True)
class GitRun:
    rc: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace").strip()

    @property
    def error(self) -> str:
        return (self.err or self.out).decode("utf-8", "replace").strip()


@dataclass
class WtEntry:
    path: Path
    head: str | None
    branch: str | None
    locked: str | None
    prunable: bool


def git_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env.update(GIT_IDENTITY)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_EDITOR": "true"})
    if extra:
        env.update(extra)
    return env


async def run_git(
    cwd: Path,
    *args: str,
    timeout: float,
    check: bool = True,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> GitRun:
    """Run one git command; raise :class:`WorktreeError` on failure when ``check``."""
    SPAWNED[next((a for a in args if not a.startswith("-")), "")] += 1
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=git_env(env),
            start_new_session=True,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise WorktreeError(f"cannot run git in {cwd}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException as exc:
        # Kill the whole group: hooks and helpers git started must not outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, TimeoutError):
            raise WorktreeError(f"git {args[0]} timed out after {timeout:g}s in {cwd}") from None
        raise
    result = GitRun(proc.returncode or 0, out, err)
    if check and result.rc != 0:
        raise WorktreeError(f"git {' '.join(args[:3])} failed in {cwd}: {result.error}")
    return result


def start_batch_process(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start a long-lived git process answering on its pipes (``cat-file --batch``,
    ``check-attr --stdin``) in ``cwd``, in its own session; end it with
    :func:`end_batch_process`."""
    return subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=git_env(None),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def end_batch_process(proc: subprocess.Popen[bytes]) -> None:
    """End a long-lived ``git cat-file --batch*`` process: close its pipes (it
    ends on end of input) and reap it, killing it if it does not end in 5 s."""
    for pipe in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            if pipe is not None:
                pipe.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def finish_even_if_cancelled(coro: Coroutine[Any, Any, _T]) -> _T:
    """Await ``coro`` to its end; a cancellation is re-raised only afterwards.

    Used for the few steps that move the user's index, tree and branch: a
    half-done update is worse than a late cancellation.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


def split_z(data: bytes) -> list[str]:
    return [os.fsdecode(p) for p in data.split(b"\0") if p]


def truncate(data: bytes, limit: int = MAX_CONFLICT_DIFF_BYTES) -> str:
    text = data.decode("utf-8", "replace")
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    marker = f"\n[... diff truncated at {limit // 1024} KiB ...]\n"
    return raw[: limit - len(marker.encode())].decode("utf-8", "ignore") + marker


def names(paths: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def lock_reason() -> str:
    return f"swarmd: in use by pid {os.getpid()} on {socket.gethostname()}"


def lock_is_live(reason: str | None) -> bool:
    """True when a worktree lock belongs to a running process (or is not ours to judge)."""
    if reason is None:
        return False
    match = _LOCK_REASON.fullmatch(reason.strip())
    if match is None or match.group(2) != socket.gethostname():
        return True
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_lock(reason: str) -> str:
    """Whose lock this is and whether it counts, in words (for ``prune``'s reasons)."""
    match = _LOCK_REASON.fullmatch(reason.strip())
    if match is None:
        return f"locked by something other than swarmd ({reason.strip() or 'no reason given'})"
    pid, host = match.groups()
    if host != socket.gethostname():
        return (
            f"locked by pid {pid} on another host, {host}: whether it still runs cannot be told "
            "from here (`git worktree unlock` it if it does not)"
        )
    if lock_is_live(reason):
        return f"in use by pid {pid}, which is running"
    return f"its lock is stale (pid {pid} is no longer running)"


def parse_branch(branch: str) -> tuple[str, str, int] | None:
    """``swarmd/<swarm>/<subtask>[@<n>]`` -> (swarm, subtask, attempt)."""
    parts = branch.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != BRANCH_PREFIX:
        return None
    subtask, _, attempt = parts[2].partition("@")
    return parts[1], subtask, int(attempt) if attempt.isdigit() else 1


def slot_name(subtask_id: str, attempt: int) -> str:
    return subtask_id if attempt == 1 else f"{subtask_id}@{attempt}"
