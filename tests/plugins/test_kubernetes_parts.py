"""The kubernetes executor's pure parts: options, pod spec, outcomes, API errors, pod budget."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes.client.rest import ApiException

from swarmd.plugins.executors.kubernetes.budget import PodBudget
from swarmd.plugins.executors.kubernetes.kube import _failure
from swarmd.plugins.executors.kubernetes.outcomes import classify
from swarmd.plugins.executors.kubernetes.podspec import build_pod, label_value, pod_name
from swarmd.plugins.executors.kubernetes.settings import KubeSettings, KubeSettingsError
from swarmd.v1 import common_pb2, executor_pb2

T, P = common_pb2.FAILURE_KIND_TRANSIENT, common_pb2.FAILURE_KIND_PERMANENT


def test_options_with_defaults_and_prefixed_maps() -> None:
    s = KubeSettings.from_options({
        "k8s_namespace": "ns", "k8s_pod_budget": "3", "k8s_env.FOO": "bar", "k8s_env_secret.KEY": "sec:item",
        "k8s_node_selector.pool": "agents", "k8s_tolerations": '[{"key": "x", "operator": "Exists"}]',
        "k8s_image_pull_secrets": "a, b", "provider.base_url": "ignored here",
    })
    assert (s.namespace, s.pod_budget, s.cpu_request, s.memory_limit) == ("ns", 3, "250m", "1Gi")
    assert s.env == {"FOO": "bar"} and s.env_secrets == {"KEY": ("sec", "item")}
    assert s.node_selector == {"pool": "agents"} and s.image_pull_secrets == ("a", "b")


@pytest.mark.parametrize(("options", "needle"), [
    ({"k8s_pod_budget": "0"}, "at least 1"),
    ({"k8s_pod_budget": "many"}, "not a valid int"),
    ({"k8s_nope": "1"}, "unknown executor option k8s_nope"),
    ({"k8s_env_secret.X": "nocolon"}, "SECRET:KEY"),
    ({"k8s_tolerations": "{}"}, "JSON list"),
    ({"k8s_image_pull_policy": "Sometimes"}, "IfNotPresent"),
])
def test_bad_options_are_named(options: dict[str, str], needle: str) -> None:
    with pytest.raises(KubeSettingsError, match=needle):
        KubeSettings.from_options(options)


def test_a_swarm_may_shape_its_pods_but_not_where_they_run() -> None:
    s = KubeSettings.from_options({"k8s_namespace": "ns"})
    assert s.for_swarm({"k8s_image": "mine:1", "k8s_label.team": "a"}).image == "mine:1"
    with pytest.raises(KubeSettingsError, match="k8s_namespace"):
        s.for_swarm({"k8s_namespace": "elsewhere"})
    with pytest.raises(KubeSettingsError, match="k8s_env_secret.X"):
        s.for_swarm({"k8s_env_secret.X": "other:key"})


def test_pod_spec_is_locked_down() -> None:
    request = executor_pb2.ExecuteSubTaskRequest(
        swarm_id="s" * 100, subtask=common_pb2.SubTask(id="Sub_Task.1", stage=2), attempt=3)
    name = pod_name("executor", request.swarm_id, request.subtask.id, 3)
    assert len(name) <= 63 and name.startswith("swarmd-sub-task-1-")
    assert name != pod_name("executor", request.swarm_id, request.subtask.id, 4)
    pod = build_pod(KubeSettings(), request, name=name, env={"SWARMD_PAYLOAD_BLOB": "ab"}, deadline_secs=90)
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 90
    assert container["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"},
                                      "limits": {"cpu": "1000m", "memory": "1Gi"}}
    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "swarmd"
    assert labels["swarmd.dev/attempt"] == "3" and labels["swarmd.dev/stage"] == "2"
    assert len(labels["swarmd.dev/swarm-id"]) <= 63
    assert pod["metadata"]["annotations"]["swarmd.dev/swarm-id"] == request.swarm_id
    assert {"name": "SWARMD_PAYLOAD_BLOB", "value": "ab"} in container["env"]
    assert label_value("ok-id") == "ok-id"


def _pod(phase: str, *, reason: str = "", waiting: str = "", terminated: dict | None = None) -> dict:  # type: ignore[type-arg]
    state = {"waiting": {"reason": waiting}} if waiting else {"terminated": terminated} if terminated else {}
    return {"status": {"phase": phase, "reason": reason, "containerStatuses": [{"name": "agent", "state": state}]}}


@pytest.mark.parametrize(("pod", "reason", "kind", "succeeded"), [
    (_pod("Succeeded", terminated={"exitCode": 0}), "Succeeded", P, True),
    (_pod("Failed", terminated={"exitCode": 3, "reason": "Error"}), "Error", P, False),
    (_pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"}), "OOMKilled", P, False),
    (_pod("Pending", waiting="ImagePullBackOff"), "ImagePullBackOff", P, False),
    (_pod("Pending", waiting="ErrImagePull"), "ErrImagePull", P, False),
    (_pod("Failed", reason="Evicted"), "Evicted", T, False),
    (_pod("Failed", reason="NodeLost"), "NodeLost", T, False),
    (_pod("Unknown"), "NodeLost", T, False),
])
def test_outcomes(pod: dict, reason: str, kind: int, succeeded: bool) -> None:  # type: ignore[type-arg]
    outcome = classify(pod)
    assert outcome is not None
    assert (outcome.reason, outcome.succeeded) == (reason, succeeded)
    if not succeeded:
        assert outcome.failure_kind == kind


def test_running_and_pending_pods_are_not_over() -> None:
    assert classify(_pod("Running")) is None
    assert classify(_pod("Pending", waiting="ContainerCreating")) is None
    timed_out = classify(_pod("Failed", reason="DeadlineExceeded"))
    assert timed_out is not None and timed_out.status == common_pb2.SUB_TASK_STATUS_TIMED_OUT


@pytest.mark.parametrize(("status", "kind", "needle"), [
    (409, T, "409"), (429, T, "429"), (500, T, "500"), (503, T, "503"),
    (403, P, "must allow create, get, list, watch and delete"), (422, P, "refused"), (400, P, "refused"),
])
def test_api_errors(status: int, kind: int, needle: str) -> None:
    failure = _failure(ApiException(status=status, reason="x"), "creating pod p", "ns")
    assert failure.failure_kind == kind and needle in str(failure)


async def test_budget_gives_slots_by_priority_then_arrival() -> None:
    budget = PodBudget(1)
    await budget.acquire()
    order: list[str] = []

    async def want(name: str, priority: int) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(want(n, p)) for n, p in (("low", 0), ("high", 5), ("low2", 0))]
    await asyncio.sleep(0)
    gone = asyncio.create_task(want("cancelled", 9))
    await asyncio.sleep(0)
    gone.cancel()
    for _ in tasks:
        budget.release()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["high", "low", "low2"]
    assert budget.used == 1


async def test_a_relist_reports_pods_deleted_while_nobody_watched() -> None:
    from swarmd.plugins import ExecutorContext
    from swarmd.plugins.executors.kubernetes import KubernetesExecutor

    executor = KubernetesExecutor(ExecutorContext(plugins=None))  # type: ignore[arg-type]
    seen: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    fresh: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    executor._pods.update({"seen": seen, "fresh": fresh})
    executor._deliver("ADDED", {"metadata": {"name": "seen"}, "status": {"phase": "Pending"}})
    assert seen.get_nowait()[1][0] == "ADDED"
    # "fresh" was just created and not reported yet: a list that misses it says nothing about it.
    executor._deliver("RELISTED", {"metadata": {"name": ""}, "names": []})
    assert seen.get_nowait() == ("pod", ("DELETED", {"metadata": {"name": "seen"}}))
    assert fresh.empty()
    await executor.aclose()


async def test_a_waiter_that_gives_up_after_being_handed_a_slot_returns_it() -> None:
    budget = PodBudget(1)
    await budget.acquire()
    waiter = asyncio.ensure_future(budget.acquire())
    await asyncio.sleep(0)
    budget.release()  # handed to the waiter...
    waiter.cancel()  # ...which gives up before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.used == 0
