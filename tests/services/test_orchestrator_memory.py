"""What the orchestrator keeps after requests with ever new keys and ids.

Rate-limit keys, permit ids and swarm ids in AcquirePermit/ReportOutcome are
the caller's word, and SubmitSwarm may be refused: none of that may leave
state behind that grows with the number of requests.
"""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest
from fakes.swarm_services import serve_swarm_services

from swarmd.v1 import common_pb2, coordinator_pb2, orchestrator_pb2

pytestmark = pytest.mark.timeout(60)

MAX_IDLE = 8


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path, orchestrator_settings={"governor_max_idle_keys": MAX_IDLE}) as served:
        yield served


def random_key(rng: random.Random) -> coordinator_pb2.RateLimitKey:
    return coordinator_pb2.RateLimitKey(
        provider="openai", base_url=f"http://h{rng.randrange(10**9)}", model=f"m{rng.randrange(10**9)}"
    )


async def test_governors_of_random_keys_are_bounded(services) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    for i in range(150):
        key = random_key(rng)
        if i % 2:
            permit = await services.coordinator.AcquirePermit(coordinator_pb2.AcquirePermitRequest(key=key), timeout=5)
            permit_id = permit.permit_id
        else:
            permit_id = f"p-{rng.randrange(10**9)}"  # a permit nobody granted
        await services.coordinator.ReportOutcome(
            coordinator_pb2.ReportOutcomeRequest(
                permit_id=permit_id,
                key=key,
                outcome=coordinator_pb2.CALL_OUTCOME_SUCCESS,
                http_status=200,
                swarm_id=f"no-such-swarm-{i}",
            ),
            timeout=5,
        )
    governor = services.orchestrator.governor
    assert len(governor.keys()) <= MAX_IDLE + 1  # the idle ones and the newest
    assert governor.keys_for_swarm("no-such-swarm-3") == []


async def test_a_governor_in_use_is_kept(services) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(8)
    held = random_key(rng)
    await services.coordinator.AcquirePermit(coordinator_pb2.AcquirePermitRequest(key=held), timeout=5)
    for _ in range(3 * MAX_IDLE):
        key = random_key(rng)
        permit = await services.coordinator.AcquirePermit(coordinator_pb2.AcquirePermitRequest(key=key), timeout=5)
        await services.coordinator.ReportOutcome(
            coordinator_pb2.ReportOutcomeRequest(permit_id=permit.permit_id, key=key, outcome=1), timeout=5
        )
    keys = {(k.base_url, k.model) for k in services.orchestrator.governor.keys()}
    assert (held.base_url, held.model) in keys  # its permit is still out
    # The held key, MAX_IDLE idle ones, and the newest (in use when it was made).
    assert len(keys) <= MAX_IDLE + 2


async def test_refused_submissions_leave_nothing_behind(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(9)
    for i in range(60):
        plan = common_pb2.Plan(
            subtasks=[common_pb2.SubTask(id="a", instruction="x", dependencies=["a"]), common_pb2.SubTask(id="")]
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.stub.SubmitSwarm(
                orchestrator_pb2.SubmitSwarmRequest(
                    task="t",
                    plan=plan,
                    config=common_pb2.SwarmConfig(model="fake/scripted", repo_path=str(tmp_path / f"none-{i}")),
                    request_id=f"r-{rng.randrange(10**9)}",
                ),
                timeout=5,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    orchestrator = services.orchestrator
    assert orchestrator._runs == {} and orchestrator._submit_locks == {}
