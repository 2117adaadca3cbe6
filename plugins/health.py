"""Branch health checks for the collapse controller (pluggable, async)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = ["HealthCheck", "HealthResult"]


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    detail: str = ""


class HealthCheck(abc.ABC):
    """Checks whether a sub-agent's worktree is healthy (builds, tests pass...)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options = dict(options or {})

    @abc.abstractmethod
    async def check(self, worktree: Path) -> HealthResult:
        """Run the check; must not block the event loop and must time out."""

    async def run(self, worktree: Path) -> HealthResult:
        """How a check is run: a lazy worktree is written whole first (a check
        hands the folder to processes, which must see every file), then :meth:`check`."""
        from swarmd.plugins.runtime.worktree.lazy import materialize_all

        await materialize_all(worktree)
        return await self.check(worktree)
