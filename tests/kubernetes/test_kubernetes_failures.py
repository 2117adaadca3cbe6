"""Each way a pod can end, retried or not as its class says; cancel; restart; RBAC."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from fake_kubelet import FakeKubelet
from helpers import git
from kube_cluster import NAMESPACE, Cluster, apply
from kubernetes import client as k8s
from test_kubernetes_swarm import pods, settings

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.plugins.executors.kubernetes.podspec import build_pod
from swarmd.plugins.executors.kubernetes.settings import KubeSettings
from swarmd.v1 import common_pb2, executor_pb2

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(180)]


def solo(tmp_path: Path, *, sleep: bool = False) -> Path:
    calls = [{"name": "write", "arguments": {"path": "solo.txt", "content": "solo\n"}}]
    lines = [{"key": "solo", "step": 1, "content": "Writing solo.txt.", "tool_calls": calls}]
    if sleep:
        lines.insert(0, {"key": "solo", "step": 1, "content": "Waiting.",
                         "tool_calls": [{"name": "bash", "arguments": {"command": "sleep 60"}}]})
        lines[1]["step"] = 2
    lines.append({"key": "solo", "step": len(lines) + 1, "content": "Wrote solo.txt."})
    cassette = tmp_path / "solo.jsonl"
    cassette.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return cassette


async def run_solo(emb: EmbeddedSwarmd, repo: Path, model: str, *, cancel_when=None):  # type: ignore[no-untyped-def]
    plan = common_pb2.Plan(subtasks=[common_pb2.SubTask(id="solo", instruction="Add solo.txt")])
    config = common_pb2.SwarmConfig(model=model, repo_path=str(repo), request_delay_ms=0, executor="kubernetes",
                                    base_delay_ms=50, max_delay_ms=200)
    async with SwarmdClient(emb.orchestrator_address) as client:
        reply = await client.submit(task="solo", plan=plan, config=config)
        if cancel_when is not None:
            await cancel_when()
            await client.cancel_subtask(reply.swarm.id, "solo", reason="the user changed their mind")
        events = [e async for e in client.watch(reply.swarm.id)]
        swarm = await client.get(reply.swarm.id)
    return swarm, events


@pytest.mark.parametrize(
    ("fault", "retried"),
    [("evict", True), ("delete", True), ("unschedulable", True), ("oom", False), ("image", False)],
)
async def test_failure_classes(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient, executor_id: str, fault: str, retried: bool,
) -> None:
    kubelet.faults["solo"] = fault
    options = {**executor_options, "k8s_schedule_timeout_secs": "3"}
    async with EmbeddedSwarmd(settings(options), db_path=tmp_path / "db.sqlite") as emb:
        swarm, events = await run_solo(emb, git_repo, f"replay/{solo(tmp_path)}")
    state = swarm.subtasks[0]
    outcomes = [e.agent_message.content for e in events
                if e.WhichOneof("kind") == "agent_message" and e.agent_message.role == "kubernetes"]
    reason = {"evict": "Evicted", "delete": "Deleted", "unschedulable": "Unschedulable",
              "oom": "OOMKilled", "image": "ErrImagePull"}[fault]
    assert any(reason in o and "pod swarmd-solo-" in o for o in outcomes), outcomes
    if retried:
        assert state.status == common_pb2.SUB_TASK_STATUS_COMPLETED, state.result.error
        assert state.attempt == 2
        assert git(git_repo, "show", "HEAD:solo.txt") == "solo\n"
    else:
        assert state.status == common_pb2.SUB_TASK_STATUS_FAILED
        assert state.attempt == 1
        assert state.result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
        assert reason in state.result.error
    assert pods(admin_api, executor_id) == []


async def test_agent_failure_is_not_retried(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient, executor_id: str,
) -> None:
    # The cassette has no answer for this subtask: the sub-agent itself fails in its pod.
    cassette = tmp_path / "other.jsonl"
    cassette.write_text(json.dumps({"key": "someone-else", "step": 1, "content": "Not for solo."}) + "\n")
    async with EmbeddedSwarmd(settings(executor_options), db_path=tmp_path / "db.sqlite") as emb:
        swarm, _ = await run_solo(emb, git_repo, f"replay/{cassette}")
    state = swarm.subtasks[0]
    assert state.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert state.attempt == 1 and len(kubelet.started) == 1
    assert state.result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert "solo" in state.result.error, state.result.error
    assert pods(admin_api, executor_id) == []


async def test_cancel_deletes_the_pod(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient, executor_id: str,
) -> None:
    async def running() -> None:
        assert await asyncio.to_thread(kubelet.first_start.wait, 60)

    options = {**executor_options, "k8s_delete_grace_secs": "1"}
    async with EmbeddedSwarmd(settings(options), db_path=tmp_path / "db.sqlite") as emb:
        swarm, _ = await run_solo(emb, git_repo, f"replay/{solo(tmp_path, sleep=True)}", cancel_when=running)
    assert swarm.subtasks[0].status == common_pb2.SUB_TASK_STATUS_CANCELLED
    assert pods(admin_api, executor_id) == []


async def test_restarted_executor_removes_pods_of_its_earlier_run(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient, executor_id: str,
) -> None:
    # A pod an executor with this id made before it crashed (never bound: the
    # fake kubelet ignores it), then the executor comes back and runs a swarm.
    kubelet.faults["orphan"] = "unschedulable"
    request = executor_pb2.ExecuteSubTaskRequest(swarm_id="crashed", subtask=common_pb2.SubTask(id="orphan"), attempt=1)
    manifest = build_pod(KubeSettings(executor_id=executor_id), request, name="swarmd-orphan-left", env={},
                         deadline_secs=60)
    k8s.CoreV1Api(admin_api).create_namespaced_pod(NAMESPACE, manifest)
    assert len(pods(admin_api, executor_id)) == 1
    async with EmbeddedSwarmd(settings(executor_options), db_path=tmp_path / "db.sqlite") as emb:
        swarm, _ = await run_solo(emb, git_repo, f"replay/{solo(tmp_path)}")
    assert swarm.subtasks[0].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert pods(admin_api, executor_id) == []


async def test_role_without_delete_gives_a_clear_error(
    tmp_path: Path, git_repo: Path, cluster: Cluster, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient,
) -> None:
    docs = list(yaml.safe_load_all((Path(__file__).parents[2] / "deploy" / "kubernetes" / "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "Role")
    role["metadata"]["name"] = "swarmd-nodelete"
    role["rules"][0]["verbs"] = [v for v in role["rules"][0]["verbs"] if v != "delete"]
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "swarmd-nodelete", "namespace": NAMESPACE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "swarmd-nodelete"},
               "subjects": [{"kind": "User", "name": "swarmd-nodelete", "apiGroup": "rbac.authorization.k8s.io"}]}
    for doc in (role, binding):
        try:
            apply(admin_api, doc)
        except k8s.ApiException as exc:
            assert exc.status == 409
    options = {**executor_options, "k8s_kubeconfig": str(cluster.kubeconfig("nodelete-token", "nodelete"))}
    async with EmbeddedSwarmd(settings(options), db_path=tmp_path / "db.sqlite") as emb:
        swarm, _ = await run_solo(emb, git_repo, f"replay/{solo(tmp_path)}")
    state = swarm.subtasks[0]
    assert state.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert "may not delete pods in namespace swarmd" in state.result.error
    assert state.result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert kubelet.started == []


async def test_executor_stopped_mid_swarm_leaves_no_pod(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient, executor_id: str,
) -> None:
    plan = common_pb2.Plan(subtasks=[common_pb2.SubTask(id="solo", instruction="Add solo.txt")])
    config = common_pb2.SwarmConfig(model=f"replay/{solo(tmp_path, sleep=True)}", repo_path=str(git_repo),
                                    request_delay_ms=0, executor="kubernetes")
    emb = await EmbeddedSwarmd(settings(executor_options), db_path=tmp_path / "db.sqlite").start()
    try:
        async with SwarmdClient(emb.orchestrator_address) as client:
            await client.submit(task="solo", plan=plan, config=config)
            assert await asyncio.to_thread(kubelet.first_start.wait, 60)
            assert len(pods(admin_api, executor_id)) == 1
    finally:
        await emb.stop(grace=1)
    assert pods(admin_api, executor_id) == []
