"""Branch health checks for the collapse controller (pluggable, async).

A health check judges one sub-agent's worktree while the sub-agent works
on it: does it build, do its tests pass. It answers :class:`HealthStatus`
``PASS``, ``FAIL`` or ``UNKNOWN`` (the check could not say: it timed out,
its program is missing, there was nothing to check) with a detail text and
its duration. The collapse controller kills a branch only on repeated
``FAIL``; ``UNKNOWN`` never counts against a branch.

Plugins subclass :class:`HealthCheck`, implement :meth:`HealthCheck.check`
and register the class with ``swarmd_register_health_checks``. Processes a
check starts go through :func:`run_in_group`: own session and process
group, killed whole (SIGKILL) on timeout, on cancellation and when the
command ends, so a check leaves nothing running behind it.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

__all__ = ["CommandOutcome", "HealthCheck", "HealthResult", "HealthStatus", "run_in_group"]

#: Characters of a check's output kept in its detail (the tail: failures are reported last).
DETAIL_LIMIT = 2000
#: Default limit of one check run, in seconds.
DEFAULT_TIMEOUT_SECS = 120.0


class HealthStatus(enum.Enum):
    """What a check found."""

    PASS = "pass"
    FAIL = "fail"
    #: The check could not judge the branch (timeout, missing program, nothing to check).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class HealthResult:
    """One run of a check against one worktree."""

    status: HealthStatus
    detail: str = ""
    duration_secs: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the check passed (``FAIL`` and ``UNKNOWN`` are both not ok)."""
        return self.status is HealthStatus.PASS


@dataclass(frozen=True)
class CommandOutcome:
    """How a command run by :func:`run_in_group` ended."""

    returncode: int | None  # None: killed at the timeout
    output: str
    timed_out: bool


async def run_in_group(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout_secs: float,
    env: Mapping[str, str] | None = None,
    output_limit: int | None = DETAIL_LIMIT,
) -> CommandOutcome:
    """Run ``argv`` in ``cwd`` in a new session; kill its whole process group
    at the timeout, on cancellation and once it has exited.

    ``output_limit`` keeps the output's tail (None: all of it). Raises
    :class:`OSError` when the program cannot be started.
    """
    from swarmd.plugins.runtime.env import scrub_environment
    from swarmd.plugins.runtime.processes import kill_process_group

    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else scrub_environment(os.environ),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # Cancelled while the process was being set up: it already runs (and
        # may have started others), so its group is killed before giving up.
        with contextlib.suppress(Exception):
            started = await spawn
            kill_process_group(started.pid)
            async with asyncio.timeout(5):
                await started.wait()
        raise
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout_secs):
                output, _ = await proc.communicate()
        except TimeoutError:
            timed_out = True
            output = b""
    finally:
        kill_process_group(proc.pid)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await proc.wait()
    text = output.decode("utf-8", errors="replace")
    if output_limit is not None:
        text = text[-output_limit:]
    return CommandOutcome(None if timed_out else proc.returncode, text, timed_out)


class HealthCheck(abc.ABC):
    """Checks whether a sub-agent's worktree is healthy (builds, tests pass...).

    ``options`` come from the swarm's configuration (``health_checks`` of a
    plan file or SwarmConfig). ``timeout_secs`` bounds one run; a run past
    it is cancelled and counts as ``UNKNOWN``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, str] | None = None, *, timeout_secs: float = DEFAULT_TIMEOUT_SECS) -> None:
        self.options = dict(options or {})
        self.timeout_secs = timeout_secs

    @abc.abstractmethod
    async def check(self, worktree: Path, base_commit: str = "") -> HealthResult:
        """Run the check; must not block the event loop. ``base_commit`` is the
        commit the branch started from ("" when unknown)."""

    async def run(self, worktree: Path, base_commit: str = "") -> HealthResult:
        """How a check is run: a lazy worktree is written whole first (a check
        hands the folder to processes, which must see every file), then
        :meth:`check` under the timeout, timed."""
        from swarmd.plugins.runtime.worktree.lazy import materialize_all

        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_secs):
                await materialize_all(worktree)
                result = await self.check(worktree, base_commit)
        except TimeoutError:
            result = HealthResult(HealthStatus.UNKNOWN, f"{self.name}: no answer within {self.timeout_secs:g} s")
        except OSError as exc:
            result = HealthResult(HealthStatus.UNKNOWN, f"{self.name}: cannot run: {exc}")
        return replace(result, duration_secs=time.monotonic() - started)
