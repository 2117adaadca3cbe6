"""Hook specifications of swarmd (all hooks carry the ``swarmd_`` prefix).

pluggy is synchronous, and swarmd's executors, providers and tools are
asynchronous; so, as in tox 4, nothing async crosses pluggy: each hook
receives a registry and the plugin adds *classes* to it. All async behaviour
lives on those classes.

A plugin is a module (or object) with functions marked by
:data:`swarmd.plugins.hookimpl`, registered through the ``swarmd``
entry-point group::

    [project.entry-points.swarmd]
    my-executor = "my_package.swarmd_plugin"

None of the hooks is ``firstresult``: every implementation is called, in
pluggy's order (last registered first, ``tryfirst``/``trylast`` honoured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from swarmd.plugins.registry import (
        ExecutorRegistry,
        HealthCheckRegistry,
        ProviderRegistry,
        ToolRegistry,
    )

__all__ = [
    "hookspec",
    "swarmd_register_executors",
    "swarmd_register_providers",
    "swarmd_register_tools",
    "swarmd_register_health_checks",
]

#: Marker for hook specifications (used only in this module).
hookspec = pluggy.HookspecMarker("swarmd")


@hookspec
def swarmd_register_executors(registry: ExecutorRegistry) -> None:
    """Register executor plugin classes.

    :param registry: call ``registry.add(ExecutorClass)`` for each
        :class:`swarmd.plugins.Executor` subclass the plugin provides. The
        class's ``name`` attribute is the name users select with
        ``--executor NAME``; two plugins adding the same name is an error.
    :return: nothing; the return value is ignored.
    """


@hookspec
def swarmd_register_providers(registry: ProviderRegistry) -> None:
    """Register model provider classes.

    :param registry: call ``registry.add(ProviderClass)`` for each
        :class:`swarmd.plugins.ModelProvider` subclass. The class's ``name``
        is the provider part of a ``provider/model`` string
        (``openai/gpt-4o`` selects the provider named ``openai``).
    :return: nothing; the return value is ignored.
    """


@hookspec
def swarmd_register_tools(registry: ToolRegistry) -> None:
    """Register tool classes offered to sub-agents.

    :param registry: call ``registry.add(ToolClass)`` for each
        :class:`swarmd.plugins.Tool` subclass. Tools whose ``read_only`` is
        true are also offered to read-only subtasks. A tool's ``name`` must be
        unique across all plugins. Its ``parameters`` schema is checked here:
        one that is not a valid JSON Schema of an object fails loading with a
        :class:`~swarmd.plugins.manager.PluginLoadError` naming the tool and
        the plugin.
    :return: nothing; the return value is ignored.
    """


@hookspec
def swarmd_register_health_checks(registry: HealthCheckRegistry) -> None:
    """Register branch health checks (a worktree builds, its tests pass...).

    :param registry: call ``registry.add(HealthCheckClass)`` for each
        :class:`swarmd.plugins.HealthCheck` subclass (e.g. one that runs
        ``pytest -x -q`` in a worktree). The collapse controller runs the
        checks a swarm's configuration names on its running branches (in the
        executor service holding the worktree); ``swarmd plugins`` lists them.
    :return: nothing; the return value is ignored.
    """
