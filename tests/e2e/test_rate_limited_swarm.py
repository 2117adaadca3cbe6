"""A 50-sub-agent swarm against a rate-limited OpenAI-compatible server.

The loopback server allows a fixed number of chat completions per second and
answers 429 (with ``x-ratelimit-*``, ``retry-after`` and ``retry-after-ms``)
beyond that. Every sub-agent asks the orchestrator's rate governor before
each call, so the swarm finishes without a failed subtask, and once the
governor has learnt the limit the server sees few further 429s. Two kinds of
server: one that states its budget on every response (as OpenAI does), and
one that says anything only when it refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, RateLimit, agent_responder

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

AGENTS = 50
PER_SECOND = 20
CALLS_PER_AGENT = 3  # list ".", read README.md, then the final answer


def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    if turn.turn == 1:
        return [("list", {"path": "."})]
    if turn.turn == 2:
        return [("read", {"path": "README.md"})]
    return None


def read_only_plan(n: int) -> common_pb2.Plan:
    return common_pb2.Plan(
        subtasks=[
            common_pb2.SubTask(id=f"look-{i:02d}", instruction=f"Inspect the repository (part {i}).", read_only=True)
            for i in range(n)
        ]
    )


def settings_for(server: FakeOpenAIServer) -> Settings:
    settings = Settings()
    settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
    return settings


@pytest.mark.parametrize("headers_on_success", [True, False], ids=["headers-always", "headers-on-429-only"])
async def test_fifty_agents_share_a_rate_limited_key(tmp_path: Path, git_repo: Path, headers_on_success: bool) -> None:
    async with FakeOpenAIServer() as server:
        server.rate_limit = RateLimit(requests=PER_SECOND, window=1.0, headers_on_success=headers_on_success)
        server.fallback = agent_responder(act)
        async with EmbeddedSwarmd(settings_for(server), db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Inspect the repository",
                plan=read_only_plan(AGENTS),
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(git_repo),
                    request_delay_ms=0,
                    max_concurrent=AGENTS,
                    cache_enabled=False,
                ),
            )
            events = [e async for e in client.watch(reply.swarm.id)]
            swarm = await client.get(reply.swarm.id)

    # The swarm succeeded and no subtask failed: a 429 is never a failure.
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    assert len(swarm.subtasks) == AGENTS
    assert {s.status for s in swarm.subtasks} == {common_pb2.SUB_TASK_STATUS_COMPLETED}
    assert swarm.stats.subagents_completed == AGENTS and swarm.stats.subagents_failed == 0
    assert swarm.stats.retries == 0, "a 429 must not use up a retry"
    for state in swarm.subtasks:
        assert state.result.result == f"{state.subtask.id} done"
        assert state.result.steps == CALLS_PER_AGENT and state.result.tool_calls == CALLS_PER_AGENT - 1

    # Every useful call was served exactly once; every other call was a 429.
    useful = AGENTS * CALLS_PER_AGENT
    assert sum(1 for c in server.calls if c.status == 200) == useful
    assert {c.status for c in server.calls} <= {200, 429}
    rejected = server.rejected
    assert rejected <= useful // 4, f"{rejected} 429s for {useful} useful calls"
    if not headers_on_success:
        assert rejected > 0, "the server only says its limit on a 429: the governor must have met some"

    # Once the governor has settled, the server sees few further 429s: the
    # second half of the calls meets far fewer than the first, the last
    # quarter hardly any. That holds when the server states its budget on
    # every response (as OpenAI, Anthropic and IETF servers do). When it
    # speaks only on its 429s the governor can only learn from 429s, and it
    # keeps probing at about one call in ten: bounded above, not settling.
    if headers_on_success:
        calls = server.calls
        early = sum(1 for c in calls[: len(calls) // 2] if c.status == 429)
        late = sum(1 for c in calls[len(calls) // 2 :] if c.status == 429)
        last = sum(1 for c in calls[3 * len(calls) // 4 :] if c.status == 429)
        assert late <= 3 or 2 * late <= early, f"429s: {early} in the first half of the calls, {late} in the second"
        assert last <= 3, f"{last} 429s in the last quarter of the calls"

    # The swarm's statistics report the key's requests and 429s, as the server counted them.
    [limits] = swarm.stats.rate_limits
    assert limits.key.startswith(f"openai|{server.base_url}|fake-model|")
    assert limits.total_requests == server.completions
    assert limits.rate_limit_hits == rejected
    assert limits.in_flight == 0
    assert limits.concurrency_limit >= 1
    assert limits.remaining_requests >= 0, "the server's x-ratelimit-remaining-requests was read"

    # The sub-agents reported each 429 they met in their event streams.
    limited = [e for e in events if e.WhichOneof("kind") == "rate_limited" and e.rate_limited.http_status == 429]
    assert len(limited) == rejected
    assert {e.rate_limited.key for e in limited} <= {limits.key}


# A server (or the proxy in front of it) whose served responses describe a
# generous six-minute window while its refusals describe the small one it
# really enforces: two windows' figures that disagree on every count.
DISAGREEING_SUCCESS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6m0s",
}
DISAGREEING_REFUSAL = {
    "retry-after": "1",
    "x-ratelimit-limit-requests": "240",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "1s",
}


def two_tool_calls(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    if turn.turn <= 2:
        return [("list", {"path": "."})]
    return None


async def test_headers_that_disagree_do_not_stall_the_swarm(tmp_path: Path, git_repo: Path) -> None:
    """16 sub-agents, 2 tool calls each, a server allowing 4 calls a second.

    The test's timeout bounds the run generously; before the governor let
    the newer figures of a window replace older ones, the swarm stalled for
    six minutes after its first 429.
    """
    agents = 16
    async with FakeOpenAIServer() as server:
        server.rate_limit = RateLimit(
            requests=4,
            window=1.0,
            success_headers=DISAGREEING_SUCCESS,
            refusal_headers=DISAGREEING_REFUSAL,
        )
        server.fallback = agent_responder(two_tool_calls)
        async with EmbeddedSwarmd(settings_for(server), db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Inspect the repository",
                plan=read_only_plan(agents),
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(git_repo),
                    request_delay_ms=0,
                    max_concurrent=agents,
                    cache_enabled=False,
                ),
            )
            events = [e async for e in client.watch(reply.swarm.id)]
            swarm = await client.get(reply.swarm.id)

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    assert [s.status for s in swarm.subtasks] == [common_pb2.SUB_TASK_STATUS_COMPLETED] * agents
    assert swarm.stats.subagents_failed == 0 and swarm.stats.retries == 0
    for state in swarm.subtasks:
        assert state.result.result == f"{state.subtask.id} done"
        assert state.result.tool_calls == 2
    assert sum(1 for c in server.calls if c.status == 200) == agents * 3
    assert server.rejected >= 1, "the server must have refused some calls for the test to mean anything"
    # No pause of the governor exceeded its ceiling here: the 429s' own
    # Retry-After (1 s) bounded every one, so nothing needed a warning.
    warnings = [e.warning for e in events if e.WhichOneof("kind") == "warning"]
    assert not [w for w in warnings if w.code.startswith("rate_limit")], warnings
