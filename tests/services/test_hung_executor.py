"""An executor plugin that ignores cancel and hangs does not hold its subtask past
the subtask's timeout, and the swarm around it finishes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.plugins import Executor, hookimpl
from swarmd.v1 import common_pb2, executor_pb2

pytestmark = pytest.mark.timeout(60)

HUNG: list[str] = []


class HungExecutor(Executor):
    """Starts, then waits forever: its cancel does nothing and it swallows cancellation."""

    name = "hangs"

    async def submit(self, request):  # type: ignore[no-untyped-def,override]
        HUNG.append(request.subtask.id)
        yield executor_pb2.ExecuteSubTaskResponse(
            event=common_pb2.SwarmEvent(
                swarm_id=request.swarm_id,
                agent_started=common_pb2.AgentStarted(subtask_id=request.subtask.id, agent_name="h"),
            )
        )
        for _ in range(3):  # stubborn, though not immortal: the test's loop must close
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def cancel(self, swarm_id: str, subtask_id: str, reason: str = "") -> bool:
        return True  # says yes, does nothing


class HungPlugin:
    @hookimpl
    def swarmd_register_executors(self, registry: Any) -> None:
        registry.add(HungExecutor)


async def test_a_hung_executor_is_left_behind_at_the_subtask_timeout(tmp_path: Path) -> None:
    HUNG.clear()
    async with serve_swarm_services(tmp_path, extra_plugins=[HungPlugin()]) as services:
        reply = await services.submit(
            plan=plan(subtask("stuck")),
            config=fast_config(executor="hangs", subtask_timeout_secs=2, max_retries=0),
        )
        swarm = await wait_terminal(services, reply.swarm.id, timeout=30)
    assert HUNG == ["stuck"]
    (state,) = swarm.subtasks
    assert state.status == common_pb2.SUB_TASK_STATUS_TIMED_OUT
    assert "wall-clock timeout of 2s" in state.result.error
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
