"""A real Kubernetes control plane for the tests: etcd and kube-apiserver on 127.0.0.1.

The binaries come from ``scripts/build_kube_apiserver.sh`` (Debian's
``kubernetes`` source package, built once into a cache). Each test session
gets a fresh data directory, ephemeral ports, a static token file with an
administrator and the executor's service-account identity, RBAC, the
ServiceAccount admission plugin off (nothing would create default service
accounts without the controller manager) and no endpoint reconciler.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client as k8s

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "swarmd"
EXECUTOR_SA = "swarmd-executor"


def build_binaries() -> Path:
    out = subprocess.run([str(ROOT / "scripts" / "build_kube_apiserver.sh")], check=True, capture_output=True,
                         text=True, timeout=3600)
    return Path(out.stdout.strip().splitlines()[-1]) / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    server: str
    ca_file: Path
    admin_token: str
    executor_token: str
    directory: Path
    processes: list[subprocess.Popen[bytes]]

    def kubeconfig(self, token: str, name: str) -> Path:
        path = self.directory / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": name, "namespace": NAMESPACE}}],
        }))
        return path

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_cluster(bin_dir: Path, directory: Path) -> Cluster:
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
    def launch(args: list[str], log_name: str) -> None:
        with (logs / log_name).open("wb") as log:
            processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))

    launch(
        [str(bin_dir / "etcd"), "--data-dir", str(directory / "etcd"), "--listen-client-urls", etcd_url,
         "--advertise-client-urls", etcd_url, "--listen-peer-urls", peer_url,
         "--initial-advertise-peer-urls", peer_url, "--initial-cluster", f"default={peer_url}",
         "--unsafe-no-fsync"], "etcd.log")
    key = directory / "sa.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    admin_token, executor_token = "admin-" + key.stat().st_ino.__str__(), "executor-token-for-tests"
    (directory / "tokens.csv").write_text(
        f'{admin_token},admin,1,"system:masters"\n'
        f'{executor_token},system:serviceaccount:{NAMESPACE}:{EXECUTOR_SA},2,'
        f'"system:serviceaccounts,system:serviceaccounts:{NAMESPACE}"\n'
        'nodelete-token,swarmd-nodelete,3,""\n'
    )
    certs = directory / "certs"
    launch(
        [str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
         "--advertise-address=127.0.0.1", f"--secure-port={api_port}", "--insecure-port=0",
         f"--cert-dir={certs}", f"--token-auth-file={directory / 'tokens.csv'}", "--authorization-mode=RBAC",
         f"--service-account-key-file={key}", f"--service-account-signing-key-file={key}",
         "--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.0.0.0/24",
         "--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none"], "kube-apiserver.log")
    cluster = Cluster(f"https://127.0.0.1:{api_port}", certs / "apiserver.crt", admin_token, executor_token,
                      directory, processes)
    deadline = time.monotonic() + 90
    while True:
        for proc in processes:
            if proc.poll() is not None:
                cluster.stop()
                raise RuntimeError(f"{proc.args[0]} exited; see {logs}")
        try:
            context = ssl.create_default_context(cafile=str(cluster.ca_file))
            req = urllib.request.Request(f"{cluster.server}/readyz", headers={"Authorization": f"Bearer {admin_token}"})
            with urllib.request.urlopen(req, context=context, timeout=5) as reply:
                if reply.status == 200:
                    return cluster
        except (OSError, ssl.SSLError):
            pass
        if time.monotonic() > deadline:
            cluster.stop()
            raise RuntimeError(f"kube-apiserver not ready in 90 s; see {logs}")
        time.sleep(0.5)


def apply(api: k8s.ApiClient, doc: dict, *, dry_run: bool = False) -> object:
    """Create one manifest object (server-side dry run when asked)."""
    kind, ns = doc["kind"], doc["metadata"].get("namespace", NAMESPACE)
    extra = {"dry_run": "All"} if dry_run else {}
    core, rbac, apps, net = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api), k8s.AppsV1Api(api), k8s.NetworkingV1Api(api)
    create = {
        "ServiceAccount": core.create_namespaced_service_account, "Service": core.create_namespaced_service,
        "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim,
        "ConfigMap": core.create_namespaced_config_map, "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding, "Deployment": apps.create_namespaced_deployment,
        "NetworkPolicy": net.create_namespaced_network_policy,
    }
    if kind == "Namespace":
        return core.create_namespace(doc, **extra)
    return create[kind](ns, doc, **extra)
