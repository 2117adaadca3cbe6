"""Registries that plugins fill with classes (see :mod:`swarmd.plugins.hookspecs`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "ExecutorRegistry",
    "HealthCheckRegistry",
    "PluginConflict",
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
        try:
            return self._items[name].cls
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownPlugin(f"unknown {self.kind} {name!r} (available: {known})") from None

    def entry(self, name: str) -> Registered[T]:
        self.get(name)
        return self._items[name]

    def names(self) -> list[str]:
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


class ToolRegistry(Registry[Any]):
    kind = "tool"


class HealthCheckRegistry(Registry[Any]):
    kind = "health check"
