"""FakeKubelet: plays the kubelet of one node against the real API server.

There is no container runtime here, so this fake does what a kubelet would
with each pod of its namespace: registers a Ready node (removing the
``not-ready`` taint admission puts on it), binds new pods to it, runs the
pod's container command as a local process (the image is not pulled; the
command is the image's ``swarmd``, i.e. this virtualenv's), with the pod's
env and its volume mounts as fresh directories, and patches the pod's status
Running, then Succeeded or Failed with the exit code. A pod being deleted has
its process killed and its deletion confirmed.

Per subtask id (the pod's label) it can also inject a fault instead:
``oom`` (killed, OOMKilled, exit 137), ``evict`` (phase Failed, reason
Evicted), ``delete`` (the pod deleted while it runs), ``unschedulable``
(never bound), ``image`` (ErrImagePull) and ``hang`` (runs until deleted).
Faults apply to the first attempt only unless ``always`` is set.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

SWARMD = str(Path(sys.executable).with_name("swarmd"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKubelet:
    def __init__(self, api: k8s.ApiClient, namespace: str, root: Path, node: str = "fake-node") -> None:
        self.core = k8s.CoreV1Api(api)
        self.namespace = namespace
        self.node = node
        self.root = root
        self.faults: dict[str, str] = {}
        self.always: set[str] = set()
        self.extra_env: dict[str, str] = {}
        self.live: set[str] = set()
        self.max_live = 0
        self.started: list[str] = []
        #: Set once a pod's process has started.
        self.first_start = threading.Event()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._handled: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)

    # -- node ---------------------------------------------------------------

    def register_node(self) -> None:
        try:
            self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.core.patch_node(self.node, {"spec": {"taints": None}})
        self.core.patch_node_status(self.node, {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "fake kubelet is ready", "lastHeartbeatTime": _now(),
                            "lastTransitionTime": _now()}],
            "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
        }})

    def start(self) -> FakeKubelet:
        self.register_node()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _kill(proc)
        self._thread.join(10)

    # -- the watch ----------------------------------------------------------

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = self.core.list_namespaced_pod(self.namespace)
                    version = listed.metadata.resource_version
                    for pod in listed.items:
                        self._on("SYNC", self.core.api_client.sanitize_for_serialization(pod))
                for event in k8s_watch.Watch().stream(self.core.list_namespaced_pod, self.namespace,
                                                      resource_version=version, timeout_seconds=2):
                    raw = event["raw_object"]
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    version = raw["metadata"]["resourceVersion"]
                    self._on(event["type"], raw)
                    if self._stop.is_set():
                        break
            except Exception:
                version = ""
                self._stop.wait(0.5)

    def _on(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        name = meta["name"]
        with self._lock:
            if kind == "DELETED":
                self.live.discard(name)
            else:
                self.live.add(name)
                self.max_live = max(self.max_live, len(self.live))
        if kind == "DELETED":
            proc = self._procs.get(name)
            if proc is not None:
                _kill(proc)
            return
        if meta.get("deletionTimestamp"):
            proc = self._procs.get(name)
            if proc is not None:
                _kill(proc)
            try:  # a kubelet confirms the deletion once the containers are gone
                self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
            except ApiException:
                pass
            return
        if name in self._handled or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        self._handled.add(name)
        labels = meta.get("labels") or {}
        subtask = labels.get("swarmd.dev/subtask-id", "")
        fault = self.faults.get(subtask, "")
        if fault and subtask not in self.always:
            self.faults.pop(subtask, None)
        if fault == "unschedulable":
            return
        self.core.create_namespaced_binding(
            self.namespace,
            k8s.V1Binding(metadata=k8s.V1ObjectMeta(name=name),
                          target=k8s.V1ObjectReference(kind="Node", name=self.node, api_version="v1")),
            _preload_content=False,
        )
        if fault == "image":
            self._status(name, "Pending", {"waiting": {"reason": "ErrImagePull", "message": "image not found"}})
            return
        threading.Thread(target=self._execute, args=(pod, fault), daemon=True).start()

    # -- running a pod ------------------------------------------------------

    def _status(self, name: str, phase: str, state: dict[str, Any], **extra: Any) -> None:
        body = {"status": {"phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", **extra,
                           "containerStatuses": [{"name": "agent", "image": "swarmd-agent", "imageID": "",
                                                  "ready": "running" in state, "restartCount": 0, "state": state}]}}
        try:
            self.core.patch_namespaced_pod_status(name, self.namespace, body)
        except ApiException:
            pass

    def _execute(self, pod: dict[str, Any], fault: str) -> None:
        name = pod["metadata"]["name"]
        spec = pod["spec"]
        container = spec["containers"][0]
        base = self.root / name
        mounts: dict[str, str] = {}
        for mount in container.get("volumeMounts", []):
            host = base / mount["name"]
            host.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = str(host)

        def local(value: str) -> str:
            for path, host in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                if value == path or value.startswith(path + "/"):
                    return host + value[len(path):]
            return value

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.extra_env}
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = local(var["value"])
        env["TMPDIR"] = mounts.get("/tmp", str(base))
        command = [SWARMD if c == "swarmd" else c for c in container.get("command", [])]
        args = [local(a) for a in container.get("args", [])]
        with (base / "agent.log").open("wb") as log:
            proc = subprocess.Popen([*command, *args], env=env, cwd=local(container.get("workingDir", str(base))),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with self._lock:
            self._procs[name] = proc
            self.started.append(name)
        self.first_start.set()
        self._status(name, "Running", {"running": {"startedAt": _now()}}, startTime=_now())
        if fault in ("oom", "evict", "delete"):
            try:
                proc.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
            _kill(proc)
            if fault == "oom":
                self._status(name, "Failed", {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                             "startedAt": _now(), "finishedAt": _now()}})
            elif fault == "evict":
                self._status(name, "Failed", {"terminated": {"exitCode": 137, "reason": "Error",
                                                             "startedAt": _now(), "finishedAt": _now()}},
                             reason="Evicted", message="The node was low on resource: memory.")
            else:
                try:
                    self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
                except ApiException:
                    pass
            return
        code = proc.wait()
        with self._lock:
            self._procs.pop(name, None)
        if code < 0:  # killed because the pod was deleted
            return
        phase = "Succeeded" if code == 0 else "Failed"
        self._status(name, phase, {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                                  "startedAt": _now(), "finishedAt": _now()}})

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
