"""A pod's resource health in SampleBranch: the pure scoring of pod statuses,
and the score of a running pod whose status the test (as the fake kubelet)
turns OOMKilled, then CrashLoopBackOff, on the real API server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from fake_kubelet import FakeKubelet
from kube_cluster import NAMESPACE
from kubernetes import client as k8s
from test_kubernetes_failures import solo
from test_kubernetes_swarm import pods, settings

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.plugins.executors.kubernetes.health import pod_health
from swarmd.services.orchestrator.attempts import branch_name
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

pytestmark = pytest.mark.timeout(180)


def container(*, ready: bool = True, restarts: int = 0, state: dict[str, Any] | None = None,
              last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "agent", "ready": ready, "restartCount": restarts,
            "state": state if state is not None else {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
            "lastState": last or {}}


def status(phase: str, *containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"status": {"phase": phase, "containerStatuses": list(containers), **extra}}


OOM = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}


@pytest.mark.parametrize(
    ("pod", "score", "signals"),
    [
        (None, 0.2, 1),
        ({"metadata": {"name": "p"}}, 0.2, 1),
        (status("Running", container()), 1.0, 0),
        (status("Succeeded", container(ready=False, state={"terminated": {"exitCode": 0, "reason": "Completed"}})), 1.0, 0),
        (status("Running", container(restarts=1, last=OOM)), 0.0, 3),
        (status("Failed", container(ready=False, state=OOM)), 0.0, 3),
        (status("Pending", container(ready=False, state={"waiting": {"reason": "ErrImagePull"}})), 0.0, 3),
        (status("Pending", container(ready=False, state={"waiting": {"reason": "ImagePullBackOff"}})), 0.0, 3),
        (status("Running", container(ready=False, restarts=4, state={"waiting": {"reason": "CrashLoopBackOff"}})), 0.1, 2),
        (status("Failed", container(ready=False, state={"terminated": {"exitCode": 1, "reason": "Error"}})), 0.1, 2),
        (status("Failed", reason="Evicted"), 0.1, 2),
        # Not ready yet while it starts: only the readiness counts.
        (status("Pending", container(ready=False, state={"waiting": {"reason": "ContainerCreating"}})), 0.8, 0),
        (status("Pending"), 0.8, 0),
        (status("Running", container(ready=False)), 0.8, 0),
        # One restart after an error: the reason and the restart.
        (status("Running", container(restarts=1, last={"terminated": {"exitCode": 1, "reason": "Error"}})), 0.5, 2),
        (status("Running", container(restarts=2)), 0.6, 1),
        (status("Running", container(restarts=9)), 0.4, 1),
        (status("Running", container(ready=False, restarts=9, last={"terminated": {"reason": "Error"}})), 0.0, 2),
        # Case-blind reasons, and init containers count too.
        (status("Running", container(), initContainerStatuses=[container(last={"terminated": {"reason": "oomkilled"}})]), 0.0, 3),
    ],
)
def test_pod_health_scores_the_pod_status(pod: dict[str, Any] | None, score: float, signals: int) -> None:
    found = pod_health(pod)
    assert (round(found.score, 6), found.signals) == (score, signals), found
    assert found.detail


async def _sample(address: str, swarm_id: str) -> common_pb2.BranchObservation:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await executor_pb2_grpc.ExecutorServiceStub(channel).SampleBranch(
            executor_pb2.SampleBranchRequest(
                swarm_id=swarm_id, subtask_id="solo", repo_path="/nonexistent-repo",
                branch=branch_name(swarm_id, "solo"),
            ),
            timeout=30,
        )
    return reply.observation


def _patch(admin_api: k8s.ApiClient, name: str, phase: str, entry: dict[str, Any]) -> None:
    """What the kubelet would write of the pod's one container."""
    body = {"status": {"phase": phase, "containerStatuses": [{"image": "swarmd-agent", "imageID": "", **entry}]}}
    k8s.CoreV1Api(admin_api).patch_namespaced_pod_status(name, NAMESPACE, body)


@pytest.mark.kubernetes
async def test_sample_branch_reports_the_pods_resource_health(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
    admin_api: k8s.ApiClient, executor_id: str,
) -> None:
    plan = common_pb2.Plan(subtasks=[common_pb2.SubTask(id="solo", instruction="Add solo.txt")])
    config = common_pb2.SwarmConfig(model=f"replay/{solo(tmp_path, sleep=True)}", repo_path=str(git_repo),
                                    request_delay_ms=0, executor="kubernetes")
    async with EmbeddedSwarmd(settings(executor_options), db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
        emb.orchestrator_address
    ) as client:
        reply = await client.submit(task="solo", plan=plan, config=config)
        swarm_id = reply.swarm.id
        try:
            assert await asyncio.to_thread(kubelet.first_start.wait, 60)
            for _ in range(600):
                running = [p for p in pods(admin_api, executor_id) if p.status.phase == "Running"]
                if running:
                    break
                await asyncio.sleep(0.05)
            name = running[0].metadata.name
            healthy = await _sample(emb.executor_address, swarm_id)
            assert (healthy.resource_health_score, healthy.infra_unhealthy_signals) == (1.0, 0), healthy
            # The container was OOMKilled and runs again.
            _patch(admin_api, name, "Running", container(restarts=1, last=OOM))
            oom = await _sample(emb.executor_address, swarm_id)
            assert (oom.resource_health_score, oom.infra_unhealthy_signals) == (0.0, 3), oom
            assert "OOMKilled" in oom.detail and name in oom.detail
            # Then it keeps crashing.
            crashing = container(ready=False, restarts=3, last={"terminated": {"exitCode": 1, "reason": "Error"}},
                                 state={"running": None, "waiting": {"reason": "CrashLoopBackOff"}})
            _patch(admin_api, name, "Running", crashing)
            loop = await _sample(emb.executor_address, swarm_id)
            assert (round(loop.resource_health_score, 6), loop.infra_unhealthy_signals) == (0.1, 2), loop
            assert "CrashLoopBackOff" in loop.detail
            # Below the policy's min_resource_health_score (0.35): the controller counts it.
            assert loop.resource_health_score < 0.35
            # A subtask with no attempt running here has nothing to say of its resources.
            other = executor_pb2.SampleBranchRequest(swarm_id=swarm_id, subtask_id="other", repo_path="/nonexistent-repo",
                                                     branch=branch_name(swarm_id, "other"))
            async with grpc.aio.insecure_channel(emb.executor_address) as channel:
                none = (await executor_pb2_grpc.ExecutorServiceStub(channel).SampleBranch(other, timeout=30)).observation
            assert (none.resource_health_score, none.infra_unhealthy_signals) == (1.0, 0)
        finally:
            await client.cancel_subtask(swarm_id, "solo", reason="done with it")
            await client.wait(swarm_id)
