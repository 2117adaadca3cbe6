"""The decomposition call is configured like a sub-agent's model calls."""

from __future__ import annotations

import pytest

from swarmd.plugins.manager import load_plugins
from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.decomposer import (
    create_decomposition_provider,
    decomposition_settings,
)
from swarmd.v1 import common_pb2

PLUGINS_ENV = {"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": "builtin-tools,kubernetes,remote"}


async def test_provider_options_reach_the_decomposition_provider() -> None:
    plugins = load_plugins(env=PLUGINS_ENV)
    service = {"provider.base_url": "http://127.0.0.1:9/v1", "provider.api_key": "sk-service"}
    config = common_pb2.SwarmConfig(
        model="openai/m", executor_options={"provider.timeout": "600", "call_timeout_secs": "700"}
    )
    provider = create_decomposition_provider(plugins, config, service)
    try:
        assert provider.options["base_url"] == "http://127.0.0.1:9/v1"
        assert provider.options["timeout"] == "600"
        assert provider.options["api_key"] == "sk-service"
        assert provider.options["subtask_id"] == "orchestrator"
    finally:
        await provider.aclose()
    assert decomposition_settings(service, config).call_timeout_secs == 700

    # A swarm that picks its own server does not get the service's key from the environment.
    config.executor_options["provider.base_url"] = "http://127.0.0.1:8/v1"
    provider = create_decomposition_provider(plugins, config, {})
    try:
        assert provider.options["base_url"] == "http://127.0.0.1:8/v1"
        assert provider.options["use_env_key"] == "false"
    finally:
        await provider.aclose()


def test_bad_options_are_invalid_argument() -> None:
    plugins = load_plugins(env=PLUGINS_ENV)
    config = common_pb2.SwarmConfig(model="openai/m", executor_options={"call_timeout_secs": "soon"})
    with pytest.raises(InvalidArgument, match="call_timeout_secs='soon' is not a valid float"):
        create_decomposition_provider(plugins, config, {})
