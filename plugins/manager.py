"""Plugin discovery and loading.

Plugins are found through the ``swarmd`` entry-point group; swarmd's own
built-ins are registered through the same group. Switches:

``SWARMD_DISABLE_PLUGIN_AUTOLOAD=1``
    load only swarmd's built-in entry points, plus the modules named in
    ``SWARMD_PLUGINS`` (comma-separated import paths).
``SWARMD_BLOCK_PLUGINS=name,name``
    never load these plugins, built-ins included. A name matches an entry
    point's name, a distribution's name (all its entry points) or the name
    of an executor, provider, tool or health check registered by a loaded
    plugin (not by the ``extra`` plugins handed over in code);
    :attr:`Plugins.blocked_found` says what each matched.

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
from swarmd.plugins.registry import (
    ExecutorRegistry,
    HealthCheckRegistry,
    LoadedPlugin,
    Plugins,
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
    """A plugin could not be imported or registered, or one of its hooks raised.

    The message starts with ``plugin error:`` and names the plugin (its
    entry-point or module name), its module and its distribution, so the
    user knows whom to blame; the original exception is the ``__cause__``.
    """

    def __init__(self, message: str, *, plugin: str = "", distribution: str = "") -> None:
        super().__init__(message)
        #: The plugin's name (entry-point name, module path, or pluggy's name).
        self.plugin = plugin
        #: "name version" of the distribution, "" for plugins registered from code.
        self.distribution = distribution


def _origin(plugin: object) -> str:
    """A plugin's module name, or the qualified name of its class for an instance."""
    name = getattr(plugin, "__name__", None)
    if isinstance(name, str):
        return name
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def _culprit(plugin: str, module: str, distribution: str) -> str:
    if plugin.isdigit() and module:  # pluggy names an unnamed instance by its id()
        plugin = module
    where = f"module {module}" if module and module != plugin else ""
    dist = f"distribution {distribution}" if distribution else "registered from code"
    return f"plugin {plugin!r} ({', '.join(p for p in (where, dist) if p)})"


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
    found: list[str] = []
    from_code: set[str] = set()  # plugins handed over in `extra`: never blocked by registered name
    seen_names: set[str] = set()
    wanted = {_normal(name): name for name in blocked}
    for ep in _entry_points():
        if ep.name in seen_names:
            continue
        dist = getattr(ep, "dist", None)
        if pm.is_blocked(ep.name) or (dist is not None and _normal(dist.metadata["Name"]) in wanted):
            why = ep.name if pm.is_blocked(ep.name) else wanted[_normal(dist.metadata["Name"])]  # type: ignore[union-attr]
            found.append(f"{why}: entry point {ep.name!r} of {_dist_label(ep) or 'no distribution'}")
            continue
        is_builtin = dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION
        if not (autoload or is_builtin):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(
                f"plugin error: cannot import {_culprit(ep.name, ep.value, _dist_label(ep))}: "
                f"{type(exc).__name__}: {exc}",
                plugin=ep.name,
                distribution=_dist_label(ep),
            ) from exc
        entry = LoadedPlugin(ep.name, getattr(plugin, "__name__", repr(plugin)), _dist_label(ep))
        _register(pm, plugin, entry)
        seen_names.add(ep.name)
        loaded.append(entry)

    for module_name in _split(env.get(ENV_PLUGINS)):
        if pm.is_blocked(module_name) or pm.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PluginLoadError(
                f"plugin error: cannot import plugin module {module_name!r} named in {ENV_PLUGINS}: "
                f"{type(exc).__name__}: {exc}",
                plugin=module_name,
            ) from exc
        if pm.is_registered(module):
            continue  # an entry point already loaded it
        entry = LoadedPlugin(module_name, module_name, "")
        _register(pm, module, entry)
        loaded.append(entry)

    for plugin in extra:
        if pm.is_registered(plugin):
            continue
        origin = _origin(plugin)
        registered = _register(pm, plugin, LoadedPlugin("", origin, ""))
        if registered is not None:
            loaded.append(LoadedPlugin(registered, origin, ""))
            from_code.add(registered)

    dist_of = {p.name: p for p in loaded}
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or ""
        entry = dist_of.get(name, LoadedPlugin(name, getattr(exc.plugin, "__name__", ""), ""))
        raise PluginLoadError(
            f"plugin error: {_culprit(entry.name, entry.module, entry.distribution)} "
            f"implements a hook swarmd does not define: {exc}",
            plugin=entry.name,
            distribution=entry.distribution,
        ) from exc

    dist_by_plugin = {p.name: p.distribution for p in loaded}
    plugins = Plugins(
        manager=pm,
        executors=ExecutorRegistry(_base("Executor")),
        providers=ProviderRegistry(_base("ModelProvider")),
        tools=ToolRegistry(_base("Tool")),
        health_checks=HealthCheckRegistry(_base("HealthCheck")),
        loaded=loaded,
        blocked=blocked,
        blocked_found=found,
    )
    _fill(pm, "swarmd_register_executors", plugins.executors, dist_by_plugin)
    _fill(pm, "swarmd_register_providers", plugins.providers, dist_by_plugin)
    _fill(pm, "swarmd_register_tools", plugins.tools, dist_by_plugin)
    _fill(pm, "swarmd_register_health_checks", plugins.health_checks, dist_by_plugin)
    for registry in (plugins.executors, plugins.providers, plugins.tools, plugins.health_checks):
        for name in blocked:
            if name not in registry or registry.entry(name).plugin in from_code:
                continue
            dropped = registry.discard(name)
            if dropped is not None:
                where = f" of {dropped.distribution}" if dropped.distribution else ""
                found.append(f"{name}: {registry.kind} registered by plugin {dropped.plugin!r}{where}")
    return plugins


def _normal(name: str) -> str:
    """A distribution name as packaging compares them (case, ``-``/``_``/``.`` alike)."""
    return name.lower().replace("_", "-").replace(".", "-")


def _register(pm: pluggy.PluginManager, plugin: object, entry: LoadedPlugin) -> str | None:
    """``pm.register`` whose validation errors (a hook with a misnamed
    argument, ...) name the plugin, its module and distribution."""
    try:
        return pm.register(plugin, name=entry.name or None)
    except (pluggy.PluginValidationError, ValueError) as exc:
        name = entry.name or entry.module
        raise PluginLoadError(
            f"plugin error: cannot register {_culprit(name, entry.module, entry.distribution)}: {exc}",
            plugin=name,
            distribution=entry.distribution,
        ) from exc


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
            culprit = _culprit(impl.plugin_name, _origin(impl.plugin), registry._current_distribution)
            raise PluginLoadError(
                f"plugin error: {culprit} failed in {hook_name}: {type(exc).__name__}: {exc}",
                plugin=impl.plugin_name,
                distribution=registry._current_distribution,
            ) from exc
        finally:
            registry._current_plugin = registry._current_distribution = ""
