"""Options of the ``kubernetes`` executor (``executor.options`` and ``--option``).

Every option starts with ``k8s_``. The executor service's settings give them
all; a swarm (``swarmd run --option k8s_image=...``) may override the ones
that only shape its own pods (:data:`SWARM_OPTIONS`), never where pods run
or with which rights.

============================  =====================================================
``k8s_kubeconfig``            kubeconfig file (default: in-cluster config, then
                              ``$KUBECONFIG`` / ``~/.kube/config``)
``k8s_context``               kubeconfig context (default: its current one)
``k8s_namespace``             namespace of the pods (default: the in-cluster
                              service account's namespace, else ``default``)
``k8s_image``                 agent image (default ``swarmd-agent:latest``)
``k8s_image_pull_policy``     ``IfNotPresent`` (default), ``Always`` or ``Never``
``k8s_image_pull_secrets``    comma-separated secret names
``k8s_service_account``       service account of the pods (default: none mounted)
``k8s_cpu_request`` ...       ``k8s_cpu_request`` 250m, ``k8s_memory_request`` 256Mi,
                              ``k8s_cpu_limit`` 1000m, ``k8s_memory_limit`` 1Gi
``k8s_node_selector.KEY``     a node selector entry
``k8s_tolerations``           JSON list of tolerations
``k8s_env.NAME``              an extra environment variable
``k8s_env_secret.NAME``       ``SECRET:KEY``: a variable from a secret
``k8s_label.KEY``             an extra pod label
``k8s_pod_budget``            most pods at once (default 8); more wait, by priority
``k8s_orchestrator_address``  orchestrator address as pods reach it (default: the
                              request's)
``k8s_result_store_address``  result store address as pods reach it (default: the
                              request's)
``k8s_schedule_timeout_secs`` a pod not scheduled by then is given up (default 300)
``k8s_delete_grace_secs``     grace period of a cancel before a forced delete (10)
``k8s_executor_id``           names this executor's pods (default ``executor``); a
                              restarted executor with the same id cleans them up
``k8s_command``               the image's swarmd command (default ``swarmd``)
============================  =====================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["SWARM_OPTIONS", "KubeSettings", "KubeSettingsError"]

SWARM_OPTIONS = frozenset(
    {"k8s_image", "k8s_image_pull_policy", "k8s_cpu_request", "k8s_memory_request", "k8s_cpu_limit",
     "k8s_memory_limit", "k8s_tolerations"}
)
_PREFIXED = ("k8s_node_selector.", "k8s_env.", "k8s_env_secret.", "k8s_label.")
_SWARM_PREFIXED = ("k8s_node_selector.", "k8s_env.", "k8s_label.")


class KubeSettingsError(ValueError):
    """A ``k8s_`` option has a bad value."""


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: str = ""
    context: str = ""
    namespace: str = ""
    image: str = "swarmd-agent:latest"
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str = ""
    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1000m"
    memory_limit: str = "1Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    env_secrets: dict[str, tuple[str, str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    pod_budget: int = 8
    orchestrator_address: str = ""
    result_store_address: str = ""
    schedule_timeout_secs: float = 300.0
    delete_grace_secs: int = 10
    executor_id: str = "executor"
    command: str = "swarmd"

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> KubeSettings:
        """The service-level settings."""
        return cls()._apply(options)

    def for_swarm(self, options: Mapping[str, str]) -> KubeSettings:
        """These settings with a swarm's allowed overrides applied."""
        own = {k: v for k, v in options.items() if k.startswith("k8s_")}
        refused = [k for k in own if k not in SWARM_OPTIONS and not k.startswith(_SWARM_PREFIXED)]
        if refused:
            raise KubeSettingsError(
                f"executor option {', '.join(sorted(refused))} may only be set in the executor service's settings"
            )
        return self._apply(own) if own else self

    def _apply(self, options: Mapping[str, str]) -> KubeSettings:
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        maps: dict[str, dict[str, Any]] = {
            "node_selector": dict(self.node_selector), "env": dict(self.env),
            "env_secrets": dict(self.env_secrets), "labels": dict(self.labels),
        }
        for key, raw in options.items():
            if not key.startswith("k8s_"):
                continue
            if key.startswith(_PREFIXED):
                head, _, name = key.partition(".")
                if not name:
                    raise KubeSettingsError(f"executor option {key} needs a name after the dot")
                target = {"k8s_node_selector": "node_selector", "k8s_env": "env",
                          "k8s_env_secret": "env_secrets", "k8s_label": "labels"}[head]
                if target == "env_secrets":
                    secret, sep, item = raw.partition(":")
                    if not sep or not secret or not item:
                        raise KubeSettingsError(f"executor option {key}={raw!r} must be SECRET:KEY")
                    maps[target][name] = (secret, item)
                else:
                    maps[target][name] = raw
                continue
            name = key[len("k8s_"):]
            if name not in known or name in maps:
                raise KubeSettingsError(f"unknown executor option {key}")
            changes[name] = _convert(key, name, raw)
        changes.update(maps)
        return replace(self, **changes)


def _convert(key: str, name: str, raw: str) -> Any:
    if name == "pod_budget":
        value = _number(key, raw, int)
        if value < 1:
            raise KubeSettingsError(f"executor option {key} must be at least 1")
        return value
    if name in ("schedule_timeout_secs", "delete_grace_secs"):
        value = _number(key, raw, float if name == "schedule_timeout_secs" else int)
        if value < 0:
            raise KubeSettingsError(f"executor option {key} must not be negative")
        return value
    if name == "image_pull_policy" and raw not in ("IfNotPresent", "Always", "Never"):
        raise KubeSettingsError(f"executor option {key}={raw!r} must be IfNotPresent, Always or Never")
    if name == "image_pull_secrets":
        return tuple(s.strip() for s in raw.split(",") if s.strip())
    if name == "tolerations":
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise KubeSettingsError(f"executor option {key} is not JSON: {exc}") from None
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise KubeSettingsError(f"executor option {key} must be a JSON list of objects")
        return tuple(value)
    if name == "image" and not raw:
        raise KubeSettingsError(f"executor option {key} must not be empty")
    return raw


def _number(key: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise KubeSettingsError(f"executor option {key}={raw!r} is not a valid {kind.__name__}") from None
