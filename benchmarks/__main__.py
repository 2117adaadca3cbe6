"""``python -m benchmarks`` — run swarmd's benchmarks and write the report.

    python -m benchmarks                 # quick profile (make bench, under 5 minutes)
    python -m benchmarks --full          # the specified sizes (make bench-full)
    python -m benchmarks --only a,b      # some scenarios (a b c d e f sweep http)
    python -m benchmarks --no-telemetry  # services with tracing switched off

Writes ``benchmarks/results/latest.md``, ``latest.json`` and ``latest.png``
(or the directory given with ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import FakeModelProcess, repo_root, run_python_module
from benchmarks.profiles import PROFILES
from benchmarks.report import machine_facts, write_chart, write_json, write_markdown
from benchmarks.runner import BenchEnv
from benchmarks.scenarios import SCENARIOS, Context, ScenarioResult, _configure

ORDER = ("a", "b", "c", "d", "e", "f", "sweep", "http")


def _log(text: str) -> None:
    print(text, flush=True)


async def _run(args: argparse.Namespace) -> int:
    profile = PROFILES["full" if args.full else "quick"]
    chosen = [k for k in ORDER if not args.only or k in args.only]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    facts = machine_facts(repo_root())
    workdir = Path(tempfile.mkdtemp(prefix="swarmd-bench-"))
    fake = FakeModelProcess().start()
    service_env = {"SWARMD_TELEMETRY__ENABLED": "false"} if args.no_telemetry else {}
    env = BenchEnv(fake, workdir, service_env)
    repo = workdir / "readonly-repo"
    repo.mkdir()
    (repo / "README.md").write_text("# benchmark workspace\n\nbench\n")
    ctx = Context(env=env, profile=profile, log=_log, readonly_repo=repo)
    results: list[ScenarioResult] = []
    extras: dict[str, Any] = {"profile": profile.name, "telemetry": not args.no_telemetry}
    _log(
        f"swarmd benchmarks, {profile.name} profile; scratch {workdir}; fake model server {fake.url}"
    )
    try:
        for key in chosen:
            t = time.monotonic()
            if key == "http":
                _log("(http) client CPU per request")
                _configure(env, 0.0)
                rows, _usage = await run_python_module(
                    "benchmarks.http_clients", {"url": fake.url, "requests": profile.http_requests}
                )
                extras["http_clients"] = rows
                for row in rows:
                    _log(f"  {row['client']:<40} {row['cpu_us_per_request']:8.0f} us/request")
                continue
            _log(f"({key}) {SCENARIOS[key].__name__.removesuffix('_scenario').replace('_', ' ')}")
            produced = await SCENARIOS[key](ctx)
            results.extend(produced if isinstance(produced, list) else [produced])
            _log(f"  done in {time.monotonic() - t:.0f} s")
    finally:
        fake.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    duration = time.monotonic() - t0
    chart = "latest.png" if write_chart(out_dir / "latest.png", results) else None
    write_json(out_dir / "latest.json", results, extras, facts)
    write_markdown(
        out_dir / "latest.md",
        results,
        profile=profile,
        facts=facts,
        started=started,
        duration=duration,
        extras=extras,
        chart=chart,
    )
    _log(f"wrote {out_dir / 'latest.md'} in {duration:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="swarmd benchmarks")
    parser.add_argument(
        "--full", action="store_true", help="the full profile (specified sizes; takes longer)"
    )
    parser.add_argument(
        "--only", type=lambda s: set(s.split(",")), default=None, help="comma-separated scenarios"
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results"), help="where to write the report"
    )
    parser.add_argument(
        "--no-telemetry", action="store_true", help="run the services with tracing disabled"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (service logs, databases)"
    )
    args = parser.parse_args(argv)
    if args.only and not args.only <= set(ORDER):
        parser.error(
            f"unknown scenario(s) {sorted(args.only - set(ORDER))}; choose from {', '.join(ORDER)}"
        )
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
