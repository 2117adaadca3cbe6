"""The tools one sub-agent may use, and the one place tool calls are executed.

A :class:`Toolbox` is built per attempt from the registered tool classes:
all of them for a mutating subtask, only the ``read_only`` ones for a
read-only subtask, and only those whose ``requires_services`` the runtime
provides. What is advertised to the model (:meth:`Toolbox.specs`) and what
can be executed are the same set, each name once.

:meth:`Toolbox.execute` never raises for anything the model did wrong: an
unknown tool, arguments that are not a JSON object, arguments that break the
tool's JSON Schema (checked with ``jsonschema`` before the tool runs), a
:class:`ToolError` (path escapes included) or an ``OSError`` all come back
as a failed :class:`ToolOutcome` whose text the model sees. Only
cancellation propagates.

Every call is bounded: it runs under :func:`~swarmd.plugins.tool.deadline_scope`
for :meth:`Tool.timeout_secs` (the toolbox's ``timeout`` unless the tool's
own arguments say more) and is cancelled when that passes, which comes back
as a failed outcome saying so (``metadata["timed_out"]``). This works because
no tool blocks the event loop (see :mod:`swarmd.plugins.tool`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from swarmd.plugins.model import ToolSpec
from swarmd.plugins.runtime.settings import DEFAULT_TOOL_TIMEOUT_SECS
from swarmd.plugins.tool import Tool, ToolContext, ToolError, ToolTimeout, deadline_scope

__all__ = ["ToolOutcome", "Toolbox"]

log = logging.getLogger(__name__)

MAX_SCHEMA_ERRORS = 5


@dataclass
class ToolOutcome:
    """What a tool call produced, as the model will see it."""

    output: str
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0


def _format_error(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


_VALIDATORS: dict[type[Tool], Any] = {}


def _validator_for(cls: type[Tool]) -> Any:
    """The schema validator of a tool class, checked once per process (None when invalid).

    Checking a schema costs milliseconds; every sub-agent builds a toolbox.
    """
    if cls not in _VALIDATORS:
        schema = dict(cls.parameters)
        try:
            validator_cls = jsonschema.validators.validator_for(schema)
            validator_cls.check_schema(schema)
            _VALIDATORS[cls] = validator_cls(schema)
        except SchemaError as exc:
            log.error("tool %r has an invalid JSON Schema and is not offered: %s", cls.name, exc.message)
            _VALIDATORS[cls] = None
    return _VALIDATORS[cls]


class Toolbox:
    """The tool set of one sub-agent (see the module docstring)."""

    def __init__(
        self,
        tools: Iterable[type[Tool]],
        ctx: ToolContext,
        *,
        read_only: bool = False,
        timeout: float = DEFAULT_TOOL_TIMEOUT_SECS,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"the tool timeout must be positive, got {timeout!r}")
        self.ctx = ctx
        self.read_only = read_only
        self.timeout = float(timeout)
        #: Awaited before each tool call (the worktree's files being written
        #: in the background, see :mod:`swarmd.plugins.runtime.worktree.deferred`).
        self.gate: Callable[[], Awaitable[None]] | None = None
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Any] = {}
        for cls in tools:
            name = getattr(cls, "name", "")
            if not name or name in self._tools:
                continue
            if read_only and not getattr(cls, "read_only", False):
                continue
            needs = getattr(cls, "requires_services", ())
            if any(ctx.services.get(s) is None for s in needs):
                continue
            validator = _validator_for(cls)
            if validator is None:
                continue
            self._tools[name] = cls()
            self._validators[name] = validator

    @classmethod
    def from_registry(
        cls, registry: Any, ctx: ToolContext, *, read_only: bool = False, timeout: float = DEFAULT_TOOL_TIMEOUT_SECS
    ) -> Toolbox:
        """All tools of a :class:`~swarmd.plugins.registry.ToolRegistry`, by name."""
        return cls((entry.cls for entry in registry), ctx, read_only=read_only, timeout=timeout)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(t.name, t.description, dict(t.parameters)) for t in self._tools.values()]

    def parse_arguments(self, name: str, arguments: str) -> dict[str, Any]:
        """Decode and validate arguments; raises :class:`ToolError` with a clear message."""
        text = (arguments or "").strip()
        if not text:
            args: Any = {}
        else:
            try:
                args = json.loads(text)
            except ValueError as exc:
                raise ToolError(
                    f"the arguments for {name} are not valid JSON ({exc}); send a JSON object"
                ) from None
        if not isinstance(args, dict):
            raise ToolError(f"the arguments for {name} must be a JSON object, got {type(args).__name__}")
        errors = sorted(self._validators[name].iter_errors(args), key=lambda e: list(e.absolute_path))
        if errors:
            shown = "; ".join(_format_error(e) for e in errors[:MAX_SCHEMA_ERRORS])
            more = f" (and {len(errors) - MAX_SCHEMA_ERRORS} more)" if len(errors) > MAX_SCHEMA_ERRORS else ""
            raise ToolError(f"invalid arguments for {name}: {shown}{more}")
        return args

    async def execute(self, name: str, arguments: str) -> ToolOutcome:
        """Run one tool call; never raises except on cancellation."""
        started = time.monotonic()

        def done(output: str, success: bool, metadata: dict[str, Any] | None = None) -> ToolOutcome:
            ms = int((time.monotonic() - started) * 1000)
            return ToolOutcome(output, success, dict(metadata or {}), ms)

        tool = self._tools.get(name)
        if tool is None:
            available = ", ".join(self._tools) or "none"
            return done(f"Error: unknown tool {name!r}. Available tools: {available}", False)
        scope: asyncio.Timeout | None = None
        limit = self.timeout
        if self.gate is not None:
            try:
                await self.gate()
            except Exception as exc:
                return done(f"Error: the workspace is not available: {exc}", False)
        try:
            args = self.parse_arguments(name, arguments)
            limit = tool.timeout_secs(args, self.timeout)
            with deadline_scope(limit):
                scope = asyncio.timeout(limit)
                async with scope:
                    result = await tool.run(args, self.ctx)
        except (TimeoutError, ToolTimeout) as exc:
            # The toolbox's own deadline (or the tool noticing it first), not a
            # timeout inside the tool's work, such as a socket's.
            if isinstance(exc, ToolTimeout) or (scope is not None and scope.expired()):
                return done(
                    f"Error: the {name} call did not finish within {limit:g}s and was stopped. "
                    "Narrow it down (a smaller path, a simpler pattern, a shorter command) and try again.",
                    False,
                    {"timed_out": True},
                )
            return done(f"Error: {exc.strerror or exc or 'timed out'}", False)
        except ToolError as exc:
            return done(f"Error: {exc}", False)
        except OSError as exc:
            where = f": {self.ctx.relative(Path(str(exc.filename)))}" if exc.filename else ""
            return done(f"Error: {exc.strerror or exc}{where}", False)
        except Exception as exc:
            log.exception("tool %s crashed", name)
            return done(f"Tool execution failed: {type(exc).__name__}: {exc}", False)
        return done(result.output, result.success, result.metadata)
