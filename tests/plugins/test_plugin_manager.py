"""Plugin discovery through entry points, blocking, and plugins registered from code."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from swarmd.plugins import Executor, hookimpl
from swarmd.plugins.manager import PluginLoadError, load_plugins
from swarmd.plugins.registry import UnknownPlugin

PLUGIN_SOURCE = textwrap.dedent(
    '''
    from swarmd.plugins import Executor, hookimpl

    class ThirdPartyExecutor(Executor):
        name = "thirdparty"
        description = "an executor from another distribution"

        async def submit(self, request):
            if False:
                yield None

    @hookimpl
    def swarmd_register_executors(registry):
        registry.add(ThirdPartyExecutor)
    '''
)


def install_fake_distribution(site: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    """A real installed distribution on sys.path: a module plus dist-info with an entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    # Installers name the folder after the normalized name (dashes become underscores).
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[swarmd]\n{ep_name} = {module}\n")


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    module = f"swarmd_thirdparty_{tmp_path.name.replace('-', '_')}"
    install_fake_distribution(tmp_path / "site", "swarmd-thirdparty", module, PLUGIN_SOURCE, "thirdparty")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    yield module
    sys.modules.pop(module, None)


def test_builtins_load_through_entry_points() -> None:
    plugins = load_plugins(env={})
    assert "remote" in plugins.executors
    entry = plugins.executors.entry("remote")
    assert entry.distribution.startswith("swarmd ")
    assert entry.plugin == "remote"


def test_third_party_entry_point_is_discovered(third_party: str) -> None:
    plugins = load_plugins(env={})
    assert "thirdparty" in plugins.executors
    entry = plugins.executors.entry("thirdparty")
    assert entry.distribution == "swarmd-thirdparty 1.2.3"
    assert any(p.name == "thirdparty" and p.distribution == "swarmd-thirdparty 1.2.3" for p in plugins.loaded)


def test_disabling_autoload_keeps_builtins_only(third_party: str) -> None:
    plugins = load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "thirdparty" not in plugins.executors
    assert "remote" in plugins.executors


def test_named_modules_load_when_autoload_is_disabled(third_party: str) -> None:
    plugins = load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_PLUGINS": third_party})
    assert "thirdparty" in plugins.executors


def test_blocking_a_plugin(third_party: str) -> None:
    plugins = load_plugins(env={"SWARMD_BLOCK_PLUGINS": "thirdparty, remote"})
    assert "thirdparty" not in plugins.executors
    assert "remote" not in plugins.executors
    assert plugins.blocked == ["thirdparty", "remote"]


def test_plugin_registered_from_a_test() -> None:
    class InlineExecutor(Executor):
        name = "inline"

        async def submit(self, request):  # type: ignore[override]
            if False:
                yield None

    class Plugin:
        @hookimpl
        def swarmd_register_executors(self, registry):  # type: ignore[no-untyped-def]
            registry.add(InlineExecutor)

    plugins = load_plugins([Plugin()], env={})
    assert plugins.executors.get("inline") is InlineExecutor
    with pytest.raises(UnknownPlugin, match="unknown executor 'nope'.*inline"):
        plugins.executors.get("nope")


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def swarmd_register_executor(self, registry):  # type: ignore[no-untyped-def]
            """Missing the trailing s."""

    with pytest.raises(PluginLoadError, match="plugin error: .*does not define.*swarmd_register_executor") as info:
        load_plugins([Typo()], env={})
    assert isinstance(info.value.__cause__, pluggy.PluginValidationError)


def test_duplicate_names_conflict() -> None:
    from swarmd.plugins.executors.remote import RemoteExecutor

    class Clash(Executor):
        name = "remote"

        async def submit(self, request):  # type: ignore[override]
            if False:
                yield None

    class Plugin:
        @hookimpl
        def swarmd_register_executors(self, registry):  # type: ignore[no-untyped-def]
            registry.add(Clash)

    with pytest.raises(PluginLoadError, match="registered twice"):
        load_plugins([Plugin()], env={})
    assert RemoteExecutor.name == "remote"


def test_registry_rejects_wrong_types() -> None:
    class NotAnExecutor:
        name = "x"

    class Plugin:
        @hookimpl
        def swarmd_register_executors(self, registry):  # type: ignore[no-untyped-def]
            registry.add(NotAnExecutor)

    with pytest.raises(PluginLoadError, match="not a subclass of Executor"):
        load_plugins([Plugin()], env={})


def test_broken_entry_point_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_distribution(tmp_path / "site", "swarmd-broken", "swarmd_broken_mod", "raise ImportError('boom')\n", "broken")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    with pytest.raises(PluginLoadError, match="plugin error: cannot import plugin 'broken' .*distribution swarmd-broken 1.2.3.*ImportError: boom"):
        load_plugins(env={})
    sys.modules.pop("swarmd_broken_mod", None)


def test_every_hook_is_documented() -> None:
    from swarmd.plugins import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("swarmd_")]
    assert hooks, "no hooks found"
    for name in hooks:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert ":param registry:" in doc and ":return:" in doc, f"hook {name} is not fully documented"
