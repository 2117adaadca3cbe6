"""A swarm whose sub-agents all run as pods, on a real API server, with their work merged back."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_kubelet import FakeKubelet
from helpers import git
from kube_cluster import NAMESPACE
from kubernetes import client as k8s

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.clients.plan_files import load_plan
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(180)]


def settings(options: dict[str, str]) -> Settings:
    s = Settings()
    s.executor.default_executor = "kubernetes"
    s.executor.options = dict(options)
    return s


async def run_plan(emb: EmbeddedSwarmd, plan_path: Path, repo: Path, model: str, **kw):  # type: ignore[no-untyped-def]
    plan, task = load_plan(plan_path)
    config = common_pb2.SwarmConfig(model=model, repo_path=str(repo), request_delay_ms=0, executor="kubernetes", **kw)
    async with SwarmdClient(emb.orchestrator_address) as client:
        reply = await client.submit(task=task, plan=plan, config=config)
        events = [e async for e in client.watch(reply.swarm.id)]
        swarm = await client.get(reply.swarm.id)
    return swarm, events


def pods(admin_api: k8s.ApiClient, executor_id: str) -> list[k8s.V1Pod]:
    return k8s.CoreV1Api(admin_api).list_namespaced_pod(
        NAMESPACE, label_selector=f"swarmd.dev/executor={executor_id}").items


async def test_demo_swarm_runs_in_pods_and_merges_back(
    tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str, kubelet: FakeKubelet,
    executor_options: dict[str, str], admin_api: k8s.ApiClient, executor_id: str,
) -> None:
    options = {**executor_options, "k8s_pod_budget": "2"}
    async with EmbeddedSwarmd(settings(options), db_path=tmp_path / "db.sqlite") as emb:
        swarm, events = await run_plan(emb, demo_plan, calc_repo, demo_model)

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, (swarm.error, [s.result.error for s in swarm.subtasks])
    assert {s.subtask.id: s.status for s in swarm.subtasks} == dict.fromkeys(
        ["ops", "parser", "cli", "review", "docs"], common_pb2.SUB_TASK_STATUS_COMPLETED)
    # Every sub-agent ran in a pod of its own (the kubelet ran exactly those), none ran locally.
    assert len(kubelet.started) == 5
    starts = [e.agent_started for e in events if e.WhichOneof("kind") == "agent_started"]
    assert {s.executor.split(":")[0] for s in starts} == {"kubernetes"}
    # The work came back into the user's branch, through the same merge as local sub-agents.
    tree = git(calc_repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert {"src/calc/ops.py", "src/calc/parser.py", "src/calc/cli.py"} <= set(tree)
    assert "## Usage" in (calc_repo / "README.md").read_text()
    merges = [m for m in git(calc_repo, "log", "--merges", "--format=%s").splitlines() if m.endswith("into main")]
    assert len(merges) == 4
    # The budget held, as the API server saw it, and nothing was left behind.
    assert 1 <= kubelet.max_live <= 2
    assert pods(admin_api, executor_id) == []
    outcomes = [e.agent_message.content for e in events
                if e.WhichOneof("kind") == "agent_message" and e.agent_message.role == "kubernetes"]
    assert sum("Succeeded" in o for o in outcomes) == 5
