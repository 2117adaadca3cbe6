"""``python -m benchmarks.isolation`` — the worktree path alone, without services or a model.

N sub-agents at once each create a worktree, write one file, commit and
merge back into a small repository (optionally after ``--agent`` seconds of
"work", so creations and merges overlap as in a swarm). Reports the wall
time, the CPU seconds git's processes used (user + system of the children,
meaningful on a shared machine where wall time is not), the number of git
processes per sub-agent by subcommand, and the p50/max of each operation
from the timing records. As in a sub-agent attempt, a fresh worktree's files
are written in the background while the "model" thinks (``--sync-checkout``
writes them before ``create`` returns, as before); ``checkout`` is that
background part, and the write waits for it as a tool call does.

    .venv/bin/python -m benchmarks.isolation -n 100 --agent 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.measures import percentile
from benchmarks.repos import large_repo, small_repo
from swarmd.plugins.runtime.worktree import WorktreeManager, deferred
from swarmd.plugins.runtime.worktree.git import SPAWNED
from swarmd.plugins.runtime.worktree.timing import TIMINGS_ENV


async def _one(mgr: WorktreeManager, i: int, agent: float) -> str:
    wt = await mgr.create("bench", f"t{i:04d}")
    await asyncio.sleep(agent)
    await deferred.ready(wt.ready)  # the first tool call waits for the files
    (wt.path / f"out{i:04d}.txt").write_text(f"work of {i}\n")
    report = await mgr.merge(wt, await mgr.commit(wt, f"t{i:04d}"))
    return str(report.outcome)


async def _run(
    n: int, agent: float, where: Path, sync_checkout: bool = False, large: bool = False
) -> dict[str, object]:
    repo = (large_repo if large else small_repo)(where / "repo")
    timings = where / "timings.jsonl"
    os.environ[TIMINGS_ENV] = str(timings)
    mgr = WorktreeManager(repo)
    mgr.defer_checkout = not sync_checkout
    await mgr.toplevel()
    SPAWNED.clear()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    outcomes = await asyncio.gather(*(_one(mgr, i, agent) for i in range(n)))
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = [json.loads(line) for line in timings.read_text().splitlines()]
    ops = {}
    for op in ("create", "checkout", "commit", "merge"):
        secs = [r["seconds"] for r in records if r["op"] == op]
        if not secs:
            continue
        waits = [r["lock_wait"] for r in records if r["op"] == op]
        ops[op] = {
            "p50_ms": round(1000 * percentile(secs, 50), 1),
            "max_ms": round(1000 * max(secs), 1),
            "lock_wait_p50_ms": round(1000 * percentile(waits, 50), 1),
        }
    return {
        "n": n,
        "repository": "large" if large else "small",
        "agent_s": agent,
        "wall_s": round(wall, 2),
        "git_cpu_s": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
        ),
        "git_processes_per_subagent": round(sum(SPAWNED.values()) / n, 2),
        "by_command": {k: round(v / n, 2) for k, v in SPAWNED.most_common()},
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
        "ops": ops,
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.isolation", description=__doc__)
    parser.add_argument("-n", type=int, default=100, help="sub-agents at once (100)")
    parser.add_argument("--agent", type=float, default=0.5, help="seconds of work between (0.5)")
    parser.add_argument(
        "--sync-checkout", action="store_true", help="write each worktree's files before create returns"
    )
    parser.add_argument(
        "--large", action="store_true", help="the 10,240-file repository (lazy worktrees) instead of the small one"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="swarmd-isolation-") as tmp:
        result = asyncio.run(_run(args.n, args.agent, Path(tmp), args.sync_checkout, args.large))
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
