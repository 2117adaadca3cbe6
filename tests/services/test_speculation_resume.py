"""A race whose winner was decided just before its orchestrator stopped:
resumed, the winner alone runs again and wins again, the others stay losers
without running again (real services, the scripted fake executor)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.services.orchestrator.peers import StoreClient
from swarmd.services.result_store.testing import serve_result_store
from swarmd.v1 import common_pb2, coordinator_pb2, orchestrator_pb2

pytestmark = pytest.mark.timeout(60)

COMMIT = "a" * 40


async def test_a_race_decided_before_the_stop_resumes_with_its_winner_only(tmp_path: Path, git_repo: Path) -> None:
    sub = subtask("a", hang_attempts=1)
    sub.speculate = 3
    config = fast_config(worktree_enabled=True, repo_path=str(git_repo))
    async with serve_result_store(tmp_path / "durable.db") as store:
        async with serve_swarm_services(tmp_path, store_address=store.address) as first:
            swarm_id = (await first.submit(plan=plan(sub), config=config)).swarm.id
            for _ in range(500):
                if len({a.subtask_id for a in JOURNAL.attempts}) == 3:
                    break
                await asyncio.sleep(0.01)
            won = await first.coordinator.ClaimVariant(
                coordinator_pb2.ClaimVariantRequest(swarm_id=swarm_id, subtask_id="a.variant-2", commit=COMMIT),
                timeout=10,
            )
            assert won.outcome == coordinator_pb2.CLAIM_OUTCOME_WON
        async with grpc.aio.insecure_channel(store.address) as channel:
            stored = await StoreClient(channel, 5).load_swarm(swarm_id)
        assert stored.state == common_pb2.SWARM_STATE_INTERRUPTED
        assert [v.winner for v in stored.subtasks[0].variants] == [False, True, False]
        async with serve_swarm_services(tmp_path, store_address=store.address) as second:
            await second.stub.ResumeSwarm(orchestrator_pb2.ResumeSwarmRequest(swarm_id=swarm_id), timeout=10)
            swarm = await wait_terminal(second, swarm_id)
            # Only the winner ran again.
            assert {a.subtask_id for a in JOURNAL.attempts} == {"a.variant-2"}
            events = await second.events(swarm_id)
    feature = swarm.subtasks[0]
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, feature.status_reason
    assert feature.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    variants = {v.variant: v for v in feature.variants}
    assert variants[2].winner and variants[2].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    for n in (1, 3):
        assert not variants[n].winner
        assert variants[n].status == common_pb2.SUB_TASK_STATUS_CANCELLED, variants[n]
        assert variants[n].reason.startswith("speculative_loser: variant 2"), variants[n].reason
    # Decided once, counted once.
    assert sum(e.HasField("speculation_decided") for e in events) == 1
    assert (swarm.stats.collapse.speculative_wins, swarm.stats.collapse.speculative_losers) == (1, 2)
