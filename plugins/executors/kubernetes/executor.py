"""The ``kubernetes`` executor: one pod per subtask attempt.

For each attempt the executor ships the subtask's base as a git bundle and
the request itself as blobs in the result store, creates a pod whose env
names those blobs (never the request itself), follows the pod with the watch
API and the pod's events through the store (:mod:`.relay`), and when the pod
has ended classifies it (:mod:`.outcomes`), fetches its result and commits
and merges them like a local sub-agent's (:mod:`.bringback`). Every outcome
is an event naming the pod and the reason; the pod is deleted whatever
happened. On its first use the executor deletes pods an earlier run of the
same ``k8s_executor_id`` left behind: their attempts' streams are gone, so
the orchestrator retries those subtasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from swarmd.plugins import Executor, ExecutorContext, ResourceHealth, require_extra
from swarmd.plugins.executors.kubernetes import outcomes
from swarmd.plugins.executors.kubernetes.bringback import merge_pod_work, ship_base
from swarmd.plugins.executors.kubernetes.budget import PodBudget
from swarmd.plugins.executors.kubernetes.failures import ApiFailure
from swarmd.plugins.executors.kubernetes.health import pod_health
from swarmd.plugins.executors.kubernetes.podspec import (
    EXECUTOR_LABEL,
    NAME_LABEL,
    WORKSPACE,
    build_pod,
    label_value,
    pod_name,
    selector,
)
from swarmd.plugins.executors.kubernetes.relay import PodFollower
from swarmd.plugins.executors.kubernetes.settings import KubeSettings, KubeSettingsError
from swarmd.plugins.executors.kubernetes.transfer import TransferError, get_blob, put_blob
from swarmd.plugins.runtime.channels import ChannelPool
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.v1 import common_pb2, executor_pb2

if TYPE_CHECKING:
    from swarmd.plugins.executors.kubernetes.kube import Kube, PodWatch

__all__ = ["KubernetesExecutor"]

log = logging.getLogger(__name__)
POD_REPO = f"{WORKSPACE}/repo"


class _Failed(Exception):
    def __init__(self, error: str, kind: common_pb2.FailureKind = common_pb2.FAILURE_KIND_PERMANENT,
                 status: common_pb2.SubTaskStatus = common_pb2.SUB_TASK_STATUS_FAILED) -> None:
        super().__init__(error)
        self.kind = kind
        self.status = status


class KubernetesExecutor(Executor):
    name = "kubernetes"
    description = "Sub-agents as Kubernetes pods, one per attempt; their commits come back as git bundles"

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        require_extra("kubernetes", plugin="kubernetes executor", extra="kubernetes")
        try:
            self.settings = KubeSettings.from_options(context.options)
        except KubeSettingsError as exc:
            raise ValueError(str(exc)) from None
        self.budget = PodBudget(self.settings.pod_budget)
        self._channels = ChannelPool(context.channel_factory)
        self._kube: Kube | None = None
        self._watch: PodWatch | None = None
        self._start_lock = asyncio.Lock()
        self._pods: dict[str, asyncio.Queue[tuple[str, Any]]] = {}
        #: Pods of ours the watch has reported at least once.
        self._seen: set[str] = set()
        self._runs: dict[tuple[str, str], asyncio.Queue[tuple[str, Any]]] = {}
        #: The pod of each running attempt, and the latest state the watch gave of it.
        self._pod_of: dict[tuple[str, str], str] = {}
        self._watched: dict[str, dict[str, Any]] = {}
        self.orphans_deleted = 0

    @property
    def capacity(self) -> int:
        return self.settings.pod_budget

    @property
    def in_flight(self) -> int:
        return self.budget.used

    def _selector(self) -> str:
        return selector({NAME_LABEL: "swarmd", EXECUTOR_LABEL: label_value(self.settings.executor_id)})

    async def _start(self) -> Kube:
        # The client library is imported on first use, not when the plugin loads.
        from swarmd.plugins.executors.kubernetes.kube import Kube, PodWatch

        async with self._start_lock:
            if self._kube is None:
                kube = await asyncio.to_thread(Kube, self.settings)
                missing = await kube.missing_verbs()
                if missing:
                    kube.close()
                    raise ApiFailure(
                        f"the executor may not {', '.join(missing)} pods in namespace {kube.namespace}: its role "
                        "must allow create, get, list, watch and delete on pods (deploy/kubernetes/rbac.yaml)",
                        common_pb2.FAILURE_KIND_PERMANENT, 403)
                pods, _ = await kube.list_pods(self._selector())
                for pod in pods:  # left by an earlier run of this executor: nobody follows them
                    name = pod["metadata"]["name"]
                    log.warning("deleting pod %s left by an earlier run of executor %s", name, self.settings.executor_id)
                    if await kube.delete_pod(name, 0):
                        self.orphans_deleted += 1
                self._watch = PodWatch(kube, self._selector(), self._deliver, asyncio.get_running_loop())
                self._watch.start()
                self._kube = kube
            return self._kube

    def _deliver(self, kind: str, pod: dict[str, Any]) -> None:
        if kind == "RELISTED":  # seen before, missing from a fresh list: deleted meanwhile
            listed = set(pod["names"])
            for gone, waiting in self._pods.items():
                if gone in self._seen and gone not in listed:
                    waiting.put_nowait(("pod", ("DELETED", {"metadata": {"name": gone}})))
            return
        name = pod.get("metadata", {}).get("name", "")
        queue = self._pods.get(name)
        if queue is not None:
            self._seen.add(name)
            self._watched[name] = pod
            queue.put_nowait(("pod", (kind, pod)))

    async def submit(self, request: executor_pb2.ExecuteSubTaskRequest) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        started = time.monotonic()
        out: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        key = (request.swarm_id, request.subtask.id)
        if key in self._runs:
            yield _result(request, started, error=f"subtask {request.subtask.id} is already running on this executor")
            return
        self._runs[key] = out
        holding = False
        acquiring: asyncio.Future[None] | None = None
        cancel_wait: asyncio.Future[tuple[str, Any]] | None = None
        try:
            try:
                settings = self.settings.for_swarm(request.config.executor_options)
                kube = await self._start()
            except (KubeSettingsError, ApiFailure) as exc:
                yield _result(request, started, error=str(exc), kind=getattr(exc, "failure_kind", common_pb2.FAILURE_KIND_PERMANENT))
                return
            acquiring = asyncio.ensure_future(self.budget.acquire(request.subtask.priority))
            cancel_wait = asyncio.ensure_future(out.get())
            await asyncio.wait({acquiring, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not acquiring.done():
                acquiring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquiring
            holding = acquiring.done() and not acquiring.cancelled()
            if cancel_wait.done():
                yield _result(request, started, error=f"Sub-agent cancelled before its pod started: {cancel_wait.result()[1]}",
                              kind=common_pb2.FAILURE_KIND_CANCELLED, status=common_pb2.SUB_TASK_STATUS_CANCELLED)
                return
            cancel_wait.cancel()
            async for message in self._run_pod(request, settings, kube, out, started):
                yield message
        finally:
            # Closed while waiting for a slot: stop waiting (a slot handed over meanwhile goes back).
            for waiting in (acquiring, cancel_wait):
                if waiting is not None and not waiting.done():
                    waiting.cancel()
            if holding:
                self.budget.release()
            self._runs.pop(key, None)

    async def _run_pod(self, request: executor_pb2.ExecuteSubTaskRequest, settings: KubeSettings, kube: Kube,
                       out: asyncio.Queue[tuple[str, Any]], started: float) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        sink: list[common_pb2.SwarmEvent] = []
        events = EventEmitter(request.swarm_id, request.subtask.id, sink.append)
        name = pod_name(settings.executor_id, request.swarm_id, request.subtask.id, request.attempt or 1)
        self._pods[name] = out
        self._pod_of[(request.swarm_id, request.subtask.id)] = name
        created = False
        follower_task: asyncio.Task[None] | None = None
        ended = False
        try:
            if not request.result_store_address:
                raise _Failed("the kubernetes executor needs a result store (result_store_address) to reach its pods")
            store = self._channels.get(request.result_store_address)
            with tempfile.TemporaryDirectory(prefix="swarmd-k8s-") as scratch:
                manifest = await self._prepare(request, settings, name, Path(scratch), store)
            await kube.create_pod(manifest)
            created = True
            events.agent_message(content=f"pod {name} created in namespace {kube.namespace}", is_tool_call=False,
                                 step=0, role="kubernetes")
            follower = PodFollower(store, request.swarm_id, name)

            async def follow() -> None:
                async for event in follower.follow():
                    out.put_nowait(("event", event))

            follower_task = asyncio.create_task(follow(), name=f"swarmd-k8s-follow-{name}")
            for event in sink:
                yield executor_pb2.ExecuteSubTaskResponse(event=event)
            sink.clear()
            outcome, cancel_reason = None, ""
            deadline = time.monotonic() + settings.schedule_timeout_secs
            scheduled = False
            while outcome is None:
                timeout = None if scheduled else max(0.0, deadline - time.monotonic())
                try:
                    kind, value = await asyncio.wait_for(out.get(), timeout)
                except TimeoutError:
                    outcome = outcomes.unscheduled(settings.schedule_timeout_secs)
                    break
                if kind == "event":
                    if value.WhichOneof("kind") == "work_committed":
                        # The pod's commit is not in the user's repository until
                        # it is brought back: no dependent may start from it yet.
                        continue
                    yield executor_pb2.ExecuteSubTaskResponse(event=value)
                elif kind == "cancel":
                    cancel_reason = value
                    break
                elif kind == "pod":
                    change, pod = value
                    scheduled = scheduled or bool((pod.get("spec") or {}).get("nodeName"))
                    outcome = outcomes.classify(pod)
                    if outcome is None and change == "DELETED":
                        outcome = outcomes.deleted()
            if cancel_reason:
                await self._delete(kube, name, settings.delete_grace_secs, force_after=True)
                ended = True
                events.agent_message(content=f"pod {name} deleted: cancelled", is_tool_call=False, step=0, role="kubernetes")
                raise _Failed(f"Sub-agent cancelled: {cancel_reason}", common_pb2.FAILURE_KIND_CANCELLED,
                              common_pb2.SUB_TASK_STATUS_CANCELLED)
            assert outcome is not None
            events.agent_message(content=outcome.describe(name), is_tool_call=False, step=0, role="kubernetes")
            if not outcome.succeeded:
                raise _Failed(outcome.describe(name), outcome.failure_kind, outcome.status)
            result = await self._collect(request, follower, store, name, sink)
            for event in sink:
                yield executor_pb2.ExecuteSubTaskResponse(event=event)
            sink.clear()
            yield executor_pb2.ExecuteSubTaskResponse(result=result)
        except _Failed as exc:
            for event in sink:
                yield executor_pb2.ExecuteSubTaskResponse(event=event)
            sink.clear()
            events.agent_error(str(exc), exc.kind)
            events.agent_complete(success=False, steps=0)
            for event in sink:
                yield executor_pb2.ExecuteSubTaskResponse(event=event)
            yield _result(request, started, error=str(exc), kind=exc.kind, status=exc.status)
        except ApiFailure as exc:
            events.agent_error(str(exc), exc.failure_kind)
            for event in sink:
                yield executor_pb2.ExecuteSubTaskResponse(event=event)
            yield _result(request, started, error=str(exc), kind=exc.failure_kind)
        finally:
            self._pods.pop(name, None)
            self._pod_of.pop((request.swarm_id, request.subtask.id), None)
            self._watched.pop(name, None)
            self._seen.discard(name)
            if follower_task is not None:
                follower_task.cancel()
                with contextlib.suppress(BaseException):
                    await follower_task
            if created and not ended:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._delete(kube, name, 0))

    async def _prepare(self, request: executor_pb2.ExecuteSubTaskRequest, settings: KubeSettings, name: str,
                       scratch: Path, store: Any) -> dict[str, Any]:
        """Ship the base and the request; returns the pod manifest."""
        repo = Path(request.workspace.repo_path or request.config.repo_path)
        if not request.workspace.base_commit:
            raise _Failed("the kubernetes executor needs workspace.base_commit (a git repository) to ship the code")
        bundle = scratch / "base.bundle"
        try:
            await ship_base(request, repo, bundle, name)
            base_blob = await put_blob(store, bundle)
            pod_request = executor_pb2.ExecuteSubTaskRequest()
            pod_request.CopyFrom(request)
            pod_request.workspace.repo_path = POD_REPO
            pod_request.workspace.worktree = not request.subtask.read_only
            pod_request.workspace.auto_merge = False
            pod_request.config.repo_path = POD_REPO
            pod_request.orchestrator_address = settings.orchestrator_address or request.orchestrator_address
            pod_request.result_store_address = settings.result_store_address or request.result_store_address
            payload = scratch / "request.pb"
            payload.write_bytes(pod_request.SerializeToString())
            payload_blob = await put_blob(store, payload, media_type="application/x-protobuf")
        except TransferError as exc:
            raise _Failed(f"shipping the code to pod {name} failed: {exc}", common_pb2.FAILURE_KIND_TRANSIENT) from None
        env = {
            "SWARMD_POD_NAME": name,
            "SWARMD_SWARM_ID": request.swarm_id,
            "SWARMD_PAYLOAD_BLOB": payload_blob,
            "SWARMD_BASE_BUNDLE_BLOB": base_blob,
            "SWARMD_RESULT_STORE_ADDRESS": pod_request.result_store_address,
            "HOME": "/tmp",
        }
        if request.subagent_token:
            # The pod fetches its request with it, so it cannot travel inside.
            env["SWARMD_SUBAGENT_TOKEN"] = request.subagent_token
        runtime_options = {k: v for k, v in self.context.options.items()
                           if not k.startswith("k8s_") and "api_key" not in k}
        if runtime_options:
            env["SWARMD_EXECUTOR_OPTIONS"] = json.dumps(runtime_options, sort_keys=True)
        deadline = int(request.config.subtask_timeout_secs or 3600)
        return build_pod(settings, request, name=name, env=env, deadline_secs=deadline)

    async def _collect(self, request: executor_pb2.ExecuteSubTaskRequest, follower: PodFollower, store: Any,
                       name: str, sink: list[common_pb2.SwarmEvent]) -> common_pb2.SubTaskResult:
        """The result of a pod that succeeded: its events, its result, its commits merged."""
        outcome = await follower.outcome()
        if outcome is None:
            raise _Failed(f"pod {name} ended without publishing an outcome")
        sink.extend(await follower.rest(int(outcome.get("events", 0))))
        if outcome.get("error"):
            raise _Failed(f"pod {name}: {outcome['error']}",
                          cast(common_pb2.FailureKind, int(outcome.get("failure_kind", common_pb2.FAILURE_KIND_PERMANENT))))
        with tempfile.TemporaryDirectory(prefix="swarmd-k8s-") as scratch:
            try:
                path = Path(scratch) / "result.pb"
                await get_blob(store, str(outcome["result_blob"]), path)
                result = common_pb2.SubTaskResult.FromString(path.read_bytes())
                bundle_blob = str(outcome.get("bundle_blob") or "")
                if bundle_blob and result.success:
                    bundle = Path(scratch) / "work.bundle"
                    await get_blob(store, bundle_blob, bundle)
                    repo = Path(request.workspace.repo_path or request.config.repo_path)
                    merge, patch, worktree = await merge_pod_work(request, repo, bundle, str(outcome["commit"]), name)
                    _apply_merge(request, result, merge, patch, worktree)
                elif not request.subtask.read_only and result.success:
                    result.merge.CopyFrom(common_pb2.MergeResult(
                        outcome=common_pb2.MERGE_OUTCOME_NO_CHANGES, summary="the sub-agent changed nothing"))
                    result.worktree_path = ""
                elif request.subtask.read_only:
                    result.worktree_path = ""
            except TransferError as exc:
                raise _Failed(f"fetching the work of pod {name} failed: {exc}", common_pb2.FAILURE_KIND_TRANSIENT) from None
        EventEmitter(request.swarm_id, request.subtask.id, sink.append).merge_completed(result.merge)
        return result

    async def _delete(self, kube: Kube, name: str, grace: int, *, force_after: bool = False) -> None:
        try:
            await kube.delete_pod(name, grace)
            if force_after and grace:
                await asyncio.sleep(0)
                pods, _ = await kube.list_pods(self._selector())
                if any(p["metadata"]["name"] == name for p in pods):
                    await asyncio.sleep(grace)
                    await kube.delete_pod(name, 0)
        except ApiFailure as exc:
            log.warning("could not delete pod %s: %s", name, exc)

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        queue = self._runs.get((swarm_id, subtask_id))
        if queue is None:
            return False
        queue.put_nowait(("cancel", reason or "cancelled"))
        return True

    async def resource_health(self, swarm_id: str, subtask_id: str) -> ResourceHealth | None:
        """The attempt's pod scored by :func:`.health.pod_health`, read from
        the API server (the watch's latest state when it cannot be read)."""
        name = self._pod_of.get((swarm_id, subtask_id))
        if name is None or self._kube is None:
            return None
        try:
            pod = await self._kube.read_pod(name)
        except ApiFailure as exc:
            log.info("cannot read pod %s for its health: %s", name, exc)
            pod = self._watched.get(name)
        found = pod_health(pod)
        return ResourceHealth(found.score, found.signals, f"pod {name}: {found.detail}")

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        if self._kube is not None:
            self._kube.close()
            self._kube = None
        await self._channels.aclose()


def _apply_merge(request: executor_pb2.ExecuteSubTaskRequest, result: common_pb2.SubTaskResult,
                 merge: common_pb2.MergeResult, patch: bytes, worktree: str) -> None:
    result.merge.CopyFrom(merge)
    result.worktree_path = worktree
    del result.artifacts[:]
    if patch:
        result.artifacts.append(common_pb2.SwarmArtifact(
            artifact_type="patch", name=f"{request.subtask.id}.patch", content=patch,
            source_subagent=request.subtask.id, mime_type="text/x-diff"))
    if merge.outcome in (common_pb2.MERGE_OUTCOME_CONFLICTED, common_pb2.MERGE_OUTCOME_FAILED):
        files = ", ".join(c.path for c in merge.conflicts)
        what = f"Merge conflicted in {files}" if merge.outcome == common_pb2.MERGE_OUTCOME_CONFLICTED else "Merge failed"
        result.success = False
        result.error = f"{what}: {merge.summary}"
        result.status = common_pb2.SUB_TASK_STATUS_FAILED
        result.failure_kind = common_pb2.FAILURE_KIND_PERMANENT


def _result(request: executor_pb2.ExecuteSubTaskRequest, started: float, *, error: str,
            kind: common_pb2.FailureKind = common_pb2.FAILURE_KIND_PERMANENT,
            status: common_pb2.SubTaskStatus = common_pb2.SUB_TASK_STATUS_FAILED) -> executor_pb2.ExecuteSubTaskResponse:
    return executor_pb2.ExecuteSubTaskResponse(result=common_pb2.SubTaskResult(
        subtask_id=request.subtask.id, subagent_id=f"agent-{request.subtask.id}", success=False, error=error,
        status=status, failure_kind=kind, retry_count=max(0, (request.attempt or 1) - 1),
        execution_time_ms=int((time.monotonic() - started) * 1000), cache_key=request.cache_key))
