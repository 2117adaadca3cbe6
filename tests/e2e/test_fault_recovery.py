"""Faults injected into the three services running as separate processes.

The harness (:mod:`fault_harness`) runs a 30-subtask swarm in three layers on
``swarmd serve`` processes; each test here kills a service at a seeded random
moment and asserts, through :func:`fault_harness.check`, that every subtask
completed, every file is on the branch, no subtask was merged twice, no
subtask finished before the fault ran again, no swarm is left RUNNING once
its orchestrator is gone, and the user's uncommitted work is untouched.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from fault_harness import LAYERS, SEED, TRIALS, Swarm, check, fake_model, finished, user_work

from benchmarks.processes import FakeModelProcess
from swarmd.v1 import common_pb2

__all__ = ["fake_model"]  # the module-scoped fixture, used by the tests below

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_orchestrator_killed_and_restarted(tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess, trial: int) -> None:
    rng = random.Random(SEED * 1000 + trial)
    mine = user_work(git_repo)
    swarm = Swarm(tmp_path, git_repo, fake_model)
    try:
        swarm.submit()
        time.sleep(rng.uniform(0.5, 4.0))
        swarm.orchestrator.kill()
        fault_at = time.time()
        before = finished(swarm.stored())
        time.sleep(rng.uniform(0.1, 1.5))
        swarm.orchestrator.start()
        final = swarm.wait_terminal()
        check(swarm, final, before, fault_at, mine)
        assert swarm.stored().state == common_pb2.SWARM_STATE_SUCCEEDED
    finally:
        swarm.close()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_store_down_then_orchestrator_killed(tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess, trial: int) -> None:
    rng = random.Random(SEED * 2000 + trial)
    mine = user_work(git_repo)
    swarm = Swarm(tmp_path, git_repo, fake_model)
    try:
        swarm.submit()
        time.sleep(rng.uniform(0.3, 2.0))
        swarm.store.kill()
        # The swarm goes on without its store until every subtask is merged.
        deadline = time.monotonic() + 120
        while sum(swarm.merges().values()) < sum(LAYERS):
            assert time.monotonic() < deadline, swarm.merges()
            time.sleep(0.2)
        swarm.store.start()
        time.sleep(1.0)
        swarm.orchestrator.kill()
        fault_at = time.time()
        before = set(swarm.merges())  # all of them: the branch says so
        swarm.orchestrator.start()
        final = swarm.wait_terminal()
        check(swarm, final, before, fault_at, mine)
        assert swarm.stored().state == common_pb2.SWARM_STATE_SUCCEEDED
    finally:
        swarm.close()
