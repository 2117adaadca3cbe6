"""Settings from files and SWARMD_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmd.services.config import load_settings
from swarmd.services.errors import InvalidArgument


def test_defaults() -> None:
    s = load_settings(env={})
    assert s.result_store.db_path == Path(".swarmd/swarmd.db")
    assert s.executor.default_executor == "local"
    assert s.telemetry.otlp_endpoint is None


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_file_then_environment(tmp_path: Path, suffix: str) -> None:
    body = {
        ".yaml": "orchestrator:\n  executor_address: 10.0.0.5:1\nresult_store:\n  cache_max_entries: 7\n",
        ".json": '{"orchestrator": {"executor_address": "10.0.0.5:1"}, "result_store": {"cache_max_entries": 7}}',
        ".toml": '[orchestrator]\nexecutor_address = "10.0.0.5:1"\n[result_store]\ncache_max_entries = 7\n',
    }[suffix]
    path = tmp_path / f"swarmd{suffix}"
    path.write_text(body)
    s = load_settings(path, env={"SWARMD_RESULT_STORE__CACHE_MAX_ENTRIES": "9", "SWARMD_BLOCK_PLUGINS": "x"})
    assert s.orchestrator.executor_address == "10.0.0.5:1"
    assert s.result_store.cache_max_entries == 9  # the environment wins over the file


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("executor:\n  capacity: 3\n")
    assert load_settings(env={"SWARMD_CONFIG": str(path)}).executor.capacity == 3


def test_otel_endpoint_honoured() -> None:
    s = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert s.telemetry.otlp_endpoint == "http://127.0.0.1:4317"
    s = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "SWARMD_TELEMETRY__OTLP_ENDPOINT": "http://b:2"})
    assert s.telemetry.otlp_endpoint == "http://b:2"


@pytest.mark.parametrize(
    ("body", "env", "needle"),
    [
        ("result_store:\n  cache_max_entries: -1\n", {}, "result_store.cache_max_entries"),
        ("executor:\n  nonsense: 1\n", {}, "executor.nonsense"),
        ("- a list\n", {}, "mapping"),
        ("executor: [\n", {}, "not valid"),
        ("", {"SWARMD_EXECUTOR__CAPACITY": "lots"}, "executor.capacity"),
    ],
)
def test_bad_configuration_names_the_field(tmp_path: Path, body: str, env: dict[str, str], needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(InvalidArgument, match=needle.replace(".", r"\.")):
        load_settings(path, env=env)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml", env={})
