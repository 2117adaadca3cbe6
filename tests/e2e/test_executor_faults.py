"""The executor service killed in the middle of a swarm, then started again.

The harness (:mod:`fault_harness`) runs a 30-subtask swarm in three layers on
``swarmd serve`` processes. Each test SIGKILLs the executor at a seeded random
moment and starts it again on the same address, 1 s later or after a longer
outage (``SWARMD_EXECUTOR_OUTAGE_SECS``, default 8 s). Besides
:func:`fault_harness.check` (30/30 completed, every file on the branch, no
double merge, no finished subtask re-run, the user's files untouched), the
swarm must have said it was waiting for the executor, no subtask may have
failed or spent a retry on the outage, and the attempts the dead executor
was running go on in their kept worktrees (no second worktree per subtask,
none left behind).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import grpc
import pytest
from fault_harness import SEED, TRIALS, Swarm, check, finished, user_work
from helpers import git

from benchmarks.processes import FakeModelProcess
from swarmd.v1 import common_pb2, result_store_pb2, result_store_pb2_grpc

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

OUTAGE_SECS = float(os.environ.get("SWARMD_EXECUTOR_OUTAGE_SECS", "8"))


def events(swarm: Swarm) -> list[common_pb2.SwarmEvent]:
    """Every stored event of the swarm."""
    out: list[common_pb2.SwarmEvent] = []
    with grpc.insecure_channel(swarm.store.address) as channel:
        stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        while True:
            after = out[-1].sequence if out else 0
            reply = stub.ReadEvents(
                result_store_pb2.ReadEventsRequest(swarm_id=swarm.id, after_sequence=after, limit=10000),
                timeout=30,
            )
            out.extend(reply.events)
            if not reply.events or out[-1].sequence >= reply.last_sequence:
                return out


def wait_running(swarm: Swarm, rng: random.Random) -> None:
    """Until some subtasks run (so the kill hits attempts in flight), plus a random moment."""
    deadline = time.monotonic() + 60
    while not any(s.status == common_pb2.SUB_TASK_STATUS_RUNNING for s in swarm.stored().subtasks):
        assert time.monotonic() < deadline, "no subtask started"
        time.sleep(0.1)
    time.sleep(rng.uniform(0.2, 3.0))


def check_outage(swarm: Swarm, final: common_pb2.Swarm, *, expect_waiting: bool) -> None:
    """The outage was waited out: said so, and cost no subtask a failure or a retry."""
    log = events(swarm)
    warnings = [e.warning for e in log if e.WhichOneof("kind") == "warning"]
    codes = {w.code for w in warnings}
    assert codes & {"executor_unavailable", "executor_lost_attempt", "executor_reattached"}, codes
    if expect_waiting:
        waiting = [w for w in warnings if w.code == "executor_unavailable"]
        assert waiting and all("waiting" in w.message for w in waiting), warnings
    errors = [e.agent_error for e in log if e.WhichOneof("kind") == "agent_error"]
    assert not errors, errors
    retries = [e.retry_scheduled for e in log if e.WhichOneof("kind") == "retry_scheduled"]
    assert not retries, retries
    assert all(s.attempt == 1 for s in final.subtasks), [(s.subtask.id, s.attempt) for s in final.subtasks]
    # The dead executor's attempts went on in their worktrees: no `<subtask>@2`
    # was made beside them, and none is left once everything is merged.
    worktrees = git(swarm.repo, "worktree", "list", "--porcelain")
    left = [line for line in worktrees.splitlines() if line.startswith("worktree ") and swarm.id in line]
    assert not left, worktrees


def run_trial(tmp_path: Path, repo: Path, fake: FakeModelProcess, rng: random.Random, down_secs: float) -> None:
    mine = user_work(repo)
    swarm = Swarm(tmp_path, repo, fake)
    try:
        swarm.submit()
        wait_running(swarm, rng)
        swarm.executor.kill()
        fault_at = time.time()
        before = finished(swarm.stored())
        time.sleep(down_secs)
        swarm.executor.start()
        final = swarm.wait_terminal(timeout=150 + down_secs)
        check(swarm, final, before, fault_at, mine)
        check_outage(swarm, final, expect_waiting=down_secs >= 2)
    finally:
        swarm.close()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_executor_killed_and_restarted(tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess, trial: int) -> None:
    run_trial(tmp_path, git_repo, fake_model, random.Random(SEED * 3000 + trial), 1.0)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_executor_down_for_an_outage(tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess, trial: int) -> None:
    run_trial(tmp_path, git_repo, fake_model, random.Random(SEED * 4000 + trial), OUTAGE_SECS)
