"""Misbehaving plugins are named: a failing import, hook or registration,
an invalid tool schema, a module named twice, and the hook reference that
``help()`` shows."""

from __future__ import annotations

import importlib
import pydoc
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_plugin_manager import install_fake_distribution

from swarmd.plugins import Tool, ToolResult, hookimpl
from swarmd.plugins.manager import PluginLoadError, load_plugins

RAISING_HOOK = textwrap.dedent(
    """
    from swarmd.plugins import hookimpl

    @hookimpl
    def swarmd_register_providers(registry):
        raise RuntimeError("no provider today")
    """
)

MISNAMED_ARGUMENT = textwrap.dedent(
    """
    from swarmd.plugins import hookimpl

    @hookimpl
    def swarmd_register_tools(registy):
        pass
    """
)


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dist: str, source: str) -> str:
    module = f"{dist.replace('-', '_')}_{tmp_path.name.replace('-', '_')}"
    install_fake_distribution(tmp_path / "site", dist, module, source, dist.removeprefix("swarmd-"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    return module


@pytest.fixture
def cleanup_modules() -> Any:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("swarmd_"):
            sys.modules.pop(name, None)


def test_a_raising_hook_names_the_plugin_and_its_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup_modules: None
) -> None:
    _install(tmp_path, monkeypatch, "swarmd-raiser", RAISING_HOOK)
    with pytest.raises(PluginLoadError) as info:
        load_plugins(env={})
    message = str(info.value)
    assert message.startswith("plugin error: plugin 'raiser'")
    assert "distribution swarmd-raiser 1.2.3" in message
    assert "swarmd_register_providers" in message and "RuntimeError: no provider today" in message
    assert info.value.plugin == "raiser" and info.value.distribution == "swarmd-raiser 1.2.3"


def test_a_misnamed_hook_argument_names_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup_modules: None
) -> None:
    _install(tmp_path, monkeypatch, "swarmd-typo", MISNAMED_ARGUMENT)
    with pytest.raises(PluginLoadError, match=r"(?s)plugin error: cannot register plugin 'typo' .*swarmd-typo 1\.2\.3.*registy"):
        load_plugins(env={})


def test_a_module_in_swarmd_plugins_already_autoloaded_is_a_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup_modules: None
) -> None:
    source = "from swarmd.plugins import hookimpl\n\n@hookimpl\ndef swarmd_register_tools(registry):\n    pass\n"
    module = _install(tmp_path, monkeypatch, "swarmd-twice", source)
    plugins = load_plugins(env={"SWARMD_PLUGINS": module})
    assert [p.name for p in plugins.loaded].count("twice") == 1
    assert module not in [p.name for p in plugins.loaded]


def test_a_module_in_swarmd_plugins_that_fails_to_import_is_named(cleanup_modules: None) -> None:
    with pytest.raises(PluginLoadError, match="plugin error: cannot import plugin module 'swarmd_nosuch_mod' named in SWARMD_PLUGINS"):
        load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_PLUGINS": "swarmd_nosuch_mod"})


def _tool_plugin(parameters: Any) -> object:
    class BadSchemaTool(Tool):
        name = "bad_schema"
        description = "a tool whose schema is wrong"

        async def run(self, args: dict[str, Any], ctx: Any) -> ToolResult:
            return ToolResult("never")

    BadSchemaTool.parameters = parameters

    class BadSchemaPlugin:
        @hookimpl
        def swarmd_register_tools(self, registry: Any) -> None:
            registry.add(BadSchemaTool)

    return BadSchemaPlugin()


@pytest.mark.parametrize(
    ("parameters", "why"),
    [
        ({"type": "object", "properties": {"path": {"type": "strng"}}}, "properties/path/type"),
        ({"type": "array", "items": {}}, 'must describe an object'),
        ("not a schema", "must be a mapping"),
    ],
)
def test_a_tool_with_an_invalid_schema_is_refused_naming_it(parameters: Any, why: str) -> None:
    with pytest.raises(PluginLoadError) as info:
        load_plugins([_tool_plugin(parameters)], env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
    message = str(info.value)
    assert "tool 'bad_schema'" in message and "BadSchemaPlugin" in message
    assert "invalid parameters schema" in message and why in message


def test_the_built_in_tools_pass_the_schema_check() -> None:
    """Loading skips the metaschema for swarmd's own tools (so the orchestrator does
    not load jsonschema): this is where their schemas are checked against it."""
    from swarmd.plugins.registry import tool_schema_problem
    from swarmd.plugins.tools import BUILTIN_TOOLS

    plugins = load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert {"read", "write", "edit", "bash", "grep", "glob", "list", "swarm_share"} <= set(plugins.tools.names())
    for tool in BUILTIN_TOOLS:
        assert tool_schema_problem(tool.parameters) == "", tool.name
    assert tool_schema_problem({"type": "object", "properties": {"p": {"type": "strng"}}}, metaschema=False) == ""


def test_help_shows_every_hook() -> None:
    from swarmd.plugins import hookspecs

    text = pydoc.render_doc(hookspecs, renderer=pydoc.plaintext)
    for hook in ("swarmd_register_executors", "swarmd_register_providers", "swarmd_register_tools", "swarmd_register_health_checks"):
        assert hook in hookspecs.__all__
        assert f"{hook}(registry" in text


def test_the_executor_context_resolves_its_types_at_runtime() -> None:
    import typing

    from swarmd.plugins import ExecutorContext, Plugins

    assert typing.get_type_hints(ExecutorContext)["plugins"] is Plugins


def test_plugins_installed_in_the_environment_do_not_reach_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import tempfile

    outside = Path(tempfile.mkdtemp(prefix="swarmd-env-site-"))  # not under pytest's temporary directory
    try:
        install_fake_distribution(outside, "swarmd-installed-raiser", "swarmd_installed_raiser", RAISING_HOOK, "installed-raiser")
        monkeypatch.syspath_prepend(str(outside))
        importlib.invalidate_caches()
        plugins = load_plugins(env={})
        assert "installed-raiser" not in [p.name for p in plugins.loaded]
    finally:
        sys.modules.pop("swarmd_installed_raiser", None)
        shutil.rmtree(outside)


def test_blocking_matches_distributions_and_registered_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup_modules: None
) -> None:
    source = "from swarmd.plugins import hookimpl\n\n@hookimpl\ndef swarmd_register_tools(registry):\n    pass\n"
    _install(tmp_path, monkeypatch, "swarmd-blockme", source)
    plugins = load_plugins(env={"SWARMD_BLOCK_PLUGINS": "swarmd_blockme,replay-nothing,grep,local"})
    assert "blockme" not in [p.name for p in plugins.loaded]
    assert "grep" not in plugins.tools and "read" in plugins.tools
    assert "local" not in plugins.executors
    found = "\n".join(plugins.blocked_found)
    assert "swarmd_blockme: entry point 'blockme' of swarmd-blockme 1.2.3" in found
    assert "grep: tool registered by plugin 'builtin-tools' of swarmd " in found
    assert "local: entry point 'local' of swarmd " in found
    assert "replay-nothing" not in found
