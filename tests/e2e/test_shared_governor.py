"""Two executor processes behind one orchestrator share one rate governor.

Two ``swarmd serve executor`` processes, each told the fake server's URL
through ``SWARMD_EXECUTOR__OPTIONS`` (the server allows a fixed number of
calls per second and states its limit only on a 429), serve one in-process orchestrator whose
``executor_address`` lists both (round-robin). Every sub-agent, whichever
process runs it, asks the orchestrator for a permit before each model call,
so the swarm-wide governor of the one (provider, base URL, model, key) counts
the calls of both processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, RateLimit, agent_responder

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import build_service
from swarmd.plugins.manager import load_plugins
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

SWARMD = str(Path(sys.executable).with_name("swarmd"))
SUBTASKS = 24
PER_SECOND = 12
TAG = re.compile(r"served-by=(\w+)")


class ExecutorProcess:
    """``swarmd serve executor`` in its own process, output to a file (no pipe to drain)."""

    def __init__(self, name: str, log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [SWARMD, "serve", "executor", "--listen", "127.0.0.1:0"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                cwd=log.parent,
            )
        self.address = ""

    async def wait_listening(self, timeout: float = 30.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                match = re.search(r"listening on (\S+)", self.log.read_text())
                if match:
                    self.address = match.group(1)
                    return self.address
                if self.proc.poll() is not None:
                    raise AssertionError(f"executor {self.name} exited: {self.log.read_text()}")
                await asyncio.sleep(0.05)

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return await asyncio.to_thread(self.proc.wait)


@contextlib.asynccontextmanager
async def orchestrator_and_store(tmp_path: Path, executor_target: str) -> AsyncIterator[str]:
    """An orchestrator and a result store in this process; yields the orchestrator's address."""
    settings = Settings()
    settings.result_store.listen = "127.0.0.1:0"
    settings.result_store.db_path = tmp_path / "store.db"
    settings.orchestrator.listen = "127.0.0.1:0"
    settings.orchestrator.journal_path = tmp_path / "orchestrator-journal.db"
    plugins = load_plugins()
    hosts = []
    try:
        store, _ = await build_service("result-store", settings, plugins)
        hosts.append(store)
        await store.start()
        settings.orchestrator.result_store_address = store.address
        settings.orchestrator.executor_address = executor_target
        orchestrator, _ = await build_service("orchestrator", settings, plugins)
        hosts.append(orchestrator)
        await orchestrator.start()
        yield orchestrator.address
    finally:
        for host in reversed(hosts):
            await host.stop(1.0)


def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    if turn.turn == 1:
        return [("bash", {"command": 'echo "served-by=$EXECUTOR_TAG"'})]
    return None


def finish(turn: AgentTurn) -> str:
    match = TAG.search(turn.tool_results[-1]) if turn.tool_results else None
    return f"{turn.subtask_id} ran on {match.group(1) if match else 'nobody'}"


async def test_two_executor_processes_share_one_governor(tmp_path: Path, git_repo: Path) -> None:
    async with FakeOpenAIServer() as server:
        server.rate_limit = RateLimit(requests=PER_SECOND, window=1.0, headers_on_success=False)
        server.fallback = agent_responder(act, finish)
        options = json.dumps({"provider.base_url": server.base_url, "provider.api_key": "shared-key"})
        executors = [
            ExecutorProcess(name, tmp_path / f"executor-{name}.log", {"SWARMD_EXECUTOR__OPTIONS": options, "EXECUTOR_TAG": name})
            for name in ("alpha", "beta")
        ]
        try:
            addresses = [await e.wait_listening() for e in executors]
            target = "ipv4:" + ",".join(addresses)
            async with orchestrator_and_store(tmp_path, target) as address, SwarmdClient(address) as client:
                plan = common_pb2.Plan(
                    subtasks=[
                        common_pb2.SubTask(id=f"probe-{i:02d}", instruction="Say which executor runs you.")
                        for i in range(SUBTASKS)
                    ]
                )
                reply = await client.submit(
                    task="Find out who runs each sub-agent",
                    plan=plan,
                    config=common_pb2.SwarmConfig(
                        model="openai/fake-model",
                        repo_path=str(git_repo),
                        request_delay_ms=0,
                        max_concurrent=SUBTASKS,
                        worktree_enabled=False,
                        cache_enabled=False,
                    ),
                )
                events = [e async for e in client.watch(reply.swarm.id)]
                swarm = await client.get(reply.swarm.id)
        finally:
            codes = [await e.stop() for e in executors]
    assert codes == [0, 0], "both executors shut down cleanly on SIGTERM"

    # The rate-limited swarm ran with zero failures.
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    assert swarm.stats.subagents_completed == SUBTASKS and swarm.stats.subagents_failed == 0
    assert {s.status for s in swarm.subtasks} == {common_pb2.SUB_TASK_STATUS_COMPLETED}

    # Both processes served sub-agents (each one's bash saw its own environment).
    ran_on = {s.subtask.id: s.result.result.rsplit(" ", 1)[-1] for s in swarm.subtasks}
    assert set(ran_on.values()) == {"alpha", "beta"}, ran_on
    outputs = [
        e.agent_tool_call_detail.output_preview for e in events if e.WhichOneof("kind") == "agent_tool_call_detail"
    ]
    assert len(outputs) == SUBTASKS
    assert {TAG.search(o).group(1) for o in outputs if TAG.search(o)} == {"alpha", "beta"}

    # One governor for the one key counted every request of both processes,
    # and every 429: the server states its limit only when it refuses, so the
    # sub-agents of both processes learnt it from the one governor.
    useful = 2 * SUBTASKS
    assert sum(1 for c in server.calls if c.status == 200) == useful
    assert 0 < server.rejected <= useful // 2
    [limits] = swarm.stats.rate_limits
    assert limits.key.startswith(f"openai|{server.base_url}|fake-model|")
    assert limits.total_requests == server.completions == useful + server.rejected
    assert limits.rate_limit_hits == server.rejected
    assert limits.in_flight == 0
    limited = [e.rate_limited for e in events if e.WhichOneof("kind") == "rate_limited" and e.rate_limited.http_status]
    assert len(limited) == server.rejected and {r.key for r in limited} == {limits.key}
    # Both processes sent the same API key, so their calls share the key's fingerprint.
    assert {r.headers.get("authorization") for r in server.requests} == {"Bearer shared-key"}
