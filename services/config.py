"""Service configuration: pydantic models loaded from a file and ``SWARMD_*``.

Precedence, lowest first: model defaults, the config file (YAML, JSON or
TOML; ``--config PATH`` or ``SWARMD_CONFIG``), then environment variables.
An environment variable names a field by its path, sections separated by a
double underscore::

    SWARMD_RESULT_STORE__DB_PATH=/var/lib/swarmd/swarmd.db
    SWARMD_ORCHESTRATOR__EXECUTOR_ADDRESS=10.0.0.5:50052
    SWARMD_TELEMETRY__OTLP_ENDPOINT=http://collector:4317

Values are parsed as JSON when they parse (numbers, booleans, objects),
otherwise taken as strings. ``OTEL_EXPORTER_OTLP_ENDPOINT`` is honoured when
no swarmd setting names an endpoint.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmd.services.auth.settings import AuthSettings
from swarmd.services.errors import InvalidArgument

__all__ = [
    "AuthSettings",
    "ClientSettings",
    "ExecutorSettings",
    "ModelPrice",
    "OrchestratorSettings",
    "ResultStoreSettings",
    "ServerSettings",
    "Settings",
    "TelemetrySettings",
    "TlsSettings",
    "load_settings",
]

ENV_PREFIX = "SWARMD_"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TlsSettings(_Model):
    """TLS for a service's server and its channels to peers (see :mod:`swarmd.services.tls`)."""

    cert_file: Path | None = Field(
        None, description="PEM certificate chain; set, the server listens with TLS only and channels to peers "
        "present it as the client certificate."
    )
    key_file: Path | None = Field(None, description="PEM private key of cert_file.")
    ca_file: Path | None = Field(
        None, description="PEM CA bundle that peers' certificates (servers dialled, and clients under "
        "client_auth=require) are verified against; set alone, channels use TLS without a certificate of their own."
    )
    client_auth: Literal["none", "require"] = Field(
        "none", description="require: mutual TLS, a client without a certificate verified by ca_file cannot connect."
    )
    server_name: str = Field(
        "", description="Name expected in peers' certificates when it differs from the host dialled."
    )


class ServerSettings(_Model):
    """What every gRPC server shares."""

    listen: str = Field("127.0.0.1:0", description="HOST:PORT to listen on; port 0 picks a free one.")
    grace_period_secs: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight RPCs may run before they are cancelled."
    )
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted or sent.")
    keepalive_time_secs: float = Field(
        30.0,
        gt=0,
        description="Channels to peers send an HTTP/2 keepalive ping after this long without activity; "
        "the server accepts pings from clients down to half of it, so keep it the same on every service.",
    )
    keepalive_timeout_secs: float = Field(
        20.0, gt=0, description="A keepalive ping unanswered for this long closes the connection."
    )
    tls: TlsSettings = Field(default_factory=TlsSettings, description="TLS and mutual TLS (default: plaintext).")
    auth: AuthSettings = Field(
        default_factory=AuthSettings, description="Authentication and authorization of callers (default: none)."
    )
    heartbeat_interval_secs: float = Field(
        10.0,
        gt=0,
        description="Long streams (ExecuteSubTask, WatchSwarm) carry a heartbeat after this long without "
        "another message, so a quiet stream (a long model call) still carries data; at or below keepalive_time_secs.",
    )


class TelemetrySettings(_Model):
    """OpenTelemetry tracing."""

    otlp_endpoint: str | None = Field(
        None, description="OTLP/gRPC endpoint; falls back to OTEL_EXPORTER_OTLP_ENDPOINT; unset exports nothing."
    )
    otlp_insecure: bool = Field(True, description="Plaintext OTLP (a local collector).")
    enabled: bool = Field(True, description="Create spans at all (a no-op tracer when false).")


class ResultStoreSettings(ServerSettings):
    """The result store service."""

    db_path: Path = Field(Path(".swarmd/swarmd.db"), description="SQLite database file (WAL mode).")
    cache_ttl_secs: int = Field(86400, ge=1, description="Default cache entry time to live.")
    cache_max_entries: int = Field(1000, ge=1, description="Cache entries kept before LRU eviction.")
    cache_max_bytes: int = Field(100 * 1024 * 1024, ge=1024, description="Cache bytes kept before LRU eviction.")
    sweep_interval_secs: float = Field(30.0, gt=0, description="How often expired rows are deleted.")


class ExecutorSettings(ServerSettings):
    """The executor service."""

    default_executor: str = Field("local", description="Executor plugin used when a request names none.")
    capacity: int = Field(0, ge=0, description="Sub-agents run at once by this service; 0 = unbounded.")
    options: dict[str, str] = Field(default_factory=dict, description="Options handed to executor plugins.")


class ModelPrice(_Model):
    """Price of a model, in US dollars per million tokens."""

    prompt_per_mtok: float = Field(0.0, ge=0)
    completion_per_mtok: float = Field(0.0, ge=0)


class OrchestratorSettings(ServerSettings):
    """The orchestrator service."""

    result_store_address: str = Field("127.0.0.1:50053", description="HOST:PORT of the result store.")
    executor_address: str = Field("127.0.0.1:50052", description="HOST:PORT of the executor service.")
    advertise_address: str | None = Field(
        None, description="Address executors use to reach this orchestrator; defaults to the bound address."
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description='Price table keyed by "provider/model" (or "model").'
    )
    rpc_timeout_secs: float = Field(30.0, gt=0, description="Deadline of unary calls to peers.")
    decomposition_options: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Options of the decomposition call, read like the executor's options: provider.base_url, "
            "provider.timeout, provider.api_key..., call_timeout_secs; a swarm's executor_options override "
            "them. The embedded services use the executor's options when this is empty."
        ),
    )
    governor_initial_concurrency: int = Field(
        128, ge=1, description="Model calls a fresh rate governor lets through at once (halved on each 429)."
    )
    governor_max_concurrency: int = Field(256, ge=1, description="Most model calls one governor lets through at once.")
    governor_max_idle_keys: int = Field(
        256,
        ge=0,
        description=(
            "Rate governors kept for keys nobody uses at the moment (no permit out, nobody waiting, no "
            "pause, no live swarm); beyond that the least recently used are forgotten, so calls with "
            "ever new keys cannot grow the orchestrator's memory without bound."
        ),
    )
    governor_pause_ceiling_secs: float = Field(
        60.0,
        gt=0,
        description=(
            "Longest a rate governor holds a caller beyond what the newest response itself justifies; "
            "a response that justifies more is honoured with a rate_limit_long_pause warning."
        ),
    )
    governor_max_pause_secs: float = Field(
        900.0, gt=0, description="Longest pause any one response can impose (longer asks become a probe this often)."
    )
    executor_outage_secs: float = Field(
        300.0,
        gt=0,
        description="How long an unreachable executor is waited for (the swarm says it is waiting) before "
        "its attempts count as failed; the executor keeps running them meanwhile, for reattaching.",
    )
    journal_path: Path | None = Field(
        Path(".swarmd/orchestrator-journal.db"),
        description="Write-ahead journal (SQLite, WAL) of the events and state saves the result store has "
        "not confirmed yet, replayed into the store when the orchestrator starts; relative to the "
        "orchestrator's working directory (embedded services: beside their database, REPO/.swarmd/ for "
        "swarmd run). One orchestrator per journal (locked). Null keeps no journal.",
    )
    journal_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Events the journal holds at most; beyond it new events are kept only in memory (an "
        "error is logged and the swarm gets a journal_full warning) until the store has caught up.",
    )
    client_executor_options: list[str] = Field(
        default_factory=list,
        description="Executor options clients may set per swarm beyond the safe defaults "
        "(e.g. provider.base_url for a trusted tenant); others are operator settings.",
    )
    tenant_executor_options: dict[str, list[str]] = Field(
        default_factory=dict,
        description="More executor options the swarms of one tenant may set, by tenant (with "
        "authentication on, the caller's tenant), on top of client_executor_options: "
        "{team-a: [provider.base_url]}.",
    )


class ClientSettings(_Model):
    """What the CLI reads from the same file when it dials a running orchestrator."""

    token_file: Path | None = Field(
        None, description="File holding the bearer token to present (after --token, --token-file, "
        "SWARMD_TOKEN and SWARMD_TOKEN_FILE)."
    )


class A2ASettings(_Model):
    """The A2A gateway (``swarmd serve a2a``): who may call it."""

    auth: AuthSettings = Field(
        default_factory=AuthSettings,
        description="Callers' bearer credentials, as the services take them (token_file, jwt; subagent "
        "tokens are refused): clients and admins are served and their token goes on to the orchestrator, "
        "which must accept the same credentials.",
    )
    public_card: bool = Field(True, description="The Agent Card is served without credentials.")


class Settings(_Model):
    """All of swarmd's settings; each service reads its own section."""

    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    result_store: ResultStoreSettings = Field(default_factory=ResultStoreSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    a2a: A2ASettings = Field(default_factory=A2ASettings)
    log_level: str = Field("INFO", description="Python logging level.")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"config file {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument(f"config file {path} must hold a mapping at the top level")
    return data


def _env_overlay(env: Mapping[str, str]) -> dict[str, Any]:
    overlay: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == "SWARMD_CONFIG":
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if not path[0] or path[0] not in Settings.model_fields:
            continue  # other SWARMD_* switches (plugins, autoload) are not settings
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = overlay
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overlay


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings from ``path`` (or ``$SWARMD_CONFIG``) and ``SWARMD_*``.

    Raises :class:`InvalidArgument` naming the bad field when validation fails.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    file = path or env.get("SWARMD_CONFIG")
    if file:
        data = _read_file(Path(file))
    data = _merge(data, _env_overlay(env))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidArgument(f"invalid configuration: {problems}") from exc
    if settings.telemetry.otlp_endpoint is None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        settings.telemetry.otlp_endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    return settings
