"""Registries that plugins fill with classes (see :mod:`swarmd.plugins.hookspecs`),
and :class:`Plugins`, the loaded plugin manager with its registries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

__all__ = [
    "ExecutorRegistry",
    "HealthCheckRegistry",
    "InvalidToolSchema",
    "LoadedPlugin",
    "PluginConflict",
    "Plugins",
    "ProviderRegistry",
    "Registered",
    "Registry",
    "ToolRegistry",
    "UnknownPlugin",
]

T = TypeVar("T")


class PluginConflict(ValueError):
    """Two plugins registered the same name."""


class UnknownPlugin(LookupError):
    """No plugin registered that name."""


class InvalidToolSchema(ValueError):
    """A tool's ``parameters`` is not a valid JSON Schema of an object."""


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A registered class and where it came from."""

    name: str
    cls: type[T]
    plugin: str  # pluggy plugin name that registered it
    distribution: str  # "name version" of the distribution, or "" when not installed


class Registry(Generic[T]):
    """Name -> class mapping filled by one hook."""

    kind = "plugin"

    def __init__(self, base: type[T]) -> None:
        self._base = base
        self._items: dict[str, Registered[T]] = {}
        # Set by the plugin manager while it calls one plugin's hook.
        self._current_plugin = ""
        self._current_distribution = ""

    def add(self, cls: type[T], *, name: str | None = None) -> None:
        """Register ``cls`` under ``name`` (default: ``cls.name``)."""
        if not isinstance(cls, type) or not issubclass(cls, self._base):
            raise TypeError(f"{cls!r} is not a subclass of {self._base.__name__}")
        key: Any = name or getattr(cls, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"{cls.__qualname__} has no name; set a `name` class attribute")
        if key in self._items and self._items[key].cls is not cls:
            other = self._items[key]
            raise PluginConflict(
                f"{self.kind} {key!r} registered twice: by {other.plugin or other.cls.__module__} "
                f"and by {self._current_plugin or cls.__module__}"
            )
        self._items[key] = Registered(key, cls, self._current_plugin, self._current_distribution)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; :class:`UnknownPlugin` lists the known names."""
        try:
            return self._items[name].cls
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownPlugin(f"unknown {self.kind} {name!r} (available: {known})") from None

    def entry(self, name: str) -> Registered[T]:
        """The class registered as ``name`` with the plugin and distribution that registered it."""
        self.get(name)
        return self._items[name]

    def discard(self, name: str) -> Registered[T] | None:
        """Remove the class registered as ``name`` (a blocked plugin name); the entry, or None."""
        return self._items.pop(name, None)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Registered[T]]:
        return iter(sorted(self._items.values(), key=lambda r: r.name))

    def __len__(self) -> int:
        return len(self._items)



class ExecutorRegistry(Registry[Any]):
    kind = "executor"


class ProviderRegistry(Registry[Any]):
    kind = "model provider"


#: The package of swarmd's built-in tools.
BUILTIN_TOOLS_PACKAGE = "swarmd.plugins.tools"


class ToolRegistry(Registry[Any]):
    kind = "tool"

    def add(self, cls: type[Any], *, name: str | None = None) -> None:
        """Register a tool class once its ``parameters`` schema is checked.

        :raises InvalidToolSchema: ``parameters`` is missing, not an object
            schema, or not valid JSON Schema; the message names the tool and
            the plugin that registered it.
        """
        if isinstance(cls, type) and issubclass(cls, self._base):
            # swarmd's own tools' schemas are constants its tests check against the metaschema
            # (and the executor's toolbox checks every schema it uses), so a process that only
            # lists tools, the orchestrator, does not load jsonschema (10 MB) for them.
            shipped = cls.__module__.startswith(BUILTIN_TOOLS_PACKAGE + ".")
            problem = tool_schema_problem(getattr(cls, "parameters", None), metaschema=not shipped)
            if problem:
                tool = name or getattr(cls, "name", "") or cls.__qualname__
                by = self._current_plugin or cls.__module__
                raise InvalidToolSchema(f"tool {tool!r} of plugin {by!r} has an invalid parameters schema: {problem}")
        super().add(cls, name=name)


def tool_schema_problem(schema: object, *, metaschema: bool = True) -> str:
    """Why ``schema`` cannot be a tool's ``parameters``; ``""`` when it can.

    It must be a mapping, valid JSON Schema (checked against the metaschema
    it names, by default the newest ``jsonschema`` knows; skipped when
    ``metaschema`` is False) and describe an object (``"type": "object"``):
    the model sends a tool's arguments as one JSON object.
    """
    if not isinstance(schema, Mapping):
        return f"it must be a mapping (a JSON Schema), got {type(schema).__name__}"
    if schema.get("type") != "object":
        return f'it must describe an object ("type": "object"), got type {schema.get("type")!r}'
    if not metaschema:
        return ""
    import jsonschema
    from jsonschema.exceptions import SchemaError

    try:
        jsonschema.validators.validator_for(dict(schema)).check_schema(dict(schema))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{where}: {exc.message}" if where else exc.message
    return ""


class HealthCheckRegistry(Registry[Any]):
    kind = "health check"


@dataclass(frozen=True)
class LoadedPlugin:
    """One plugin the manager registered."""

    name: str
    module: str
    distribution: str  # "name version", or "" for plugins registered from code


@dataclass
class Plugins:
    """The plugin manager plus the registries its hooks filled
    (made by :func:`swarmd.plugins.manager.load_plugins`)."""

    manager: pluggy.PluginManager
    executors: ExecutorRegistry
    providers: ProviderRegistry
    tools: ToolRegistry
    health_checks: HealthCheckRegistry
    loaded: list[LoadedPlugin] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    #: What ``blocked`` matched, one line each ("echo: entry point of swarmd-echo 1.0").
    blocked_found: list[str] = field(default_factory=list)
