"""``check_tool``: the tool contract, checked through the runtime's toolbox.

Rules: ``class`` (``name``, ``description``, built with no arguments),
``schema`` (``parameters`` is valid JSON Schema of an object),
``offered`` (the toolbox offers it with the context's services, i.e. its
``requires_services`` are met), ``runs`` (schema-valid arguments succeed),
``arguments`` (arguments that break the schema, or are not a JSON object,
come back as a failed call the model sees, never a crash) and ``paths``
(a path argument outside the worktree is refused, with a
:class:`~swarmd.plugins.ToolError` rather than a crash, and nothing is
written outside it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from swarmd.plugins.registry import tool_schema_problem
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.testing.errors import ContractViolation
from swarmd.plugins.tool import Tool, ToolContext

__all__ = ["PATH_ARGUMENT_NAMES", "check_tool", "invalid_arguments"]

#: Argument names the ``paths`` rule treats as paths when none are given.
PATH_ARGUMENT_NAMES = ("path", "file_path", "filename", "directory", "dir", "cwd")


def invalid_arguments(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """Arguments that break ``schema``: a required one missing, else a
    property of the wrong type; None when the schema accepts anything."""
    required = list(schema.get("required", ()))
    if required:
        return {}
    for name, prop in dict(schema.get("properties", {})).items():
        kind = prop.get("type") if isinstance(prop, Mapping) else None
        if kind == "string":
            return {name: 12345}
        if kind in ("integer", "number", "boolean", "array", "object"):
            return {name: "not the right type"}
    return None


async def check_tool(
    cls: type[Tool],
    ctx: ToolContext,
    *,
    valid: Mapping[str, Any],
    path_arguments: Iterable[str] | None = None,
) -> None:
    """Check ``cls`` against every rule of the module docstring.

    :param ctx: the context calls run in (its ``workdir`` a throwaway
        worktree; ``services`` what the tool requires).
    :param valid: arguments that make the call succeed in ``ctx``.
    :param path_arguments: names of path arguments (default: those of
        :data:`PATH_ARGUMENT_NAMES` the schema has).
    :raises ContractViolation: naming the rule broken.
    """
    for attribute in ("name", "description"):
        if not isinstance(getattr(cls, attribute, None), str) or not getattr(cls, attribute):
            raise ContractViolation(cls, "class", f"a tool class needs a non-empty `{attribute}`")
    problem = tool_schema_problem(getattr(cls, "parameters", None))
    if problem:
        raise ContractViolation(cls, "schema", problem)
    try:
        cls()
    except Exception as exc:
        raise ContractViolation(cls, "class", f"a tool is built with no arguments; cls() raised {type(exc).__name__}: {exc}") from exc
    box = Toolbox([cls], ctx, read_only=bool(getattr(cls, "read_only", False)))
    if cls.name not in box:
        needs = getattr(cls, "requires_services", ())
        raise ContractViolation(cls, "offered", f"the toolbox does not offer it (requires_services {tuple(needs)!r}, context services {sorted(ctx.services)!r})")

    outcome = await box.execute(cls.name, json.dumps(dict(valid)))
    if not outcome.success:
        raise ContractViolation(cls, "runs", f"valid arguments failed: {outcome.output[:300]}")

    bad = invalid_arguments(cls.parameters)
    for arguments in ([] if bad is None else [json.dumps(bad)]) + ["[1, 2]", "{not json"]:
        outcome = await box.execute(cls.name, arguments)
        if outcome.success or outcome.output.startswith("Tool execution failed"):
            raise ContractViolation(cls, "arguments", f"arguments {arguments} gave {outcome.output[:200]!r}; they must be refused as invalid")

    properties = dict(cls.parameters.get("properties", {}))
    names = list(path_arguments) if path_arguments is not None else [n for n in PATH_ARGUMENT_NAMES if n in properties]
    outside = ctx.workdir.resolve().parent / f"swarmd-escape-{cls.name}"
    for name in names:
        for escape in (f"../{outside.name}", str(outside)):
            outcome = await box.execute(cls.name, json.dumps({**valid, name: escape}))
            if outcome.success or outside.exists():
                raise ContractViolation(cls, "paths", f"argument {name}={escape!r} outside the worktree was not refused")
            if outcome.output.startswith("Tool execution failed"):
                raise ContractViolation(cls, "paths", f"argument {name}={escape!r} crashed the tool: {outcome.output[:200]}")
