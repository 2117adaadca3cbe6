"""deploy/kubernetes/ passes a server-side dry run on the real API server."""

from __future__ import annotations

import uuid

import pytest
import yaml
from kube_cluster import ROOT, apply
from kubernetes import client as k8s

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(120)]

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


def test_every_manifest_passes_a_server_side_dry_run(admin_api: k8s.ApiClient) -> None:
    namespace = f"dry-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(admin_api).create_namespace({"metadata": {"name": namespace}})
    kinds = set()
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Namespace":
                doc["metadata"]["name"] = f"{namespace}-ns"
            else:
                doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects", []):
                subject["namespace"] = namespace
            try:
                apply(admin_api, doc, dry_run=True)
            except k8s.ApiException as exc:
                pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {exc.status} {exc.body}")
            kinds.add(doc["kind"])
    assert {"Deployment", "Service", "PersistentVolumeClaim", "Role", "RoleBinding", "ServiceAccount",
            "NetworkPolicy", "Namespace"} <= kinds
    # A dry run stores nothing.
    assert k8s.AppsV1Api(admin_api).list_namespaced_deployment(namespace).items == []


def test_the_executor_role_grants_pods_and_nothing_more() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]}
    ]
    assert not any(d["kind"].startswith("Cluster") for d in docs)


def test_a_broken_manifest_fails_the_dry_run(admin_api: k8s.ApiClient) -> None:
    doc = next(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "orchestrator.yaml").read_text()))
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(k8s.ApiException) as info:
        apply(admin_api, doc, dry_run=True)
    assert info.value.status == 422
