"""Fixtures of the Kubernetes executor tests: a real API server and a FakeKubelet."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fake_kubelet import FakeKubelet
from kube_cluster import NAMESPACE, ROOT, Cluster, apply, build_binaries, start_cluster
from kubernetes import client as k8s
from kubernetes import config as k8s_config


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    directory = Path(tempfile.mkdtemp(prefix="swarmd-kube-"))
    cl = start_cluster(build_binaries(), directory)
    try:
        admin = k8s_config.new_client_from_config(str(cl.kubeconfig(cl.admin_token, "admin")))
        k8s.CoreV1Api(admin).create_namespace({"metadata": {"name": NAMESPACE}})
        for doc in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "rbac.yaml").read_text()):
            apply(admin, doc)
        admin.close()
        yield cl
    finally:
        cl.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def admin_api(cluster: Cluster) -> Iterator[k8s.ApiClient]:
    api = k8s_config.new_client_from_config(str(cluster.kubeconfig(cluster.admin_token, "admin")))
    yield api
    api.close()


@pytest.fixture
def kubelet(admin_api: k8s.ApiClient, tmp_path: Path) -> Iterator[FakeKubelet]:
    fake = FakeKubelet(admin_api, NAMESPACE, Path(tempfile.mkdtemp(prefix="pods-", dir=tmp_path)))
    fake.extra_env = {k: v for k, v in os.environ.items() if k.startswith(("SWARMD_DISABLE", "GIT_CONFIG"))}
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def executor_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def executor_options(cluster: Cluster, executor_id: str) -> dict[str, str]:
    return {
        "k8s_kubeconfig": str(cluster.kubeconfig(cluster.executor_token, "executor")),
        "k8s_namespace": NAMESPACE,
        "k8s_executor_id": executor_id,
        "k8s_schedule_timeout_secs": "20",
    }
