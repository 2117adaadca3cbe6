"""The executor's side of the Kubernetes API: create, delete, list and watch pods.

The official ``kubernetes`` client is synchronous, so calls run in worker
threads and the watch runs in a thread of its own that hands events to the
event loop. :class:`PodWatch` follows every pod of this executor (one label
selector) from a list's ``resourceVersion``; when the API server says that
version has expired (410 Gone) it lists again and goes on from the new one,
delivering the listed state, so nothing that happened meanwhile is missed.

API errors are sorted into :class:`ApiFailure` with a failure kind: 409, 429
and 5xx are transient (429/503 honour Retry-After first), 403 names the
missing RBAC rule, 400/422 are an invalid pod spec (permanent).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

try:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes import watch as k8s_watch
    from kubernetes.client.rest import ApiException
except ModuleNotFoundError as exc:  # swarmd's `kubernetes` extra is not installed
    if exc.name != "kubernetes":
        raise
    # The plugin still loads; KubernetesExecutor refuses to start, naming the extra
    # (swarmd.plugins.extras), before anything below could use the client.

from swarmd.plugins.executors.kubernetes.failures import ApiFailure
from swarmd.plugins.executors.kubernetes.settings import KubeSettings
from swarmd.v1 import common_pb2

__all__ = ["ApiFailure", "Kube", "PodWatch"]

log = logging.getLogger(__name__)
#: What the executor does with pods; deploy/kubernetes/rbac.yaml grants exactly these.
VERBS = ("create", "get", "list", "watch", "delete")
_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _failure(exc: ApiException, what: str, namespace: str) -> ApiFailure:
    status = int(exc.status or 0)
    body = (exc.body or exc.reason or "")
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if status == 403:
        return ApiFailure(
            f"{what} forbidden in namespace {namespace}: the executor's role must allow create, get, list, "
            f"watch and delete on pods (deploy/kubernetes/rbac.yaml): {body[:300]}",
            common_pb2.FAILURE_KIND_PERMANENT, status,
        )
    if status == 409 or status == 429 or status >= 500 or status == 0:
        return ApiFailure(f"{what}: API server answered {status}: {body[:300]}", common_pb2.FAILURE_KIND_TRANSIENT, status)
    return ApiFailure(f"{what}: API server refused it ({status}): {body[:300]}", common_pb2.FAILURE_KIND_PERMANENT, status)


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return min(30.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


class Kube:
    """Pods in one namespace through one API client."""

    def __init__(self, settings: KubeSettings) -> None:
        namespace = settings.namespace
        if settings.kubeconfig:
            api = k8s_config.new_client_from_config(config_file=settings.kubeconfig, context=settings.context or None)
        else:
            try:
                k8s_config.load_incluster_config()
                api = k8s.ApiClient()
                if not namespace:
                    with open(_SA_NAMESPACE) as handle:
                        namespace = handle.read().strip()
            except k8s_config.ConfigException:
                api = k8s_config.new_client_from_config(context=settings.context or None)
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.namespace = namespace or "default"

    def close(self) -> None:
        self.api.close()

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except ApiException as exc:
                wait = _retry_after(exc)
                if exc.status in (429, 503) and wait is not None and attempt < 2:
                    await asyncio.sleep(wait)
                    continue
                raise _failure(exc, what, self.namespace) from None
            except (OSError, ValueError) as exc:  # connection refused, TLS, ...
                raise ApiFailure(f"{what}: cannot reach the API server: {exc}", common_pb2.FAILURE_KIND_TRANSIENT) from None
        raise AssertionError("unreachable")

    async def missing_verbs(self) -> list[str]:
        """Verbs on pods in the namespace this identity lacks (SelfSubjectAccessReview)."""
        auth = k8s.AuthorizationV1Api(self.api)
        missing = []
        for verb in VERBS:
            review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": {"resourceAttributes": {"namespace": self.namespace, "verb": verb, "resource": "pods"}}}
            reply = await self._call("checking the executor's rights", auth.create_self_subject_access_review, review)
            if not reply.status.allowed:
                missing.append(verb)
        return missing

    async def create_pod(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        await self._call(f"creating pod {name}", self.core.create_namespaced_pod, self.namespace, manifest)

    async def delete_pod(self, name: str, grace_secs: int) -> bool:
        """Delete a pod; False when it was already gone."""
        try:
            await self._call(
                f"deleting pod {name}", self.core.delete_namespaced_pod, name, self.namespace,
                grace_period_seconds=grace_secs,
            )
        except ApiFailure as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def read_pod(self, name: str) -> dict[str, Any] | None:
        """One pod (as a dict); None when it is gone."""
        try:
            pod = await self._call(f"reading pod {name}", self.core.read_namespaced_pod, name, self.namespace)
        except ApiFailure as exc:
            if exc.status == 404:
                return None
            raise
        found: dict[str, Any] = self.api.sanitize_for_serialization(pod)
        return found

    async def list_pods(self, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        """Pods matching the selector (as dicts) and the list's resourceVersion."""
        reply = await self._call(
            "listing pods", self.core.list_namespaced_pod, self.namespace, label_selector=label_selector
        )
        pods = [self.api.sanitize_for_serialization(p) for p in reply.items]
        return pods, reply.metadata.resource_version


class PodWatch:
    """Follows the pods of a selector; calls ``deliver(type, pod)`` on the event loop.

    Types are the watch's (ADDED, MODIFIED, DELETED), SYNC for each pod of a
    (re)list, then RELISTED with ``names``: every pod the list held.
    """

    def __init__(self, kube: Kube, label_selector: str,
                 deliver: Callable[[str, dict[str, Any]], None], loop: asyncio.AbstractEventLoop) -> None:
        self._kube = kube
        self._selector = label_selector
        self._deliver = deliver
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swarmd-k8s-watch", daemon=True)
        self.relists = 0
        self.error = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _emit(self, kind: str, pod: dict[str, Any]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, kind, pod)
        except RuntimeError:  # the loop is closed
            self._stop.set()

    def _relist(self) -> str:
        reply = self._kube.core.list_namespaced_pod(self._kube.namespace, label_selector=self._selector)
        names = []
        for pod in reply.items:
            names.append(pod.metadata.name if pod.metadata else "")
            self._emit("SYNC", self._kube.api.sanitize_for_serialization(pod))
        # Pods deleted while nobody watched are absent from the list: say so.
        self._emit("RELISTED", {"metadata": {"name": ""}, "names": names})
        self.relists += 1
        return str(reply.metadata.resource_version) if reply.metadata else ""

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._relist()
                watcher = k8s_watch.Watch()
                for event in watcher.stream(
                    self._kube.core.list_namespaced_pod, self._kube.namespace,
                    label_selector=self._selector, resource_version=version, timeout_seconds=5,
                    allow_watch_bookmarks=True,
                ):
                    raw = event.get("raw_object") or {}
                    kind = event.get("type", "")
                    if kind == "ERROR":
                        if raw.get("code") == 410:
                            version = ""  # expired: list again
                            break
                        raise ApiException(status=raw.get("code", 500), reason=raw.get("message", ""))
                    version = (raw.get("metadata") or {}).get("resourceVersion") or version
                    if kind != "BOOKMARK":
                        self._emit(kind, raw)
                    if self._stop.is_set():
                        watcher.stop()
                        break
                self.error = ""
            except ApiException as exc:
                if exc.status == 410:
                    version = ""
                    continue
                self.error = f"watch failed ({exc.status}): {exc.reason}"
                log.warning("pod watch: %s", self.error)
                version = ""
                time.sleep(1.0)
            except Exception as exc:  # connection lost: list and watch again
                self.error = f"watch failed: {exc}"
                log.warning("pod watch: %s", self.error)
                version = ""
                self._stop.wait(1.0)
