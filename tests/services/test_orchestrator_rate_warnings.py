"""The rate governor's long-pause warnings reach the swarms that use the key."""

from __future__ import annotations

from pathlib import Path

from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.v1 import common_pb2, coordinator_pb2


async def test_a_pause_beyond_the_governor_ceiling_is_a_swarm_warning(tmp_path: Path) -> None:
    async with serve_swarm_services(
        tmp_path, orchestrator_settings={"governor_pause_ceiling_secs": 0.2}
    ) as services:
        reply = await services.submit(
            plan=plan(subtask("a", steps=2, duration_ms=1500, permits=True)), config=fast_config()
        )
        swarm_id = reply.swarm.id
        key = coordinator_pb2.RateLimitKey(provider="fake", model="scripted")
        permit = await services.coordinator.AcquirePermit(
            coordinator_pb2.AcquirePermitRequest(key=key, swarm_id=swarm_id, subtask_id="a"), timeout=5
        )
        answer = await services.coordinator.ReportOutcome(
            coordinator_pb2.ReportOutcomeRequest(
                permit_id=permit.permit_id,
                key=key,
                outcome=coordinator_pb2.CALL_OUTCOME_RATE_LIMITED,
                http_status=429,
                headers={"retry-after": "1"},
                swarm_id=swarm_id,
                subtask_id="a",
            ),
            timeout=5,
        )
        assert answer.retry_after_ms == 1000
        swarm = await wait_terminal(services, swarm_id, timeout=30)
        assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
        warnings = [e.warning for e in await services.events(swarm_id) if e.HasField("warning")]
        assert [w.code for w in warnings] == ["rate_limit_long_pause"]
        assert "wait up to 1 s, beyond the 0.2 s ceiling: the server's Retry-After asks for 1 s" in warnings[0].message
        assert "fake||scripted|" in warnings[0].message
