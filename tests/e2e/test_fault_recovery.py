"""Faults injected into the three services running as separate processes.

The harness (:mod:`fault_harness`) runs a 30-subtask swarm in three layers on
``swarmd serve`` processes; each test here kills a service at a seeded random
moment and asserts, through :func:`fault_harness.check`, that every subtask
completed, every file is on the branch, no subtask was merged twice, no
subtask finished before the fault ran again, no swarm is left RUNNING once
its orchestrator is gone, and the user's uncommitted work is untouched.
Where the result store missed part of the run, the test also asserts that
the store ends up holding all of it (state and the whole event log).
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from fault_harness import LAYERS, SEED, TRIALS, Swarm, check, finished, user_work

from benchmarks.processes import FakeModelProcess
from swarmd.v1 import common_pb2, result_store_pb2, result_store_pb2_grpc

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


def stored_events(swarm: Swarm) -> list[common_pb2.SwarmEvent]:
    """The swarm's event log as the result store holds it."""
    events: list[common_pb2.SwarmEvent] = []
    with grpc.insecure_channel(swarm.store.address) as channel:
        stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        while True:
            after = events[-1].sequence if events else 0
            request = result_store_pb2.ReadEventsRequest(swarm_id=swarm.id, after_sequence=after)
            page = stub.ReadEvents(request, timeout=30).events
            if not page:
                return events
            events.extend(page)


def check_store_complete(swarm: Swarm) -> None:
    """The store says what the orchestrator saw: SUCCEEDED with every subtask
    completed, and the whole event log, dense, ending with the completion."""
    stored = swarm.stored()
    assert stored.state == common_pb2.SWARM_STATE_SUCCEEDED
    completed = [s for s in stored.subtasks if s.status == common_pb2.SUB_TASK_STATUS_COMPLETED]
    assert len(completed) == len(stored.subtasks) == sum(LAYERS)
    events = stored_events(swarm)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[-1].HasField("complete") and events[-1].complete.success
    assert sum(e.HasField("complete") for e in events) == 1
    assert stored.last_sequence == events[-1].sequence
    # Every sub-agent's completion is in the log, once: nothing was lost or re-run.
    agents = Counter(e.agent_complete.subtask_id for e in events if e.HasField("agent_complete"))
    assert set(agents) == {s.subtask.id for s in stored.subtasks} and set(agents.values()) == {1}
    # The swarm had finished: the store knew it in time, nothing resumed it.
    codes = {e.warning.code for e in events if e.HasField("warning")}
    assert not codes & {"swarm_resumed", "swarm_interrupted"}, codes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("trial", range(TRIALS))
def test_store_down_then_orchestrator_killed(
    tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess, trial: int, sig: signal.Signals
) -> None:
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
        swarm.orchestrator.kill(sig)
        fault_at = time.time()
        before = set(swarm.merges())  # all of them: the branch says so
        swarm.orchestrator.start()
        final = swarm.wait_terminal()
        check(swarm, final, before, fault_at, mine)
        check_store_complete(swarm)
    finally:
        swarm.close()
