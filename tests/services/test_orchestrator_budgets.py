"""Budgets enforced before the spend: tool calls, tokens and cost."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.fake_scripted_provider import ScriptedProvider
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.v1 import common_pb2, coordinator_pb2

PRICES = {
    "fake/scripted": {"prompt_per_mtok": 1_000_000.0, "completion_per_mtok": 1_000_000.0}
}  # $1 a token


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path, orchestrator_settings={"prices": PRICES}) as served:
        yield served


async def run(services, *subtasks, **config):  # type: ignore[no-untyped-def]
    reply = await services.submit(plan=plan(*subtasks), config=fast_config(**config))
    swarm = await wait_terminal(services, reply.swarm.id, timeout=30)
    return swarm, {s.subtask.id: s for s in swarm.subtasks}


async def test_tool_call_budget_refuses_the_next_call_and_keeps_finished_work(services) -> None:  # type: ignore[no-untyped-def]
    swarm, states = await run(
        services,
        subtask("a", tool_calls=4, reserve=True),
        subtask("b", "a", tool_calls=4, steps=2, reserve=True),
        subtask("c", "b"),
        max_total_tool_calls=5,
        dependency_failure_policy=common_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
    )
    assert states["a"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert states["a"].result.result == "output of a"
    b = states["b"]
    assert b.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert b.result.failure_kind == common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED
    assert "swarm tool-call budget exhausted: 5 of 5 used, 1 more requested" in b.status_reason
    assert b.result.tool_calls == 1 and b.result.retry_count == 0
    c = states["c"]
    assert c.status == common_pb2.SUB_TASK_STATUS_FAILED and "not started" in c.status_reason
    assert JOURNAL.for_subtask("c") == []
    assert swarm.stats.total_tool_calls == 5
    warnings = [e.warning for e in await services.events(swarm.id) if e.HasField("warning")]
    assert [w.code for w in warnings] == ["budget_exhausted"] and warnings[0].subtask_id == "b"


async def test_swarm_token_budget_refuses_the_permit(services) -> None:  # type: ignore[no-untyped-def]
    _, states = await run(
        services, subtask("a", steps=5, tokens=10, permits=True), max_total_tokens=25
    )
    a = states["a"]
    assert a.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert a.result.failure_kind == common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED
    assert a.result.steps == 2
    assert (
        "swarm token budget exhausted" in a.status_reason
        and "20 tokens of 25 tokens used, this call may use up to 10 tokens more" in a.status_reason
    )
    request = JOURNAL.for_subtask("a")[0].request
    assert request.max_tokens == 25


async def test_per_subtask_token_budget(services) -> None:  # type: ignore[no-untyped-def]
    swarm, states = await run(
        services,
        subtask("a", steps=3, tokens=10, permits=True),
        subtask("b", steps=3, tokens=10, permits=True),
        max_tokens_per_subtask=20,
    )
    for sid in "ab":
        assert states[sid].result.steps == 2
        assert "subtask token budget exhausted" in states[sid].status_reason
    assert swarm.stats.usage.total_tokens == 40


async def test_cost_budget_per_subtask_and_swarm(services) -> None:  # type: ignore[no-untyped-def]
    _, states = await run(
        services, subtask("a", steps=4, tokens=10, permits=True), max_cost_per_subtask_usd=25
    )
    assert states["a"].result.steps == 2
    assert "subtask cost budget exhausted" in states["a"].status_reason
    request = JOURNAL.for_subtask("a")[0].request
    assert request.max_cost_usd == 25

    _, states = await run(
        services,
        subtask("x", steps=2, tokens=10, permits=True),
        subtask("y", "x", steps=2, tokens=10, permits=True),
        max_cost_usd=20,
    )
    assert states["x"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert states["y"].status == common_pb2.SUB_TASK_STATUS_FAILED
    assert "not started: swarm cost budget exhausted" in states["y"].status_reason


async def test_rate_limit_stats_reach_the_swarm_stats(services) -> None:  # type: ignore[no-untyped-def]
    swarm, _ = await run(services, subtask("a", steps=3, permits=True))
    (stats,) = swarm.stats.rate_limits
    assert stats.key == "fake||scripted|" and stats.total_requests == 3


async def test_budget_rpc_errors(services) -> None:  # type: ignore[no-untyped-def]
    stub = services.coordinator

    async def code_of(coro) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await coro
        return info.value.code()

    assert (
        await code_of(
            stub.ReserveBudget(
                coordinator_pb2.ReserveBudgetRequest(
                    swarm_id="nope", subtask_id="a", tool_calls=1
                ),
                timeout=5,
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code_of(
            stub.ReserveBudget(
                coordinator_pb2.ReserveBudgetRequest(swarm_id="s", subtask_id="a", tool_calls=-1),
                timeout=5,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code_of(
            stub.AcquirePermit(coordinator_pb2.AcquirePermitRequest(swarm_id="s"), timeout=5)
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code_of(stub.ReportOutcome(coordinator_pb2.ReportOutcomeRequest(), timeout=5))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    reply = await services.submit(plan=plan(subtask("a", duration_ms=300)), config=fast_config())
    key = coordinator_pb2.RateLimitKey(provider="fake", model="scripted")
    assert (
        await code_of(
            stub.AcquirePermit(
                coordinator_pb2.AcquirePermitRequest(
                    key=key, swarm_id=reply.swarm.id, subtask_id="ghost"
                ),
                timeout=5,
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    left = await stub.ReserveBudget(
        coordinator_pb2.ReserveBudgetRequest(
            swarm_id=reply.swarm.id, subtask_id="a", tool_calls=10
        ),
        timeout=5,
    )
    assert left.tool_calls_remaining == 1490
    await wait_terminal(services, reply.swarm.id)
    assert await code_of(
        stub.ReserveBudget(
            coordinator_pb2.ReserveBudgetRequest(
                swarm_id=reply.swarm.id, subtask_id="a", tool_calls=1
            ),
            timeout=5,
        )
    ) in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)


async def test_reported_cost_includes_every_sub_agent_call_and_the_decomposition(
    tmp_path: Path,
) -> None:
    """Sub-agents that know no prices report cost 0; the orchestrator prices
    their calls from its table, and the swarm's cost is the sum of all."""
    prices = {
        **PRICES,
        # The decomposition model: 100 prompt + 50 completion tokens -> $0.2.
        "scripted/planner": {"prompt_per_mtok": 1000.0, "completion_per_mtok": 2000.0},
    }
    ScriptedProvider.script(
        '{"subtasks": ['
        '{"name": "One", "instruction": "first fake.permits=true fake.steps=2 fake.tokens=3"},'
        '{"name": "Two", "instruction": "second fake.permits=true fake.steps=1 fake.tokens=5",'
        ' "dependencies": ["One"]}]}'
    )
    async with serve_swarm_services(tmp_path, orchestrator_settings={"prices": prices}) as services:
        reply = await services.submit(task="Two priced steps", config=fast_config())
        swarm = await wait_terminal(services, reply.swarm.id, timeout=30)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    costs = {s.subtask.id: s.result.cost_usd for s in swarm.subtasks}
    assert costs == {"one": pytest.approx(6.0), "two": pytest.approx(5.0)}  # $1 a token
    assert swarm.stats.cost_usd == pytest.approx(0.2 + 6.0 + 5.0)
