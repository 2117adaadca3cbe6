"""The collapse controller's ticks against a scripted sampler (``FakeSampler``
stands in for the executor service's SampleBranch): one sample in flight per
branch, kills through the cancel callable with their audit records, never a
kill of work committed meanwhile, a refused sample reported once."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import until

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.collapse import CollapseController, CollapseHost
from swarmd.v1 import common_pb2, executor_pb2

FAIL, PASS = common_pb2.HEALTH_STATUS_FAIL, common_pb2.HEALTH_STATUS_PASS


class FakeSampler:
    """Answers SampleBranch from a table of healths; ``hold`` ids never answer."""

    def __init__(self, health: dict[str, int], hold: frozenset[str] = frozenset(), refuse: bool = False) -> None:
        self.health = health
        self.hold = hold
        self.refuse = refuse
        self.calls: dict[str, int] = {}

    async def __call__(self, request: executor_pb2.SampleBranchRequest, timeout: float) -> executor_pb2.SampleBranchResponse:
        sid = request.subtask_id
        self.calls[sid] = self.calls.get(sid, 0) + 1
        if self.refuse:
            raise InvalidArgument("unknown health check 'nope' (available: command, none, python-compile)")
        if sid in self.hold:
            await asyncio.Event().wait()
        obs = common_pb2.BranchObservation(subtask_id=sid, branch=request.branch, health=self.health[sid], resource_health_score=1.0)
        return executor_pb2.SampleBranchResponse(observation=obs)


class Swarm:
    """The swarm side of the controller: what it is shown and what it was asked to do."""

    def __init__(self, sampler: FakeSampler, running: list[str]) -> None:
        self.running = list(running)
        self.events: list[tuple[str, Any]] = []
        self.cancelled: list[tuple[str, str]] = []
        self.audits: list[tuple[str, str, dict[str, Any]]] = []
        self.now = 0.0
        config = common_pb2.SwarmConfig(
            repo_path="/repo",
            collapse=common_pb2.CollapseConfig(enabled=True, interval_ms=20, warmup_ms=1000, max_consecutive_failures=3),
        )

        async def audit(kind: str, sid: str, detail: dict[str, Any]) -> None:
            self.audits.append((kind, sid, detail))

        self.controller = CollapseController(
            CollapseHost(
                swarm_id="s",
                config=config,
                base_commit="abc",
                sample=sampler,
                candidates=lambda: list(self.running),
                status=lambda sid: common_pb2.SUB_TASK_STATUS_RUNNING,
                branch=lambda sid: f"swarmd/s/{sid}",
                emit=lambda kind, msg: self.events.append((kind, msg)),
                cancel=self.cancel,
                audit=audit,
            ),
            clock=lambda: self.now,
        )

    def cancel(self, sid: str, reason: str) -> None:
        self.cancelled.append((sid, reason))
        self.running.remove(sid)

    async def ticks(self, n: int, step: float = 1.0) -> None:
        for _ in range(n):
            await self.controller.tick()
            self.now += step


async def test_a_slow_check_is_not_asked_again_until_it_answers() -> None:
    sampler = FakeSampler({"slow": PASS, "fast": PASS}, hold={"slow"})
    swarm = Swarm(sampler, ["slow", "fast"])
    await swarm.ticks(4)
    assert sampler.calls == {"slow": 1, "fast": 4}
    kinds = [k for k, _ in swarm.events]
    assert kinds == ["collapse_evaluated"] * 4
    assert all([e.observation.subtask_id for e in m.evaluations] == ["fast"] for _, m in swarm.events)
    await swarm.controller.stop()


async def test_a_kill_goes_through_cancel_with_its_audit_record() -> None:
    swarm = Swarm(FakeSampler({"bad": FAIL, "good": PASS}), ["bad", "good"])
    await swarm.ticks(6)  # now 0 (warm-up), then 1, 2, 3: three failures after it
    assert [sid for sid, _ in swarm.cancelled] == ["bad"]
    assert swarm.cancelled[0][1].startswith("collapse: policy threshold exceeded (consecutive_failures=3/3")
    kill_events = [m for k, m in swarm.events if k == "collapse_evaluated" and m.kills]
    assert len(kill_events) == 1 and kill_events[0].kills[0].branch == "swarmd/s/bad"
    await swarm.controller.stop()
    kinds = [(kind, sid) for kind, sid, _ in swarm.audits]
    assert ("collapse_kill_branch", "bad") in kinds and ("collapse_promote_branch", "good") in kinds
    detail = next(d for kind, _, d in swarm.audits if kind == "collapse_kill_branch")
    assert detail["reason"].startswith("collapse:") and len(detail["evaluations"]) == 2


async def test_work_committed_during_the_sample_is_never_killed() -> None:
    swarm = Swarm(FakeSampler({"bad": FAIL, "good": PASS}), ["bad", "good"])
    await swarm.ticks(3)
    # The branch commits its work while the deciding sample is out.
    original = swarm.controller.host.sample

    async def commit_meanwhile(request: executor_pb2.SampleBranchRequest, timeout: float) -> executor_pb2.SampleBranchResponse:
        response = await original(request, timeout)
        if request.subtask_id == "bad" and "bad" in swarm.running:
            swarm.running.remove("bad")
        return response

    object.__setattr__(swarm.controller.host, "sample", commit_meanwhile)
    await swarm.ticks(3)
    assert swarm.cancelled == []
    assert not any(m.kills for k, m in swarm.events if k == "collapse_evaluated")
    await swarm.controller.stop()


async def test_a_refused_sample_is_reported_once() -> None:
    swarm = Swarm(FakeSampler({"a": PASS}, refuse=True), ["a"])
    await swarm.ticks(3)
    warnings = [m for k, m in swarm.events if k == "warning"]
    assert len(warnings) == 1 and "unknown health check 'nope'" in warnings[0].message
    assert not [k for k, _ in swarm.events if k == "collapse_evaluated"]
    await swarm.controller.stop()


async def test_start_and_stop_run_the_loop() -> None:
    sampler = FakeSampler({"a": PASS})
    swarm = Swarm(sampler, ["a"])
    swarm.controller.start()
    await until(lambda: sampler.calls.get("a", 0) >= 2, timeout=10)
    await swarm.controller.stop()
    calls = sampler.calls["a"]
    assert calls >= 2
    await asyncio.sleep(0.1)
    assert sampler.calls["a"] == calls  # stopped: no more samples
