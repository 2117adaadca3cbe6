"""Optional dependencies of plugins, installed as swarmd's extras.

A plugin whose library most users never need (the ``kubernetes`` executor's
Kubernetes client, for one) imports without it, so ``swarmd plugins`` and
every other plugin keep working, and checks for it when it is first used:
:func:`require_extra` raises :class:`MissingExtra`, whose message names the
plugin, the missing package and the extra that installs it. The executor
service answers FAILED_PRECONDITION with that message.
"""

from __future__ import annotations

import importlib

__all__ = ["MissingExtra", "require_extra"]


class MissingExtra(ImportError):
    """A plugin's optional dependency is not installed; the message says how to install it."""

    def __init__(self, plugin: str, package: str, extra: str) -> None:
        super().__init__(
            f"the {plugin} plugin needs the {package!r} package, which is not installed; "
            f"install swarmd with its {extra!r} extra: pip install 'swarmd[{extra}]'"
        )
        self.plugin = plugin
        self.package = package
        self.extra = extra


def require_extra(module: str, *, plugin: str, extra: str) -> None:
    """Import ``module`` or raise :class:`MissingExtra` naming ``plugin`` and ``extra``."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        if exc.name not in (module, top):
            raise  # the library is there but broken: its own error says more
        raise MissingExtra(plugin, top, extra) from exc
