"""Writing a run's results: ``latest.md`` (tables and machine facts), ``latest.json``, ``latest.png``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.scenarios import ScenarioResult

__all__ = ["Target", "evaluate_targets", "machine_facts", "write_chart", "write_markdown"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit(root: Path) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_facts(root: Path) -> dict[str, str]:
    import psutil

    mem = psutil.virtual_memory()
    load = os.getloadavg()
    return {
        "CPU": _cpu_model(),
        "cores": f"{psutil.cpu_count(logical=True)} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "memory": f"{mem.total / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "grpcio / protobuf / httpx": f"{_version('grpcio')} / {_version('protobuf')} / {_version('httpx')}",
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "swarmd commit": _git_commit(root),
    }


class Target:
    """One performance goal and what this run measured for it."""

    def __init__(self, goal: str, measured: str, met: bool | None) -> None:
        self.goal, self.measured, self.met = goal, measured, met

    @property
    def verdict(self) -> str:
        return "not measured" if self.met is None else ("met" if self.met else "**not met**")


def _find(results: Sequence[ScenarioResult], key: str) -> list[ScenarioResult]:
    return [r for r in results if r.key == key]


def evaluate_targets(results: Sequence[ScenarioResult]) -> list[Target]:
    targets: list[Target] = []
    wide_runs = _find(results, "a")
    layered_runs = _find(results, "b")
    for found, label, pair_label, limit in (
        (wide_runs, "swarmd", "small repository", 1.10),
        (wide_runs, "swarmd, large repo", f"{10_240:,}-file repository", 1.25),
    ):
        run = found[0].run(label) if found else None
        ratio = found[0].vs_bare(run) if found and run else None
        targets.append(
            Target(
                f"(a) wide, mutating with worktrees: swarmd / bare asyncio <= {limit:.2f}, {pair_label}",
                f"{ratio:.3f}" if ratio else "-",
                None if ratio is None else ratio <= limit,
            )
        )
    run = layered_runs[0].run("swarmd") if layered_runs else None
    ratio = layered_runs[0].ratio_to_bound(run) if layered_runs and run else None
    targets.append(
        Target(
            "(b) layered DAG with worktrees: wall / critical-path bound <= 1.15",
            f"{ratio:.3f}" if ratio else "-",
            None if ratio is None else ratio <= 1.15,
        )
    )
    for label, limit, what in (("swarmd", 50, "small"), ("swarmd, large repo", 250, "large")):
        run = wide_runs[0].run(label) if wide_runs else None
        p50 = run.extra.get("isolation_ms_p50") if run else None
        targets.append(
            Target(
                f"(a) isolation per subtask (create + commit + merge) p50 <= {limit} ms, {what} repository",
                f"{p50:.0f} ms (p95 {run.extra.get('isolation_ms_p95', 0):.0f} ms)" if p50 else "-",
                None if p50 is None else p50 <= limit,
            )
        )
    run = wide_runs[0].run("swarmd, large repo") if wide_runs else None
    if run is not None and run.extra.get("checkout_mb"):
        disk, checkout = run.extra["worktree_disk_peak_mb"], run.extra["checkout_mb"]
        targets.append(
            Target(
                "(a) peak disk of the live worktrees of the large repository <= 2x its checkout",
                f"{disk:.0f} MB at {run.extra.get('peak_live_worktrees')} live worktrees "
                f"(checkout {checkout:.0f} MB, {disk / checkout:.1f}x)",
                disk <= 2 * checkout,
            )
        )
    found = _find(results, "c")
    chain_run = found[0].run("swarmd, chain") if found else None
    chain_bare = found[0].run("bare asyncio, chain") if found else None
    if chain_run is not None and chain_bare is not None:
        added = chain_run.dispatch_p(50) - chain_bare.dispatch_p(50)
        crowd = found[0].metrics.get("added_per_subtask_ms")
        targets.append(
            Target(
                "dispatch overhead <= 2 ms p50 in (c)",
                f"{added:.1f} ms p50 added by the services (ready -> first model call on a chain: swarmd "
                f"{chain_run.dispatch_p(50):.1f} ms, bare asyncio {chain_bare.dispatch_p(50):.1f} ms); "
                f"with 1,000 at once: {crowd} ms more wall per subtask than bare asyncio",
                added <= 2.0,
            )
        )
    else:
        targets.append(Target("dispatch overhead <= 2 ms p50 in (c)", "-", None))
    found = _find(results, "a")
    run = found[0].run("swarmd") if found else None
    if run is not None:
        total = sum(run.peak_rss.values()) / 2**20
        targets.append(
            Target(
                f"all services <= 250 MB RSS with {run.subtasks} live mutating sub-agents (a)",
                f"{total:.0f} MB ({', '.join(f'{k} {v / 2**20:.0f}' for k, v in run.peak_rss.items())})",
                total <= 250,
            )
        )
    for result in _find(results, "d"):
        run = result.run("swarmd")
        if run is None:
            continue
        share = run.extra.get("rate_vs_allowed", 0.0)
        targets.append(
            Target(
                f">= 95 % of the allowed rate, no failed subtask ({result.title})",
                f"{share * 100:.1f} % of the allowed rate, {run.failed} failed, {run.rate_limited} 429s",
                share >= 0.95 and run.failed == 0,
            )
        )
    return targets


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _rss(run: Any) -> str:
    order = ("orchestrator", "executor", "result-store", "baseline")
    parts = [f"{run.peak_rss[k] / 2**20:.0f}" for k in order if k in run.peak_rss]
    return " / ".join(parts) or "-"


def write_markdown(
    path: Path,
    results: Sequence[ScenarioResult],
    *,
    profile: Any,
    facts: dict[str, str],
    started: dt.datetime,
    duration: float,
    extras: dict[str, Any],
    chart: str | None,
) -> None:
    lines: list[str] = []
    add = lines.append
    add("# swarmd benchmark results")
    add("")
    add(
        f"Profile **{profile.name}**, run {started:%Y-%m-%d %H:%M} UTC, took {duration:.0f} s "
        f"(`python -m benchmarks{' --full' if profile.name == 'full' else ''}`)."
    )
    if profile.notes:
        add("")
        add("Scaled down in this profile: " + "; ".join(profile.notes) + ".")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    for key, value in facts.items():
        add(f"| {key} | {value} |")
    add("")
    add(
        "The client, the fake model server and the three services share these cores, so the bare-asyncio run "
        "of the same moment, not an absolute time, is the yardstick."
    )
    add("")
    add("## Targets")
    add("")
    add("| goal | measured | verdict |")
    add("|---|---|---|")
    for target in evaluate_targets(results):
        add(f"| {target.goal} | {target.measured} | {target.verdict} |")
    add("")
    add("## All runs")
    add("")
    add(
        "Bound: the time no scheduler can beat (critical path x model latency, or the rate limit). "
        "Dispatch: from a subtask becoming ready (its last dependency finished, or the run began) to its "
        "first model call reaching the server; finish: from its last model answer to the run seeing it done. "
        "Peak RSS in MB: orchestrator / executor / result store (separate processes), or the baseline's one process."
    )
    add("")
    add(
        "| scenario | run | wall s | bound s | wall / bound | / bare | speedup | dispatch p50 / p95 ms "
        "| finish p50 ms | subtasks/s | calls/s | 429s | failed | peak RSS MB | model server CPU s |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        for run in result.runs:
            add(
                f"| ({result.key}) {result.title} | {run.label} | {run.wall:.2f} | {_fmt(result.bound)} "
                f"| {_fmt(result.ratio_to_bound(run), 3)} | {_fmt(result.vs_bare(run), 3)} "
                f"| {_fmt(result.speedup(run), 1, 'x')} | {run.dispatch_p(50):.1f} / {run.dispatch_p(95):.1f} "
                f"| {run.finish_p(50):.1f} | {run.throughput:.1f} | {run.call_rate:.1f} | {run.rate_limited} "
                f"| {run.failed} | {_rss(run)} | {run.server_cpu_seconds:.2f} |"
            )
    add("")
    _isolation_table(add, results)
    for result in results:
        add(f"### ({result.key}) {result.title}")
        add("")
        add(result.setup + ".")
        if result.bound is not None:
            add(f"Bound: {result.bound:.2f} s ({result.bound_label}).")
        if result.stage_bound is not None:
            add(
                f"A stage-barrier scheduler needs at least {result.stage_bound:.2f} s (sum of per-stage maxima)."
            )
        if result.sequential_estimate is not None:
            seq = result.run("sequential")
            sample = seq.extra.get("sample", "") if seq else ""
            add(
                f"Sequential agent: {result.sequential_estimate:.1f} s (measured on {sample}, scaled by model calls)."
            )
        for run in result.runs:
            bits = []
            for key in (
                "wall_per_subtask_ms",
                "rate_vs_allowed",
                "governor_429",
                "cache_hits",
                "events",
                "max_open_connections",
            ):
                if key in run.extra:
                    bits.append(f"{key.replace('_', ' ')} {run.extra[key]}")
            if run.cpu_seconds:
                bits.append(
                    "CPU s " + ", ".join(f"{k} {v:.1f}" for k, v in run.cpu_seconds.items())
                )
            if run.extra.get("first_error"):
                bits.append(f"first error: {run.extra['first_error'][:200]}")
            if bits:
                add(f"- {run.label}: " + "; ".join(bits))
        if result.key == "sweep":
            add("")
            add(
                "| sub-agents | bound s | swarmd s | bare s | swarmd / bound | bare / bound | swarmd / bare "
                "| isolation p50 / p95 ms | failed (swarmd / bare) | services RSS MB | model server CPU s "
                "| calls/s |"
            )
            add("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for p in result.metrics.get("points", []):
                add(
                    f"| {p['n']} | {p['bound_s']:.2f} | {p['swarmd_s']:.2f} | {p['bare_s']:.2f} | "
                    f"{p['swarmd_ratio']:.3f} | {p['bare_ratio']:.3f} | {_fmt(p.get('swarmd_vs_bare'), 3)} "
                    f"| {p.get('isolation_ms_p50', 0):.0f} / {p.get('isolation_ms_p95', 0):.0f} "
                    f"| {p['swarmd_failed']} / {p.get('bare_failed', 0)} | {p['services_rss_mb']:.0f} "
                    f"| {p.get('fake_server_cpu_s', 0):.1f} | {p.get('call_rate_per_s', 0):.1f} |"
                )
            if chart:
                add("")
                add(
                    f"![wall time and ratio to the bound against the number of sub-agents]({chart})"
                )
        else:
            for key, value in result.metrics.items():
                if key != "points":
                    add(f"- {key.replace('_', ' ')}: {value}")
        for note in result.notes:
            add(f"- note: {note}")
        add("")
    http = extras.get("http_clients")
    if http:
        add("## HTTP client CPU per request")
        add("")
        add(
            "Client-side CPU per chat completion against the fake model server at zero latency "
            "(the client process alone, 50 concurrent requests)."
        )
        add("")
        add("| client | requests | CPU us / request | wall s |")
        add("|---|---|---|---|")
        for row in http:
            add(
                f"| {row['client']} | {row['requests']} | {row['cpu_us_per_request']:.0f} | {row['wall_s']:.2f} |"
            )
        add("")
    path.write_text("\n".join(lines) + "\n")


def _isolation_table(add: Any, results: Sequence[ScenarioResult]) -> None:
    """Per-subtask price of the worktrees, for every swarmd run that had them."""
    rows = [(r, run) for r in results for run in r.runs if "isolation_ms_p50" in run.extra]
    if not rows:
        return
    add("## Isolation per subtask")
    add("")
    add(
        "Measured inside the executor (`SWARMD_WORKTREE_TIMINGS`), per mutating subtask, in ms: creating "
        "its worktree, committing its work, merging it (waiting for its batch included) and waiting for "
        "the repository lock; isolation = create + commit + merge. Peak disk: the most the filesystem "
        "lost during the run (statvfs; the disk is shared, so an upper bound)."
    )
    add("")
    add(
        "| scenario | run | repo | create p50 / p95 | commit p50 / p95 | merge p50 / p95 | lock wait p50 / p95 "
        "| isolation p50 / p95 | merge batch (mean) | peak live worktrees | peak disk MB | checkout MB |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result, run in rows:
        e = run.extra

        def pair(op: str, e: dict[str, Any] = e) -> str:
            return f"{e.get(op + '_ms_p50', 0):.0f} / {e.get(op + '_ms_p95', 0):.0f}"

        add(
            f"| ({result.key}) {result.title} | {run.label} | {e.get('repo', 'small')} "
            f"| {pair('create')} | {pair('commit')} | {pair('merge')} | {pair('lock')} "
            f"| {pair('isolation')} | {e.get('merge_batch_mean', '-')} | {e.get('peak_live_worktrees', '-')} "
            f"| {e.get('worktree_disk_peak_mb', 0):.0f} | {e.get('checkout_mb', 0):.0f} |"
        )
    add("")


def write_json(
    path: Path, results: Sequence[ScenarioResult], extras: dict[str, Any], facts: dict[str, str]
) -> None:
    data = {"machine": facts, "scenarios": [r.to_json() for r in results], **extras}
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def write_chart(path: Path, results: Sequence[ScenarioResult]) -> bool:
    """Wall time and wall / bound against the number of sub-agents (the sweep)."""
    sweep = next((r for r in results if r.key == "sweep"), None)
    if sweep is None or not sweep.metrics.get("points"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sweep.metrics["points"]
    n = [p["n"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(n, [p["swarmd_s"] for p in points], "o-", label="swarmd (3 services)")
    left.plot(n, [p["bare_s"] for p in points], "s--", label="bare asyncio.gather")
    left.plot(n, [p["bound_s"] for p in points], ":", color="grey", label="critical-path bound")
    left.set_xlabel("sub-agents")
    left.set_ylabel("wall time (s)")
    left.set_title("Wall time")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(n, [p["swarmd_ratio"] for p in points], "o-", label="swarmd")
    right.plot(n, [p["bare_ratio"] for p in points], "s--", label="bare asyncio")
    right.axhline(1.0, color="grey", linestyle=":")
    right.axhline(1.10, color="tab:red", linestyle=":", label="1.10")
    right.set_xlabel("sub-agents")
    right.set_ylabel("wall / bound")
    right.set_title("Ratio to the critical-path bound")
    right.legend()
    right.grid(alpha=0.3)
    fig.suptitle(sweep.setup, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
