"""The benchmark scenarios, each measured against its bound and its baselines.

=====  ===================================================================
(a)    wide: independent subtasks at a realistic model latency
(b)    layered DAG whose critical path is much shorter than the sum of
       per-layer maxima (dependency-driven dispatch must win)
(c)    zero-latency model, 1,000 subtasks: pure dispatch overhead
(d)    rate-limited model server (60 and 600 requests per minute)
(e)    result store publish/get load from many clients
(f)    the same swarm twice from the same starting commit (cache)
sweep  wide swarms of growing size, for the chart
=====  ===================================================================

Every swarm runs on three separate service processes started fresh for the
scenario (so peak RSS is the scenario's own); every baseline runs in its own
process right after, against the same fake model server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.fake_model_behaviour import LatencyModel, RateLimit, ServerConfig
from benchmarks.profiles import Profile
from benchmarks.repos import (
    LARGE_FILES,
    DiskSampler,
    checkout_bytes,
    isolation_figures,
    large_repo,
    plain_dir,
    small_repo,
)
from benchmarks.runner import BenchEnv, RunMeasure, run_baseline, run_swarm
from benchmarks.store_load import store_load
from benchmarks.workloads import Workload, chain, layered, rate_bound, read_only_variant, wide
from swarmd.plugins.runtime.worktree.timing import TIMINGS_ENV

__all__ = ["SCENARIOS", "ScenarioResult"]

Log = Callable[[str], None]


@dataclass
class ScenarioResult:
    key: str
    title: str
    setup: str
    #: The time no scheduler can beat (None when it is 0, e.g. a zero-latency model).
    bound: float | None = None
    bound_label: str = "critical path x latency"
    stage_bound: float | None = None
    sequential_estimate: float | None = None
    runs: list[RunMeasure] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def run(self, label: str) -> RunMeasure | None:
        return next((r for r in self.runs if r.label == label), None)

    def ratio_to_bound(self, run: RunMeasure) -> float | None:
        if "sample" in run.extra:  # a sample of the workload: no bound applies
            return None
        return run.wall / self.bound if self.bound else None

    def speedup(self, run: RunMeasure) -> float | None:
        if "sample" in run.extra or not self.sequential_estimate or run.wall <= 0:
            return None
        return self.sequential_estimate / run.wall

    def bare_for(self, run: RunMeasure) -> RunMeasure | None:
        """The bare-asyncio run of the same workload: "swarmd, chain" pairs with "bare asyncio, chain"."""
        for prefix in ("swarmd", "bare asyncio"):
            if run.label.startswith(prefix):
                paired = self.run("bare asyncio" + run.label.removeprefix(prefix))
                if (
                    paired is not None
                    and self.run("swarmd" + run.label.removeprefix(prefix)) is not None
                ):
                    return paired
        return self.run("bare asyncio") if run.label.startswith("bare asyncio") else None

    def vs_bare(self, run: RunMeasure) -> float | None:
        bare = self.bare_for(run)
        return run.wall / bare.wall if bare is not None and bare.wall > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "setup": self.setup,
            "bound_s": self.bound,
            "bound_label": self.bound_label,
            "stage_barrier_bound_s": self.stage_bound,
            "sequential_estimate_s": self.sequential_estimate,
            "runs": [
                {
                    **r.summary(),
                    "ratio_to_bound": self.ratio_to_bound(r),
                    "speedup": self.speedup(r),
                    "vs_bare": self.vs_bare(r),
                }
                for r in self.runs
            ],
            "metrics": self.metrics,
            "notes": self.notes,
        }


@dataclass
class Context:
    env: BenchEnv
    profile: Profile
    log: Log
    readonly_repo: Path


def _configure(env: BenchEnv, latency: float = 0.0, rpm: float = 0.0, **kwargs: Any) -> None:
    env.fake.configure(
        ServerConfig(
            latency=LatencyModel(mean=latency),
            rate_limit=RateLimit(requests_per_minute=rpm),
            **kwargs,
        )
    )


async def _sequential(ctx: Context, workload: Workload) -> tuple[RunMeasure, float]:
    """Run the first few subtasks one after another; scale the time by model calls."""
    sample = min(ctx.profile.sequential_sample, len(workload))
    run = await run_baseline(
        ctx.env, workload, repo=ctx.readonly_repo, mode="sequential", sample=sample
    )
    calls = sum(s.steps for s in workload.subtasks[:sample])
    estimate = run.wall * workload.total_calls / calls if calls else 0.0
    run.extra["sample"] = f"{sample} of {len(workload)} subtasks"
    return run, estimate


async def _swarm_and_bare(
    ctx: Context,
    result: ScenarioResult,
    workload: Workload,
    name: str,
    *,
    stages: bool = False,
    suffix: str = "",
    repo_kind: str = "small",
    read_only_row: bool = False,
) -> None:
    """swarmd with worktrees on a fresh repository, then bare asyncio in a plain directory.

    ``read_only_row`` adds the same graph read-only with worktrees off
    (``swarmd, read-only``) on the services of the same scenario.
    """
    repo = fresh_repo(ctx.env.workdir / f"{name}-repo", repo_kind)
    timings = ctx.env.workdir / f"{name}-worktree-timings.jsonl"
    mutating = any(not s.read_only for s in workload.subtasks)
    services = ctx.env.services(name, {TIMINGS_ENV: str(timings)})
    try:
        with DiskSampler(repo) as disk:
            run, _swarm = await run_swarm(
                ctx.env, services, workload, repo=repo, label="swarmd" + suffix, worktrees=mutating
            )
        readonly = None
        if read_only_row:
            readonly, _ = await run_swarm(
                ctx.env,
                services,
                read_only_variant(workload),
                repo=ctx.readonly_repo,
                label="swarmd, read-only" + suffix,
            )
    finally:
        services.stop()
    if mutating:
        run.extra.update(isolation_figures(timings))
        run.extra["repo"] = repo_kind
        run.extra["checkout_mb"] = round(checkout_bytes(repo) / 2**20, 1)
        run.extra["worktree_disk_peak_mb"] = round(disk.peak / 2**20, 1)
    result.runs.append(run)
    ctx.log(
        f"  swarmd{suffix:<8} {run.wall:7.2f}s  ok={run.completed}/{run.subtasks}"
        f"  isolation p50 {run.extra.get('isolation_ms_p50', 0):.0f} ms"
    )
    if readonly is not None:
        result.runs.append(readonly)
        ctx.log(f"  swarmd, read-only {readonly.wall:7.2f}s  ok={readonly.completed}")
    shutil.rmtree(repo, ignore_errors=True)
    plain = plain_dir(ctx.env.workdir / f"{name}-plain")
    bare = await run_baseline(ctx.env, workload, repo=plain, label="bare asyncio" + suffix)
    result.runs.append(bare)
    ctx.log(f"  bare asyncio{suffix:<2} {bare.wall:7.2f}s  ok={bare.completed}/{bare.subtasks}")
    if stages:
        staged = await run_baseline(ctx.env, workload, repo=plain, mode="stages")
        result.runs.append(staged)
        ctx.log(f"  stage barrier {staged.wall:7.2f}s")
    shutil.rmtree(plain, ignore_errors=True)


def fresh_repo(dest: Path, kind: str) -> Path:
    """A fresh repository of ``kind`` (``small`` or ``large``) at ``dest``."""
    return large_repo(dest) if kind == "large" else small_repo(dest)


async def wide_scenario(ctx: Context) -> ScenarioResult:
    n, steps, latency = ctx.profile.wide
    workload = wide(n, steps, latency)
    ln, lsteps, llatency = ctx.profile.wide_large
    result = ScenarioResult(
        "a",
        "wide",
        f"{n} independent mutating subtasks x {steps} model calls at {latency:g} s per call, "
        f"each writing its files (write tool) in its own worktree, merged back; small repository, "
        f"then {ln} x {lsteps} calls on the {LARGE_FILES:,}-file repository",
        bound=workload.critical_path_bound(),
    )
    _configure(ctx.env, latency)
    await _swarm_and_bare(ctx, result, workload, "a-wide", read_only_row=True)
    large = wide(ln, lsteps, llatency, prefix="g")
    _configure(ctx.env, llatency)
    await _swarm_and_bare(
        ctx, result, large, "a-wide-large", suffix=", large repo", repo_kind="large"
    )
    result.metrics["large_repo_bound_s"] = large.critical_path_bound()
    _configure(ctx.env, latency)
    seq, result.sequential_estimate = await _sequential(ctx, workload)
    result.runs.append(seq)
    return result


async def layered_scenario(ctx: Context) -> ScenarioResult:
    layers, width, short, long_, latency = ctx.profile.layered
    workload, longs = layered(layers, width, short_steps=short, long_steps=long_, latency=latency)
    bound, chain = workload.critical_path()
    result = ScenarioResult(
        "b",
        "layered DAG",
        f"{layers} layers x {width} subtasks, each depending on 2 of the layer before; "
        f"{short} calls per subtask, one {long_}-call subtask per layer, no chain meets two of them; "
        f"{latency:g} s per call",
        bound=bound,
        stage_bound=workload.stage_barrier_bound(),
    )
    result.metrics["long_subtasks"] = longs
    result.metrics["longs_on_one_chain"] = workload.chains_through(longs)
    result.metrics["critical_path"] = chain
    _configure(ctx.env, latency)
    await _swarm_and_bare(ctx, result, workload, "b-layered", stages=True, read_only_row=True)
    seq, result.sequential_estimate = await _sequential(ctx, workload)
    result.runs.append(seq)
    return result


async def zero_latency_scenario(ctx: Context) -> ScenarioResult:
    n = ctx.profile.zero
    workload = wide(n, 1, 0.0, prefix="z")
    result = ScenarioResult(
        "c",
        "zero latency",
        f"{n} independent mutating subtasks (worktrees) x 1 model call, model answers at once",
        bound=None,
        bound_label="0 (no model time): every second is overhead",
    )
    _configure(ctx.env, 0.0)
    await _swarm_and_bare(ctx, result, workload, "c-zero")
    for run in result.runs:
        run.extra["wall_per_subtask_ms"] = round(run.wall / max(1, run.subtasks) * 1000, 2)
    swarmd, bare = result.run("swarmd"), result.run("bare asyncio")
    if swarmd and bare:
        result.metrics["added_per_subtask_ms"] = round((swarmd.wall - bare.wall) / n * 1000, 2)
    # Dispatch latency without a crowd: each subtask waits for the one before.
    length = ctx.profile.zero_chain
    linked = chain(length, 1, 0.0)
    result.setup += f"; then a chain of {length} such subtasks, each depending on the one before"
    await _swarm_and_bare(ctx, result, linked, "c-chain", suffix=", chain")
    swarmd, bare = result.run("swarmd, chain"), result.run("bare asyncio, chain")
    if swarmd and bare:
        result.metrics["chain_dispatch_added_ms_p50"] = round(
            swarmd.dispatch_p(50) - bare.dispatch_p(50), 2
        )
        result.metrics["chain_dispatch_added_ms_p95"] = round(
            swarmd.dispatch_p(95) - bare.dispatch_p(95), 2
        )
        result.metrics["chain_link_ms"] = {
            "swarmd": round(swarmd.wall / length * 1000, 2),
            "bare asyncio": round(bare.wall / length * 1000, 2),
        }
    return result


async def rate_limited_scenario(ctx: Context) -> list[ScenarioResult]:
    out: list[ScenarioResult] = []
    for rpm, n, steps, latency in ctx.profile.rate_limited:
        workload = wide(n, steps, latency, prefix=f"r{rpm}-")
        calls = workload.total_calls
        bound = max(workload.critical_path_bound(), rate_bound(calls, rpm) + latency)
        result = ScenarioResult(
            "d",
            f"rate limit {rpm}/min",
            f"{n} subtasks x {steps} calls ({calls} calls) at {latency:g} s per call; "
            f"server allows {rpm} requests/min (token bucket of 1, 429 + retry-after + x-ratelimit-*)",
            bound=bound,
            bound_label="(calls - 1) / allowed rate + one call",
        )
        ctx.log(f" (d) {rpm}/min")
        _configure(ctx.env, latency, rpm)
        await _swarm_and_bare(ctx, result, workload, f"d-rate-{rpm}")
        for run in result.runs:
            run.extra["rate_vs_allowed"] = round(run.call_rate / (rpm / 60.0), 3)
        out.append(result)
    return out


async def store_scenario(ctx: Context) -> ScenarioResult:
    clients, pairs = ctx.profile.store
    result = ScenarioResult(
        "e",
        "result store load",
        f"{clients} concurrent clients on 8 channels, each {pairs} x (PublishResult + GetResult of another client's key)",
    )
    services = ctx.env.services("e-store")
    try:
        from benchmarks.processes import ResourceSampler

        with ResourceSampler({"result-store": services.pids["result-store"]}) as sampler:
            metrics = await store_load(services.addresses["result-store"], clients, pairs)
        metrics["store_peak_rss_mb"] = round(
            sampler.usage["result-store"].peak_rss_bytes / 2**20, 1
        )
        metrics["store_cpu_s"] = round(sampler.usage["result-store"].cpu_seconds, 2)
    finally:
        services.stop()
    result.metrics.update(metrics)
    ctx.log(f"  {metrics['ops_per_s']:.0f} ops/s, p99 {metrics['p99_ms']:.1f} ms")
    return result


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


async def cache_scenario(ctx: Context) -> ScenarioResult:
    n, steps, latency = ctx.profile.cache
    repo = ctx.env.workdir / "f-repo"
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# cache benchmark\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "start")
    base = _git(repo, "rev-parse", "HEAD")
    workload = wide(n, steps, latency, tool="write", read_only=False, prefix="f")
    result = ScenarioResult(
        "f",
        "cache (same swarm twice)",
        f"{n} mutating subtasks x {steps} calls (write tool) at {latency:g} s, real git repo with worktrees and merges; "
        "the second run starts from the same commit (branch reset) with the cache on",
        bound=workload.critical_path_bound(),
    )
    _configure(ctx.env, latency)
    services = ctx.env.services("f-cache")
    try:
        first, _ = await run_swarm(
            ctx.env,
            services,
            workload,
            repo=repo,
            worktrees=True,
            cache=True,
            label="swarmd, first run",
        )
        ctx.log(f"  first run     {first.wall:7.2f}s  calls={first.model_calls}")
        _git(repo, "reset", "-q", "--hard", base)
        second, _ = await run_swarm(
            ctx.env,
            services,
            workload,
            repo=repo,
            worktrees=True,
            cache=True,
            label="swarmd, second run",
        )
        ctx.log(
            f"  second run    {second.wall:7.2f}s  calls={second.model_calls} hits={second.extra['cache_hits']}"
        )
    finally:
        services.stop()
    result.runs.extend([first, second])
    result.metrics["second_run_model_calls"] = second.model_calls
    result.metrics["second_run_cache_hits"] = second.extra["cache_hits"]
    result.metrics["second_vs_first"] = round(second.wall / first.wall, 3) if first.wall else None
    if second.model_calls:
        result.notes.append(
            f"the second run made {second.model_calls} model calls and had {second.extra['cache_hits']} cache hits"
        )
    return result


async def sweep_scenario(ctx: Context) -> ScenarioResult:
    p = ctx.profile
    result = ScenarioResult(
        "sweep",
        "scaling",
        f"wide swarms of {', '.join(map(str, p.sweep))} mutating sub-agents (worktrees, small "
        f"repository) x {p.sweep_steps} calls at {p.sweep_latency:g} s per call",
        bound=p.sweep_steps * p.sweep_latency,
    )
    _configure(ctx.env, p.sweep_latency)
    points: list[dict[str, Any]] = []
    for n in p.sweep:
        workload = wide(n, p.sweep_steps, p.sweep_latency, prefix=f"n{n}-")
        repo = small_repo(ctx.env.workdir / f"sweep-{n}-repo")
        timings = ctx.env.workdir / f"sweep-{n}-worktree-timings.jsonl"
        services = ctx.env.services(f"sweep-{n}", {TIMINGS_ENV: str(timings)})
        try:
            run, _ = await run_swarm(
                ctx.env, services, workload, repo=repo, label=f"swarmd n={n}", worktrees=True
            )
        finally:
            services.stop()
        shutil.rmtree(repo, ignore_errors=True)
        iso = isolation_figures(timings)
        plain = plain_dir(ctx.env.workdir / f"sweep-{n}-plain")
        bare = await run_baseline(ctx.env, workload, repo=plain, label=f"bare asyncio n={n}")
        shutil.rmtree(plain, ignore_errors=True)
        bound = workload.critical_path_bound()
        points.append(
            {
                "n": n,
                "bound_s": bound,
                "swarmd_s": round(run.wall, 3),
                "bare_s": round(bare.wall, 3),
                "swarmd_ratio": round(run.wall / bound, 3),
                "bare_ratio": round(bare.wall / bound, 3),
                "swarmd_vs_bare": round(run.wall / bare.wall, 3) if bare.wall else None,
                "swarmd_failed": run.failed,
                "bare_failed": bare.failed,
                "services_rss_mb": round(sum(run.peak_rss.values()) / 2**20, 1),
                "isolation_ms_p50": iso["isolation_ms_p50"],
                "isolation_ms_p95": iso["isolation_ms_p95"],
                "fake_server_cpu_s": round(run.server_cpu_seconds, 2),
                "call_rate_per_s": round(run.call_rate, 1),
                "max_open_connections": run.extra.get("max_open_connections"),
                "failures": run.extra.get("failures") or {},
            }
        )
        ctx.log(
            f"  n={n:4d}  swarmd {run.wall:6.2f}s  bare {bare.wall:6.2f}s  bound {bound:5.2f}s"
            f"  isolation p50 {iso['isolation_ms_p50']:.0f} ms"
        )
        for reason, count in (run.extra.get("failures") or {}).items():
            ctx.log(f"    {count} not completed: {reason}")
    result.metrics["points"] = points
    return result


SCENARIOS: dict[str, Callable[[Context], Any]] = {
    "a": wide_scenario,
    "b": layered_scenario,
    "c": zero_latency_scenario,
    "d": rate_limited_scenario,
    "e": store_scenario,
    "f": cache_scenario,
    "sweep": sweep_scenario,
}
