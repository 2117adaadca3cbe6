"""Sub-agents in pods against services that authenticate: each pod fetches its
request and reports back with its attempt's subagent token, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_kubelet import FakeKubelet
from fakes.auth_world import make_world, settings_for, token_of
from kubernetes import client as k8s

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.auth.identity import Identity
from swarmd.v1 import common_pb2

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(180)]


async def test_pods_call_in_with_their_subagent_tokens(
    tmp_path: Path, calc_repo: Path, demo_model: str, kubelet: FakeKubelet,
    executor_options: dict[str, str], admin_api: k8s.ApiClient,
) -> None:
    world = make_world(tmp_path / "auth")
    settings = settings_for(world, **executor_options)
    settings.executor.default_executor = "kubernetes"
    plan = common_pb2.Plan(subtasks=[common_pb2.SubTask(id="parser", name="parser", instruction="Write the parser.")])
    config = common_pb2.SwarmConfig(model=demo_model, repo_path=str(calc_repo), request_delay_ms=0, executor="kubernetes")
    async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb:
        authenticator = emb.hosts["result-store"].authenticator
        assert authenticator is not None and authenticator.subagents is not None
        verify, seen = authenticator.subagents.verify, []

        def counting(token: str) -> Identity:
            identity = verify(token)
            seen.append((identity.swarm_id, identity.subtask_id))
            return identity

        authenticator.subagents.verify = counting  # type: ignore[method-assign]
        async with SwarmdClient(emb.orchestrator_address, token=token_of("alice")) as client:
            reply = await client.submit(task="Write the parser", plan=plan, config=config)
            swarm = await client.wait(reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, (swarm.error, [s.result.error for s in swarm.subtasks])
    assert len(kubelet.started) == 1
    assert (calc_repo / "src" / "calc" / "parser.py").exists()
    # The pod fetched its request, relayed its events and published its outcome
    # with the token of its own attempt (the store refuses calls without one).
    assert set(seen) == {(reply.swarm.id, "parser")} and len(seen) >= 3
