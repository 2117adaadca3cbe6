"""Example health-check plugin: ``has-file`` checks that a worktree has a file.

The ``path`` option names the file (default ``README.md``). A swarm runs it
through the collapse controller when its configuration names it, e.g. a plan
file's ``collapse: {checks: [{name: has-file, options: {path: pyproject.toml}}]}``;
it can also be called directly:
``await HasFileCheck({"path": "pyproject.toml"}).run(worktree)``.
"""

from __future__ import annotations

from pathlib import Path

from swarmd.plugins import HealthCheck, HealthResult, HealthStatus, hookimpl


class HasFileCheck(HealthCheck):
    """Passes when the worktree has the file named by option ``path``, fails otherwise."""

    name = "has-file"
    description = "the worktree has a given file"

    async def check(self, worktree: Path, base_commit: str = "") -> HealthResult:
        rel = self.options.get("path", "README.md")
        found = (worktree / rel).is_file()
        status = HealthStatus.PASS if found else HealthStatus.FAIL
        return HealthResult(status, f"{rel} {'exists' if found else 'is missing'}")


@hookimpl
def swarmd_register_health_checks(registry: object) -> None:
    registry.add(HasFileCheck)  # type: ignore[attr-defined]
