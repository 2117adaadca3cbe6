"""Example health-check plugin: ``has-file`` checks that a worktree has a file.

The ``path`` option names the file (default ``README.md``). Health checks are
registered and listed by ``swarmd plugins``; no part of a swarm runs them
yet, so call one from your own executor or tool:
``await HasFileCheck({"path": "pyproject.toml"}).run(worktree)``.
"""

from __future__ import annotations

from pathlib import Path

from swarmd.plugins import HealthCheck, HealthResult, hookimpl


class HasFileCheck(HealthCheck):
    """Healthy when the worktree has the file named by option ``path``."""

    name = "has-file"
    description = "the worktree has a given file"

    async def check(self, worktree: Path) -> HealthResult:
        rel = self.options.get("path", "README.md")
        ok = (worktree / rel).is_file()
        return HealthResult(ok, f"{rel} {'exists' if ok else 'is missing'}")


@hookimpl
def swarmd_register_health_checks(registry: object) -> None:
    registry.add(HasFileCheck)  # type: ignore[attr-defined]
