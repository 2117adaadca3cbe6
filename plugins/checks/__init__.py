"""swarmd's built-in health checks, registered like any plugin's.

``command``
    runs a shell command from the options (``command``, e.g. ``pytest -x -q``,
    ``npm run build``, ``cargo check``) in the worktree: exit 0 passes, any
    other code fails, a command that does not finish in time is ``UNKNOWN``.
``python-compile``
    byte-compiles the Python files the branch changed (against the commit it
    started from, staged and untracked files included) in a separate
    interpreter, writing no ``.pyc`` anywhere: fast and dependency-free.
    ``UNKNOWN`` when no Python file changed.
``none``
    always ``UNKNOWN``: the controller then judges by the diff alone and never
    kills on a check.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from swarmd.plugins import hookimpl
from swarmd.plugins.checks.diff import changed_paths, diff_stat
from swarmd.plugins.health import HealthCheck, HealthResult, HealthStatus, run_in_group
from swarmd.plugins.runtime.env import scrub_environment

__all__ = [
    "BUILTIN_HEALTH_CHECKS",
    "CommandCheck",
    "NoCheck",
    "PythonCompileCheck",
    "changed_paths",
    "diff_stat",
    "swarmd_register_health_checks",
]

# Compiles each file named on the command line in memory; prints the first error of each.
_COMPILE_SCRIPT = """
import sys
bad = 0
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            compile(f.read(), path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        bad += 1
        print(f"{path}:{exc.lineno}: {exc.msg}")
    except (OSError, ValueError) as exc:
        bad += 1
        print(f"{path}: {exc}")
sys.exit(1 if bad else 0)
"""


#: The check runs while the sub-agent works in the same worktree, whose changes
#: are committed as they are: Python and pytest are asked to leave no caches there.
QUIET_CACHES = {"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_ADDOPTS": "-p no:cacheprovider"}


class CommandCheck(HealthCheck):
    """Runs ``options["command"]`` with ``bash -c`` in the worktree (with
    :data:`QUIET_CACHES` in its environment)."""

    name = "command"
    description = "Run a shell command in the worktree (option `command`); exit 0 passes."

    async def check(self, worktree: Path, base_commit: str = "") -> HealthResult:
        command = self.options.get("command", "").strip()
        if not command:
            return HealthResult(HealthStatus.UNKNOWN, "command: no `command` option given")
        env = {**scrub_environment(os.environ), **QUIET_CACHES}
        outcome = await run_in_group(["bash", "-c", command], worktree, timeout_secs=self.timeout_secs, env=env)
        if outcome.timed_out:
            return HealthResult(HealthStatus.UNKNOWN, f"`{command}` did not finish within {self.timeout_secs:g} s")
        status = HealthStatus.PASS if outcome.returncode == 0 else HealthStatus.FAIL
        return HealthResult(status, f"`{command}` exited {outcome.returncode}\n{outcome.output}".rstrip())


class PythonCompileCheck(HealthCheck):
    """Byte-compiles the branch's changed ``.py`` files in memory."""

    name = "python-compile"
    description = "Byte-compile the Python files the branch changed (no .pyc written)."

    async def check(self, worktree: Path, base_commit: str = "") -> HealthResult:
        files = [p for p in await changed_paths(worktree, base_commit) if p.endswith(".py")]
        files = [p for p in files if (worktree / p).is_file()]
        if not files:
            return HealthResult(HealthStatus.UNKNOWN, "python-compile: no changed Python file")
        outcome = await run_in_group(
            [sys.executable, "-I", "-B", "-c", _COMPILE_SCRIPT, *files], worktree, timeout_secs=self.timeout_secs
        )
        if outcome.timed_out:
            return HealthResult(HealthStatus.UNKNOWN, f"python-compile: no answer within {self.timeout_secs:g} s")
        if outcome.returncode == 0:
            return HealthResult(HealthStatus.PASS, f"{len(files)} file(s) compile")
        return HealthResult(HealthStatus.FAIL, outcome.output.strip())


class NoCheck(HealthCheck):
    """Judges nothing: every run is ``UNKNOWN``."""

    name = "none"
    description = "No check: the controller never kills on a check result."

    async def check(self, worktree: Path, base_commit: str = "") -> HealthResult:
        return HealthResult(HealthStatus.UNKNOWN, "no health check configured")


BUILTIN_HEALTH_CHECKS: tuple[type[HealthCheck], ...] = (CommandCheck, PythonCompileCheck, NoCheck)


@hookimpl
def swarmd_register_health_checks(registry: Any) -> None:
    for check in BUILTIN_HEALTH_CHECKS:
        registry.add(check)
