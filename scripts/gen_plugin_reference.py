#!/usr/bin/env python3
"""Generate docs/plugin-reference.md from the docstrings of swarmd's plugin API.

The reference lists every hook of :mod:`swarmd.plugins.hookspecs`, the base
classes and value types a plugin author uses (their attributes, constructor
and methods), the errors, and the JSON Schemas of the built-in tools. It is
generated, never edited by hand: ``make plugin-docs`` writes it, and
``--check`` (run by ``make lint``) exits 1 when the file is stale.

    python scripts/gen_plugin_reference.py            # write docs/plugin-reference.md
    python scripts/gen_plugin_reference.py --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "plugin-reference.md"

#: (section title, "module:name" of each documented object), in reading order.
SECTIONS: list[tuple[str, list[str]]] = [
    ("Executors", [
        "swarmd.plugins.executor:Executor",
        "swarmd.plugins.executor:ExecutorContext",
        "swarmd.plugins.executor:unfinished_result",
        "swarmd.plugins.executors.local:LocalExecutor",
    ]),
    ("Model providers", [
        "swarmd.plugins.model:ModelProvider",
        "swarmd.plugins.model:CompletionRequest",
        "swarmd.plugins.model:CompletionResponse",
        "swarmd.plugins.model:Message",
        "swarmd.plugins.model:ToolCall",
        "swarmd.plugins.model:ToolSpec",
        "swarmd.plugins.model:Usage",
        "swarmd.plugins.model:ProviderError",
        "swarmd.plugins.model:RateLimitError",
        "swarmd.plugins.model:TransientProviderError",
        "swarmd.plugins.model:ProviderTimeoutError",
        "swarmd.plugins.model:PermanentProviderError",
        "swarmd.plugins.providers.factory:create_provider",
    ]),
    ("Tools", [
        "swarmd.plugins.tool:Tool",
        "swarmd.plugins.tool:ToolContext",
        "swarmd.plugins.tool:ToolResult",
        "swarmd.plugins.tool:ToolError",
        "swarmd.plugins.tool:PathEscapeError",
        "swarmd.plugins.tool:ToolTimeout",
        "swarmd.plugins.tool:run_blocking",
        "swarmd.plugins.tool:CallStop",
        "swarmd.plugins.registry:tool_schema_problem",
    ]),
    ("Health checks", [
        "swarmd.plugins.health:HealthCheck",
        "swarmd.plugins.health:HealthResult",
    ]),
    ("Loading and registries", [
        "swarmd.plugins.manager:load_plugins",
        "swarmd.plugins.manager:PluginLoadError",
        "swarmd.plugins.registry:Plugins",
        "swarmd.plugins.registry:LoadedPlugin",
        "swarmd.plugins.registry:Registry",
        "swarmd.plugins.registry:ToolRegistry",
        "swarmd.plugins.registry:Registered",
        "swarmd.plugins.registry:PluginConflict",
        "swarmd.plugins.registry:InvalidToolSchema",
        "swarmd.plugins.registry:UnknownPlugin",
    ]),
    ("Conformance kit (swarmd.plugins.testing)", [
        "swarmd.plugins.testing.executor:check_executor",
        "swarmd.plugins.testing.executor:check_stream",
        "swarmd.plugins.testing.provider:check_provider",
        "swarmd.plugins.testing.provider:check_provider_error",
        "swarmd.plugins.testing.tool:check_tool",
        "swarmd.plugins.testing.errors:ContractViolation",
        "swarmd.plugins.testing.scripted:ScriptedProvider",
        "swarmd.plugins.testing.scripted:script",
        "swarmd.plugins.testing:subtask_request",
        "swarmd.plugins.testing:make_repo",
    ]),
]


def _load(spec: str) -> Any:
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _doc(obj: Any) -> str:
    return inspect.getdoc(obj) or "*(undocumented)*"


def _member_doc(cls: type, name: str, member: Any) -> str:
    """A method's docstring, or the one it overrides."""
    if getattr(member, "__doc__", None):
        return inspect.cleandoc(member.__doc__)
    for base in cls.__mro__[1:]:
        inherited = vars(base).get(name)
        target = inherited.fget if isinstance(inherited, property) else inherited
        if target is not None and getattr(target, "__doc__", None):
            return inspect.cleandoc(target.__doc__)
    return "*(undocumented)*"


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        return f" = {f.default!r}"
    if f.default_factory is not dataclasses.MISSING:
        factory = getattr(f.default_factory, "__name__", "factory")
        return f" = {factory}()"
    return ""


def _attribute_comments(cls: type) -> dict[str, str]:
    """``#:`` comments above class attributes, as Sphinx reads them."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    notes: dict[str, str] = {}
    pending: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("#:"):
            pending.append(text[2:].strip())
            continue
        if pending and ":" in text and not text.startswith(("def ", "@", "#")):
            notes[text.split(":")[0].split("=")[0].strip()] = " ".join(pending)
        pending = []
    return notes


def _class(cls: type) -> list[str]:
    out = [f"### class `{cls.__module__}.{cls.__qualname__}`", ""]
    bases = [b.__qualname__ for b in cls.__bases__ if b is not object]
    if bases:
        out += [f"Bases: {', '.join(f'`{b}`' for b in bases)}", ""]
    out += [_doc(cls), ""]
    notes = _attribute_comments(cls)
    if dataclasses.is_dataclass(cls):
        out += ["Fields:", ""]
        for f in dataclasses.fields(cls):
            note = f" — {notes[f.name]}" if f.name in notes else ""
            out.append(f"- `{f.name}: {f.type}{_default(f)}`{note}")
        out.append("")
    else:
        own = {k: v for k, v in vars(cls).items() if not k.startswith("_")}
        annotations = vars(cls).get("__annotations__", {})
        attrs = [k for k in annotations if not k.startswith("_")] + [
            k for k, v in own.items() if k not in annotations and not callable(v) and not isinstance(v, property | classmethod | staticmethod)
        ]
        if attrs:
            out += ["Attributes:", ""]
            for name in attrs:
                value = own.get(name, inspect.Parameter.empty)
                shown = "" if value is inspect.Parameter.empty or isinstance(value, dict | list) else f" = {value!r}"
                kind = annotations.get(name, "")
                note = f" — {notes[name]}" if name in notes else ""
                out.append(f"- `{name}{': ' + str(kind) if kind else ''}{shown}`{note}")
            out.append("")
        if "__init__" in vars(cls):
            out += [f"Constructor: `{cls.__qualname__}{_signature(cls.__init__).replace('(self, ', '(').replace('(self)', '()')}`", ""]
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out += [f"- property `{name}`: {_member_doc(cls, name, member.fget)}"]
        elif inspect.isfunction(member):
            prefix = "async " if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member) else ""
            doc = _member_doc(cls, name, member).replace("\n", "\n  ")
            out += [f"- {prefix}method `{name}{_signature(member)}`", f"  {doc}"]
    out.append("")
    return out


def _function(fn: Any) -> list[str]:
    prefix = "async " if inspect.iscoroutinefunction(fn) else ""
    return [f"### {prefix}function `{fn.__module__}.{fn.__name__}{_signature(fn)}`", "", _doc(fn), ""]


def render() -> str:
    from swarmd.plugins import hookspecs
    from swarmd.plugins.manager import load_plugins

    out = [
        "# swarmd plugin reference",
        "",
        "<!-- Generated by scripts/gen_plugin_reference.py from the docstrings; do not edit. -->",
        "",
        "The guide is [plugins.md](plugins.md); this page is the API it relies on.",
        "",
        "## Hooks (`swarmd.plugins.hookspecs`)",
        "",
        _doc(hookspecs),
        "",
    ]
    for name in hookspecs.__all__:
        if name.startswith("swarmd_"):
            out += [f"### hook `{name}{_signature(getattr(hookspecs, name))}`", "", _doc(getattr(hookspecs, name)), ""]
    for title, specs in SECTIONS:
        out += [f"## {title}", ""]
        for spec in specs:
            obj = _load(spec)
            out += _class(obj) if inspect.isclass(obj) else _function(obj)
    plugins = load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
    out += [
        "## Built-in tools",
        "",
        "What a scripted provider may call: name, whether read-only subtasks get it, the services it requires, and its `parameters` schema.",
        "",
    ]
    for entry in plugins.tools:
        cls = entry.cls
        needs = ", ".join(getattr(cls, "requires_services", ())) or "none"
        out += [
            f"### tool `{entry.name}` (read-only: {'yes' if cls.read_only else 'no'}; requires services: {needs})",
            "",
            cls.description,
            "",
            "```json",
            json.dumps(cls.parameters, indent=2, sort_keys=True),
            "```",
            "",
        ]
    return "\n".join(line.rstrip() for line in out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/plugin-reference.md is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `make plugin-docs`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
