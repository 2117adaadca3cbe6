"""The pod of one subtask attempt: its name, labels and manifest (Kubernetes 1.20 API).

Why a bare pod and not a ``batch/v1`` Job: swarmd retries attempts itself
(with its retry policy and a fresh attempt number, so each attempt has its
own pod, labels and result channel), a Job would add a controller between
the executor and the pod whose own retries must be switched off, and a Job's
pod still has to be watched and classified. A pod is created, watched and
deleted by the executor alone, which is all the RBAC role grants.

Labels (all pods of a swarm are found and deleted by label):
``app.kubernetes.io/name=swarmd``, ``app.kubernetes.io/component=subagent``,
``app.kubernetes.io/managed-by=swarmd-executor``, ``swarmd.dev/executor``
(the executor id), ``swarmd.dev/swarm-id``, ``swarmd.dev/subtask-id``,
``swarmd.dev/attempt`` and ``swarmd.dev/stage``. Ids longer than a label
allows are shortened with a hash; the annotations keep them whole.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from swarmd.plugins.executors.kubernetes.settings import KubeSettings
from swarmd.v1 import executor_pb2

__all__ = ["WORKSPACE", "build_pod", "label_value", "pod_labels", "pod_name", "selector"]

NAME_LABEL = "app.kubernetes.io/name"
EXECUTOR_LABEL = "swarmd.dev/executor"
SWARM_LABEL = "swarmd.dev/swarm-id"
SUBTASK_LABEL = "swarmd.dev/subtask-id"
ATTEMPT_LABEL = "swarmd.dev/attempt"
STAGE_LABEL = "swarmd.dev/stage"
WORKSPACE = "/workspace"
AGENT_UID = 10001
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def _digest(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def pod_name(executor_id: str, swarm_id: str, subtask_id: str, attempt: int) -> str:
    """``swarmd-<subtask>-<hash>``: at most 63 characters, unique per attempt."""
    stem = _NOT_NAME.sub("-", subtask_id.lower()).strip("-")[:40].strip("-") or "subtask"
    return f"swarmd-{stem}-{_digest(f'{executor_id}/{swarm_id}/{subtask_id}/{attempt}')}"


def label_value(text: str) -> str:
    """A valid label value: allowed characters, at most 63, alphanumeric at both ends."""
    value = _NOT_LABEL.sub("-", text).strip("-_.")
    if len(value) > 63 or value != text:
        value = f"{value[:52].strip('-_.')}-{_digest(text)}".strip("-_.")
    return value


def selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pod_labels(settings: KubeSettings, request: executor_pb2.ExecuteSubTaskRequest) -> dict[str, str]:
    return {
        **settings.labels,
        NAME_LABEL: "swarmd",
        "app.kubernetes.io/component": "subagent",
        "app.kubernetes.io/managed-by": "swarmd-executor",
        EXECUTOR_LABEL: label_value(settings.executor_id),
        SWARM_LABEL: label_value(request.swarm_id),
        SUBTASK_LABEL: label_value(request.subtask.id),
        ATTEMPT_LABEL: str(request.attempt or 1),
        STAGE_LABEL: str(request.subtask.stage),
    }


def build_pod(
    settings: KubeSettings,
    request: executor_pb2.ExecuteSubTaskRequest,
    *,
    name: str,
    env: dict[str, str],
    deadline_secs: int,
) -> dict[str, Any]:
    """The pod manifest of one attempt; ``env`` carries the payload references."""
    variables: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in {**settings.env, **env}.items()]
    variables += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for k, (secret, key) in settings.env_secrets.items()
    ]
    container: dict[str, Any] = {
        "name": "agent",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [settings.command],
        "args": ["agent", "run-subtask", "--workspace", WORKSPACE],
        "env": variables,
        "workingDir": WORKSPACE,
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": AGENT_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": max(1, deadline_secs),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": AGENT_UID, "runAsGroup": AGENT_UID, "fsGroup": AGENT_UID},
        "containers": [container],
        "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = [dict(t) for t in settings.tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": pod_labels(settings, request),
            "annotations": {
                "swarmd.dev/swarm-id": request.swarm_id,
                "swarmd.dev/subtask-id": request.subtask.id,
                "swarmd.dev/executor": settings.executor_id,
            },
        },
        "spec": spec,
    }
