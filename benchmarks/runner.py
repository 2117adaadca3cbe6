"""Running one workload through swarmd or through a baseline, and measuring it.

Both paths produce a :class:`RunMeasure` built from the same clocks: the
fake model server's log (when each subtask's calls arrived and were
answered, wall time) and the run's own record of when each subtask was
finished (swarmd's events, or the baseline's timings). From them:

* **wall** — swarmd: the orchestrator's ``finished_at - created_at``;
  baseline: first dispatch to last completion;
* **dispatch overhead** per subtask — from the moment it became ready (its
  last dependency finished, or the run began) to its first model call
  reaching the server; plus the **finish overhead**, from its last model
  answer to the moment the run saw it finished. These are the costs a
  scheduler adds around the model time.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.measures import overheads, percentile, server_view
from benchmarks.processes import (
    FakeModelProcess,
    ResourceSampler,
    ServiceProcesses,
    run_python_module,
)
from benchmarks.workloads import Workload
from swarmd.clients.client import SwarmdClient
from swarmd.v1 import common_pb2

__all__ = ["BenchEnv", "RunMeasure", "run_baseline", "run_swarm"]

MODEL = "openai/fake-model"


@dataclass
class RunMeasure:
    label: str
    wall: float
    subtasks: int
    completed: int
    failed: int
    model_calls: int
    rate_limited: int = 0
    dispatch_ms: list[float] = field(default_factory=list)
    finish_ms: list[float] = field(default_factory=list)
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    server_cpu_seconds: float = 0.0
    #: Successful model calls per second between the first and the last one.
    call_rate: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Subtasks completed per second."""
        return self.completed / self.wall if self.wall > 0 else 0.0

    def dispatch_p(self, q: float) -> float:
        return percentile(self.dispatch_ms, q)

    def finish_p(self, q: float) -> float:
        return percentile(self.finish_ms, q)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wall_s": round(self.wall, 3),
            "subtasks": self.subtasks,
            "completed": self.completed,
            "failed": self.failed,
            "model_calls": self.model_calls,
            "rate_limited": self.rate_limited,
            "dispatch_ms_p50": round(self.dispatch_p(50), 2),
            "dispatch_ms_p95": round(self.dispatch_p(95), 2),
            "finish_ms_p50": round(self.finish_p(50), 2),
            "finish_ms_p95": round(self.finish_p(95), 2),
            "throughput_subtasks_per_s": round(self.throughput, 2),
            "call_rate_per_s": round(self.call_rate, 3),
            "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in self.peak_rss.items()},
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
            "server_cpu_s": round(self.server_cpu_seconds, 2),
            **self.extra,
        }


@dataclass
class BenchEnv:
    """What every scenario shares: the fake model server and a scratch directory."""

    fake: FakeModelProcess
    workdir: Path
    #: Environment of the service processes (telemetry switches and the like).
    service_env: dict[str, str] = field(default_factory=dict)

    def model_env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.fake.base_url, "OPENAI_API_KEY": "sk-fake-benchmark"}

    def services(self, name: str, extra: dict[str, str] | None = None) -> ServiceProcesses:
        env = {
            **self.model_env(),
            "SWARMD_LOG_LEVEL": "WARNING",
            **self.service_env,
            **(extra or {}),
        }
        return ServiceProcesses(self.workdir / name, env).start()


def _ts(stamp: Any) -> float:
    return stamp.seconds + stamp.nanos / 1e9


async def run_swarm(
    env: BenchEnv,
    services: ServiceProcesses,
    workload: Workload,
    *,
    repo: Path,
    label: str = "swarmd",
    worktrees: bool = False,
    cache: bool = False,
    max_concurrent: int | None = None,
) -> tuple[RunMeasure, common_pb2.Swarm]:
    """Submit ``workload`` as an explicit plan, watch it to the end, measure it."""
    env.fake.reset()
    n = len(workload)
    config = common_pb2.SwarmConfig(
        model=MODEL,
        max_subagents=max(n, 1),
        max_concurrent=min(1000, max_concurrent or n),
        request_delay_ms=0,
        max_total_tool_calls=workload.total_calls * 2 + 100,
        max_steps_per_subagent=max(s.steps for s in workload.subtasks) + 2,
        worktree_enabled=worktrees,
        auto_merge=True,
        cache_enabled=cache,
        max_retries=3,
        repo_path=str(repo),
    )
    pids = {**services.pids, "fake-model": env.fake.pid}
    async with SwarmdClient(services.addresses["orchestrator"], timeout=60.0) as client:
        with ResourceSampler(pids) as sampler:
            reply = await client.submit(plan=workload.plan(), config=config)
            swarm_id = reply.swarm.id
            events: list[common_pb2.SwarmEvent] = []
            async for event in client.watch(swarm_id):
                events.append(event)
            swarm = await client.get(swarm_id)
    server = env.fake.stats()
    first, last, ok, limited, rate = server_view(env.fake.log())
    done: dict[str, float] = {}
    start = _ts(swarm.created_at)
    for event in events:
        kind = event.WhichOneof("kind")
        if kind == "started":
            start = _ts(event.time)
        elif (
            kind == "subtask_update"
            and event.subtask_update.status == common_pb2.SUB_TASK_STATUS_COMPLETED
        ):
            done[event.subtask_update.subtask_id] = _ts(event.time)
    dispatch, finish = overheads(workload, start, done, first, last)
    stats = swarm.stats
    measure = RunMeasure(
        label=label,
        wall=_ts(swarm.finished_at) - _ts(swarm.created_at),
        subtasks=n,
        completed=stats.subagents_completed,
        failed=n - stats.subagents_completed,
        model_calls=ok,
        rate_limited=limited,
        dispatch_ms=dispatch,
        finish_ms=finish,
        peak_rss={k: u.peak_rss_bytes for k, u in sampler.usage.items() if k != "fake-model"},
        cpu_seconds={k: u.cpu_seconds for k, u in sampler.usage.items()},
        server_cpu_seconds=float(server["cpu_seconds"]),
        call_rate=rate,
        extra={
            "events": len(events),
            "swarm_state": common_pb2.SwarmState.Name(swarm.state),
            "cache_hits": stats.cache.hits,
            "governor_429": sum(r.rate_limit_hits for r in stats.rate_limits),
            "max_open_connections": server["max_open_connections"],
            "failures": failure_reasons(swarm),
        },
    )
    return measure, swarm


def failure_reasons(swarm: common_pb2.Swarm, limit: int = 5) -> dict[str, int]:
    """The most frequent reasons subtasks did not complete (status: first line of the reason)."""
    counts: collections.Counter[str] = collections.Counter()
    for state in swarm.subtasks:
        if state.status != common_pb2.SUB_TASK_STATUS_COMPLETED:
            status = common_pb2.SubTaskStatus.Name(state.status).removeprefix("SUB_TASK_STATUS_")
            reason = (state.status_reason or state.result.error).strip().splitlines()
            counts[f"{status}: {reason[0][:200] if reason else '(no reason)'}"] += 1
    return dict(counts.most_common(limit))


def _baseline_payload(
    workload: Workload, repo: Path, mode: str, sample: int | None
) -> dict[str, Any]:
    return {
        "mode": mode,
        "sample": sample,
        "model": MODEL,
        "repo": str(repo),
        "subtasks": [
            {
                "id": s.id,
                "instruction": s.instruction(),
                "read_only": s.read_only,
                "max_steps": s.steps + 2,
                "dependencies": list(s.dependencies),
            }
            for s in workload.subtasks
        ],
    }


async def run_baseline(
    env: BenchEnv,
    workload: Workload,
    *,
    repo: Path,
    mode: str = "gather",
    sample: int | None = None,
    label: str = "",
) -> RunMeasure:
    """The same subtasks with no services (see :mod:`benchmarks.baseline`), in a child process."""
    env.fake.reset()
    out, usage = await run_python_module(
        "benchmarks.baseline", _baseline_payload(workload, repo, mode, sample), env=env.model_env()
    )
    server = env.fake.stats()
    first, last, ok, limited, rate = server_view(env.fake.log())
    timings = out["subtasks"]
    done = {sid: t["end"] for sid, t in timings.items() if t["success"]}
    ran = Workload(workload.name, [s for s in workload.subtasks if s.id in timings])
    dispatch, finish = overheads(ran, out["started"], done, first, last)
    if mode == "sequential":
        dispatch = []  # one agent: a subtask waits for every one listed before it, not for readiness
    failures = [t["error"] for t in timings.values() if not t["success"]]
    return RunMeasure(
        label=label
        or {
            "gather": "bare asyncio",
            "stages": "bare asyncio, stage barriers",
            "sequential": "sequential",
        }[mode],
        wall=float(out["wall"]),
        subtasks=len(timings),
        completed=int(out["completed"]),
        failed=int(out["failed"]),
        model_calls=ok,
        rate_limited=limited,
        dispatch_ms=dispatch,
        finish_ms=finish,
        peak_rss={"baseline": max(usage.peak_rss_bytes, int(out["max_rss_bytes"]))},
        cpu_seconds={"baseline": float(out["cpu_seconds"])},
        server_cpu_seconds=float(server["cpu_seconds"]),
        call_rate=rate,
        extra={
            "steps": out["steps"],
            "first_error": failures[0] if failures else "",
            "max_open_connections": server["max_open_connections"],
        },
    )
