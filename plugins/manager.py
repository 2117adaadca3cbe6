"""Plugin discovery and loading.

Plugins are found through the ``swarmd`` entry-point group; swarmd's own
built-ins are registered through the same group. Switches:

``SWARMD_DISABLE_PLUGIN_AUTOLOAD=1``
    load only swarmd's built-in entry points, plus the modules named in
    ``SWARMD_PLUGINS`` (comma-separated import paths).
``SWARMD_BLOCK_PLUGINS=name,name``
    never load these plugins (entry-point names), built-ins included.

After loading, ``check_pending()`` makes a misspelled hook fail loudly.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from swarmd.plugins import hookspecs
from swarmd.plugins.loaded import LoadedPlugin, Plugins
from swarmd.plugins.registry import (
    ExecutorRegistry,
    HealthCheckRegistry,
    ProviderRegistry,
    Registry,
    ToolRegistry,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_BLOCK",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_PLUGINS",
    "LoadedPlugin",
    "PluginLoadError",
    "Plugins",
    "load_plugins",
]

ENTRY_POINT_GROUP = "swarmd"
ENV_DISABLE_AUTOLOAD = "SWARMD_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "SWARMD_BLOCK_PLUGINS"
ENV_PLUGINS = "SWARMD_PLUGINS"
BUILTIN_DISTRIBUTION = "swarmd"


class PluginLoadError(RuntimeError):
    """A plugin could not be imported or registered."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _entry_points() -> list[md.EntryPoint]:
    return list(md.entry_points(group=ENTRY_POINT_GROUP))


def _dist_label(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ""
    return f"{dist.metadata['Name']} {dist.version}"


def load_plugins(
    extra: Iterable[object] = (),
    *,
    autoload: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Plugins:
    """Create a fresh plugin manager, load plugins and fill the registries.

    :param extra: plugin objects (modules or instances) to register as well;
        tests use this to add their own plugins.
    :param autoload: load third-party entry points; default is the opposite
        of ``SWARMD_DISABLE_PLUGIN_AUTOLOAD``.
    """
    env = os.environ if env is None else env
    if autoload is None:
        autoload = not _truthy(env.get(ENV_DISABLE_AUTOLOAD))
    blocked = _split(env.get(ENV_BLOCK))

    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)

    loaded: list[LoadedPlugin] = []
    seen_names: set[str] = set()
    for ep in _entry_points():
        if ep.name in seen_names or pm.is_blocked(ep.name):
            continue
        dist = getattr(ep, "dist", None)
        is_builtin = dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION
        if not (autoload or is_builtin):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(f"cannot load swarmd plugin {ep.name!r} ({ep.value}): {exc}") from exc
        pm.register(plugin, name=ep.name)
        seen_names.add(ep.name)
        loaded.append(LoadedPlugin(ep.name, getattr(plugin, "__name__", repr(plugin)), _dist_label(ep)))

    for module_name in _split(env.get(ENV_PLUGINS)):
        if pm.is_blocked(module_name) or pm.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PluginLoadError(f"cannot import plugin module {module_name!r} from {ENV_PLUGINS}: {exc}") from exc
        pm.register(module, name=module_name)
        loaded.append(LoadedPlugin(module_name, module_name, ""))

    for plugin in extra:
        registered = pm.register(plugin)
        if registered is not None:
            loaded.append(LoadedPlugin(registered, getattr(plugin, "__name__", type(plugin).__name__), ""))

    pm.check_pending()

    dist_by_plugin = {p.name: p.distribution for p in loaded}
    plugins = Plugins(
        manager=pm,
        executors=ExecutorRegistry(_base("Executor")),
        providers=ProviderRegistry(_base("ModelProvider")),
        tools=ToolRegistry(_base("Tool")),
        health_checks=HealthCheckRegistry(_base("HealthCheck")),
        loaded=loaded,
        blocked=blocked,
    )
    _fill(pm, "swarmd_register_executors", plugins.executors, dist_by_plugin)
    _fill(pm, "swarmd_register_providers", plugins.providers, dist_by_plugin)
    _fill(pm, "swarmd_register_tools", plugins.tools, dist_by_plugin)
    _fill(pm, "swarmd_register_health_checks", plugins.health_checks, dist_by_plugin)
    return plugins


def _base(name: str) -> type[Any]:
    import swarmd.plugins as api

    return getattr(api, name)  # type: ignore[no-any-return]


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: Registry[Any], dists: dict[str, str]) -> None:
    """Call each implementation in pluggy's order, noting who registered what."""
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        registry._current_plugin = impl.plugin_name
        registry._current_distribution = dists.get(impl.plugin_name, "")
        try:
            impl.function(registry=registry)
        except Exception as exc:
            raise PluginLoadError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}") from exc
        finally:
            registry._current_plugin = registry._current_distribution = ""
