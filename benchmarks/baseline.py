"""The yardsticks: the same sub-agent runtime with no swarmd service around it.

Every subtask runs :func:`swarmd.plugins.runtime.attempt.run_attempt` — the
code the ``local`` executor runs, agent loop, tools and provider included —
directly in this process, with no orchestrator (so no permits, no budgets),
no result store and no gRPC. Events are built and counted, not sent.

Modes:

``gather``
    every subtask is an asyncio task awaiting its own dependencies, all
    under one ``asyncio.gather``: dependency-driven dispatch at no cost.
``stages``
    stage after stage, each stage one ``gather``: the stage-barrier
    scheduler swarmd does not use, for comparison.
``sequential``
    one agent doing the subtasks one after the other (the speedup
    reference); ``sample`` limits it to the first few subtasks, and the
    caller scales by model calls.

Run in its own process by the benchmark (so its CPU and memory are its own)::

    python -m benchmarks.baseline < spec.json > result.json
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from swarmd.plugins.manager import load_plugins
from swarmd.plugins.runtime.attempt import Runtime, run_attempt
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["run_baseline"]


def _request(
    spec: dict[str, Any],
    model: str,
    repo: str,
    options: dict[str, str],
    deps: list[tuple[str, common_pb2.SubTaskResult]],
) -> executor_pb2.ExecuteSubTaskRequest:
    request = executor_pb2.ExecuteSubTaskRequest(
        swarm_id="bare-asyncio",
        subtask=common_pb2.SubTask(
            id=spec["id"],
            name=spec["id"],
            instruction=spec["instruction"],
            read_only=spec["read_only"],
            max_steps=spec["max_steps"],
            dependencies=[d for d, _ in deps],
        ),
        config=common_pb2.SwarmConfig(
            model=model, repo_path=repo, executor_options=options, worktree_enabled=False
        ),
        attempt=1,
        workspace=executor_pb2.Workspace(repo_path=repo, worktree=False),
    )
    for dep_id, result in deps:
        request.dependencies.add(
            subtask_id=dep_id, name=dep_id, result=result.result, success=result.success
        )
    return request


async def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` (see the module docstring); returns timings per subtask."""
    runtime = Runtime(plugins=load_plugins(), options=dict(spec.get("executor_options", {})))
    subtasks: list[dict[str, Any]] = spec["subtasks"]
    mode = spec.get("mode", "gather")
    if mode == "sequential" and spec.get("sample"):
        subtasks = subtasks[: int(spec["sample"])]
    model, repo, options = spec["model"], spec["repo"], dict(spec.get("executor_options", {}))
    events = 0

    def sink(_event: common_pb2.SwarmEvent) -> None:
        nonlocal events
        events += 1

    timings: dict[str, dict[str, Any]] = {}
    results: dict[str, common_pb2.SubTaskResult] = {}

    async def one(
        sub: dict[str, Any], deps: list[tuple[str, common_pb2.SubTaskResult]]
    ) -> common_pb2.SubTaskResult:
        ready = time.time()
        result = await run_attempt(_request(sub, model, repo, options, deps), runtime, emit=sink)
        timings[sub["id"]] = {
            "ready": ready,
            "end": time.time(),
            "success": result.success,
            "steps": result.steps,
            "error": result.error,
        }
        results[sub["id"]] = result
        return result

    started = time.time()
    cpu0 = time.process_time()
    if mode == "gather":
        tasks: dict[str, asyncio.Task[common_pb2.SubTaskResult]] = {}

        async def after_deps(sub: dict[str, Any]) -> common_pb2.SubTaskResult:
            deps = [(d, await tasks[d]) for d in sub["dependencies"]]
            return await one(sub, deps)

        for sub in subtasks:
            tasks[sub["id"]] = asyncio.ensure_future(after_deps(sub))
        await asyncio.gather(*tasks.values())
    elif mode == "stages":
        depth: dict[str, int] = {}
        for sub in subtasks:
            depth[sub["id"]] = 1 + max((depth[d] for d in sub["dependencies"]), default=-1)
        for stage in range(max(depth.values(), default=-1) + 1):
            members = [s for s in subtasks if depth[s["id"]] == stage]
            await asyncio.gather(
                *(one(s, [(d, results[d]) for d in s["dependencies"]]) for s in members)
            )
    elif mode == "sequential":
        for sub in subtasks:
            await one(sub, [(d, results[d]) for d in sub["dependencies"] if d in results])
    else:
        raise ValueError(f"unknown baseline mode {mode!r}")
    wall = time.time() - started
    cpu = time.process_time() - cpu0
    return {
        "mode": mode,
        "started": started,
        "wall": wall,
        "cpu_seconds": cpu,
        "subtasks": timings,
        "completed": sum(1 for t in timings.values() if t["success"]),
        "failed": sum(1 for t in timings.values() if not t["success"]),
        "steps": sum(t["steps"] for t in timings.values()),
        "events": events,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main() -> int:
    spec = json.load(sys.stdin)
    out = asyncio.run(run_baseline(spec))
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
