"""A swarm end to end with authentication on: a client token submits a
demo-like plan (the local executor, git worktrees, the fake OpenAI-compatible
model server), the sub-agents reach the orchestrator and the store with the
subagent tokens minted for their attempts, and another tenant sees nothing."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from fakes.auth_world import make_world, serve_with_auth, token_of
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, agent_responder

from swarmd.clients.client import SwarmdClient
from swarmd.clients.errors import SwarmdClientError
from swarmd.services.auth.identity import Identity
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)


def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    if turn.turn == 1:
        return [("write", {"path": f"src/{turn.subtask_id}.py", "content": f"# {turn.subtask_id}\n"})]
    return None


async def test_client_token_runs_a_swarm_that_only_its_tenant_sees(
    tmp_path: Path, git_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path / "auth")
    plan = common_pb2.Plan(
        subtasks=[
            common_pb2.SubTask(id="ops", name="ops", instruction="Write the ops module."),
            common_pb2.SubTask(id="cli", name="cli", instruction="Write the cli module.", dependencies=["ops"]),
        ]
    )
    async with FakeOpenAIServer() as server:
        server.fallback = agent_responder(act)
        options = {"provider.base_url": server.base_url, "provider.api_key": "k"}
        async with serve_with_auth(world, tmp_path, **options) as services:
            seen: list[Identity] = []
            tokens: list[str] = []
            for kind in ("orchestrator", "result-store"):
                authenticator = services.hosts[kind].authenticator
                assert authenticator is not None and authenticator.subagents is not None
                verify = authenticator.subagents.verify

                def counting(token: str, verify: Any = verify) -> Identity:
                    identity: Identity = verify(token)
                    seen.append(identity)
                    tokens.append(token)
                    return identity

                authenticator.subagents.verify = counting  # type: ignore[method-assign]
            caplog.set_level(logging.INFO, logger="swarmd.services.auth")
            async with SwarmdClient(services.orchestrator_address, token=token_of("alice")) as alice:
                reply = await alice.submit(
                    task="Write two modules",
                    plan=plan,
                    config=common_pb2.SwarmConfig(
                        model="openai/fake-model", repo_path=str(git_repo), request_delay_ms=0, executor="local"
                    ),
                )
                events = [e async for e in alice.watch(reply.swarm.id)]
                swarm = await alice.get(reply.swarm.id)
                listed = await alice.list()
            async with SwarmdClient(services.orchestrator_address, token=token_of("bob")) as bob:
                with pytest.raises(SwarmdClientError) as info:
                    await bob.get(reply.swarm.id)
                assert info.value.code.name == "NOT_FOUND"
                with pytest.raises(SwarmdClientError) as info:
                    await bob.cancel(reply.swarm.id)
                assert info.value.code.name == "NOT_FOUND"
                assert [s.id for s in (await bob.list()).swarms] == []
            async with SwarmdClient(services.orchestrator_address, token="") as anonymous:
                with pytest.raises(SwarmdClientError) as info:
                    await anonymous.get(reply.swarm.id)
                assert info.value.code.name == "UNAUTHENTICATED"

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, (swarm.error, [s.result.error for s in swarm.subtasks])
    assert swarm.tenant == "tenant-a"
    assert [s.id for s in listed.swarms] == [reply.swarm.id]
    assert (git_repo / "src" / "ops.py").exists() and (git_repo / "src" / "cli.py").exists()
    assert events[-1].WhichOneof("kind") == "complete"
    # Each sub-agent called in with its own attempt's token, and nothing was refused.
    assert {(i.swarm_id, i.subtask_id) for i in seen} == {(reply.swarm.id, "ops"), (reply.swarm.id, "cli")}
    assert {i.tenant for i in seen} == {"tenant-a"}
    # Short-lived, but never shorter than the subtask may run (3600 s by default).
    lifetimes = {json.loads(base64.urlsafe_b64decode(t.split(".")[1] + "==="))["exp"] - time.time() for t in tokens}
    assert all(3600 < left <= 3600 + 300 for left in lifetimes), lifetimes
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and all("credentials are required" in line for line in refused), refused  # the anonymous call


async def test_an_attempt_forwarded_to_another_executor_keeps_its_token(tmp_path: Path, git_repo: Path) -> None:
    """The remote plugin forwards the attempt under its subagent token: the
    far executor accepts it for that subtask, and the sub-agent running there
    reaches the orchestrator and the store with it."""
    from fakes.auth_world import settings_for

    from swarmd.clients.launcher import build_service
    from swarmd.plugins.manager import load_plugins

    world = make_world(tmp_path / "auth")
    hosts = []
    async with FakeOpenAIServer() as server:
        server.fallback = agent_responder(act)
        try:
            settings = settings_for(world, **{"provider.base_url": server.base_url, "provider.api_key": "k"})
            settings.result_store.db_path = tmp_path / "store.db"
            settings.orchestrator.journal_path = None
            plugins = load_plugins(env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": "kubernetes"})
            store, _ = await build_service("result-store", settings, plugins)
            hosts.append(store)
            await store.start()
            far, _ = await build_service("executor", settings, plugins)
            hosts.append(far)
            await far.start()
            assert far.authenticator is not None and far.authenticator.subagents is not None
            verify, forwarded = far.authenticator.subagents.verify, []

            def counting(token: str) -> Identity:
                identity = verify(token)
                forwarded.append((identity.swarm_id, identity.subtask_id))
                return identity

            far.authenticator.subagents.verify = counting  # type: ignore[method-assign]
            near_settings = settings.model_copy(deep=True)
            near_settings.executor.default_executor = "remote"
            near_settings.executor.options = {"remote_address": far.address, "remote_executor": "local"}
            near, _ = await build_service("executor", near_settings, plugins)
            hosts.append(near)
            await near.start()
            settings.orchestrator.result_store_address = store.address
            settings.orchestrator.executor_address = near.address
            orchestrator, _ = await build_service("orchestrator", settings, plugins)
            hosts.append(orchestrator)
            await orchestrator.start()
            async with SwarmdClient(orchestrator.address, token=token_of("alice")) as alice:
                reply = await alice.submit(
                    task="Write one module",
                    plan=common_pb2.Plan(subtasks=[common_pb2.SubTask(id="ops", name="ops", instruction="Write ops.")]),
                    config=common_pb2.SwarmConfig(model="openai/fake-model", repo_path=str(git_repo), request_delay_ms=0),
                )
                swarm = await alice.wait(reply.swarm.id)
        finally:
            for host in reversed(hosts):
                await host.stop(0)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, (swarm.error, [s.result.error for s in swarm.subtasks])
    assert (git_repo / "src" / "ops.py").exists()
    # The far executor was called with the attempt's token, for that subtask only.
    assert forwarded and set(forwarded) == {(reply.swarm.id, "ops")}
