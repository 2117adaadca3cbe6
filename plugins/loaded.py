"""What plugin loading produced: the registries and the list of loaded plugins.

:mod:`.manager` discovers and loads plugins and returns a :class:`Plugins`;
this module holds only the result's types, so the plugin base classes (an
executor's context carries the loaded plugins) can name them without
importing the loader, which imports the base classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pluggy

from swarmd.plugins.registry import (
    ExecutorRegistry,
    HealthCheckRegistry,
    ProviderRegistry,
    ToolRegistry,
)

__all__ = ["LoadedPlugin", "Plugins"]


@dataclass(frozen=True)
class LoadedPlugin:
    """One plugin the manager registered."""

    name: str
    module: str
    distribution: str  # "name version", or "" for plugins registered from code


@dataclass
class Plugins:
    """The plugin manager plus the registries its hooks filled."""

    manager: pluggy.PluginManager
    executors: ExecutorRegistry
    providers: ProviderRegistry
    tools: ToolRegistry
    health_checks: HealthCheckRegistry
    loaded: list[LoadedPlugin] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
