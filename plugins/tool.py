"""The tool interface offered to sub-agents.

A tool has a name, a description, a JSON Schema for its arguments and an
async :meth:`Tool.run`. The runtime validates arguments against the schema
before calling ``run``: a bad argument becomes a tool error the model sees,
never a crash. Tools get a :class:`ToolContext` with the worktree they are
confined to; :meth:`ToolContext.resolve` is the one way to turn a
model-supplied path into a real one.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["PathEscapeError", "Tool", "ToolContext", "ToolError", "ToolResult"]


class ToolError(Exception):
    """Raised by a tool for an error the model should see (not a crash)."""


class PathEscapeError(ToolError):
    """A path argument resolves outside the worktree."""


@dataclass
class ToolResult:
    output: str
    success: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolContext:
    """What a tool may touch."""

    workdir: Path  # the worktree (or repository, for read-only subtasks); resolved, absolute
    swarm_id: str = ""
    subtask_id: str = ""
    #: Environment for subprocesses (secrets already scrubbed).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Extra objects the runtime provides, e.g. "share" -> shared-results client.
    services: dict[str, Any] = field(default_factory=dict)

    def resolve(self, path: str, *, must_exist: bool = False) -> Path:
        """Resolve ``path`` (relative to the worktree) and refuse escapes.

        ``..`` segments, absolute paths outside the worktree and symlinks that
        resolve outside are refused with :class:`PathEscapeError`.
        """
        if not isinstance(path, str) or "\x00" in path:
            raise ToolError("path must be a string without NUL bytes")
        root = self.workdir.resolve()
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = Path(os.path.realpath(candidate))
        if resolved != root and root not in resolved.parents:
            raise PathEscapeError(f"path {path!r} is outside the worktree")
        if must_exist and not resolved.exists():
            raise ToolError(f"no such file or directory: {path}")
        return resolved

    def relative(self, path: Path) -> str:
        """Path as shown to the model: relative to the worktree."""
        try:
            return str(path.resolve().relative_to(self.workdir.resolve())) or "."
        except ValueError:
            return str(path)


class Tool(abc.ABC):
    """Base class of sub-agent tools; register with ``swarmd_register_tools``."""

    #: Name the model calls the tool by.
    name: ClassVar[str]
    #: Description shown to the model.
    description: ClassVar[str]
    #: JSON Schema (an "object" schema) of the arguments.
    parameters: ClassVar[Mapping[str, Any]]
    #: True when the tool never modifies anything (offered to read-only subtasks).
    read_only: ClassVar[bool] = False

    @abc.abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run the tool with schema-valid ``args``; raise :class:`ToolError` for
        errors the model should see."""
