"""``python -m benchmarks.collapse_latency`` — event delivery while slow health checks run.

A few sub-agents keep making model calls (the fake model server answers
each after ``--latency`` seconds with a listing) while the collapse
controller samples their branches with a ``command`` check that sleeps
``--check`` seconds, back to back. For every progress event the watcher
receives, the latency is the time it arrived minus the time the sub-agent
emitted it (``SwarmEvent.time``). The same swarm runs once without the
controller as the control. Prints p50/p99/max per run, and the events
received while a check process was alive (each check marks its start and
end in a file).

    .venv/bin/python -m benchmarks.collapse_latency --agents 4 --steps 60 --check 2
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import tempfile
import time
from pathlib import Path

from benchmarks.fake_model_behaviour import LatencyModel, ServerConfig
from benchmarks.fake_model_server import FakeModelServer
from benchmarks.measures import percentile
from benchmarks.repos import small_repo
from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

_PROGRESS = {"agent_step", "agent_tool_call", "agent_tool_call_detail", "agent_message"}


def _check(markers: Path, seconds: float) -> common_pb2.CollapseConfig:
    where = shlex.quote(str(markers))
    script = f"m=$(mktemp -u {where}/check-XXXXXX); touch $m.start; sleep {seconds:g}; touch $m.end"
    return common_pb2.CollapseConfig(
        enabled=True,
        checks=[common_pb2.HealthCheckSpec(name="command", options={"command": f"sh -c {shlex.quote(script)}"})],
        interval_ms=100,
        warmup_ms=3_600_000,  # judge, never kill
        check_timeout_ms=int(seconds * 1000) + 30_000,
    )


def _checks_running(markers: Path) -> bool:
    started = {p.stem for p in markers.glob("*.start")}
    ended = {p.stem for p in markers.glob("*.end")}
    return bool(started - ended)


async def _run(where: Path, args: argparse.Namespace, collapse: bool) -> dict[str, float]:
    repo = small_repo(where / ("repo-collapse" if collapse else "repo-control"))
    markers = where / ("markers-collapse" if collapse else "markers-control")
    markers.mkdir()
    server_config = ServerConfig(latency=LatencyModel(mean=args.latency), steps=args.steps, tool="list")
    latencies: list[float] = []
    during: list[float] = []
    async with FakeModelServer(server_config) as server:
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "bench"}
        async with EmbeddedSwarmd(settings, db_path=where / f"db-{collapse}.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            plan = common_pb2.Plan(
                subtasks=[common_pb2.SubTask(id=f"a{i}", instruction=f"List the folder (a{i}).") for i in range(args.agents)]
            )
            config = common_pb2.SwarmConfig(
                model="openai/fake-model",
                repo_path=str(repo),
                request_delay_ms=0,
                cache_enabled=False,
                max_steps_per_subagent=args.steps + 5,
            )
            if collapse:
                config.collapse.CopyFrom(_check(markers, args.check))
            reply = await client.submit(task="latency", plan=plan, config=config)
            async for event in client.watch(reply.swarm.id):
                if event.WhichOneof("kind") not in _PROGRESS:
                    continue
                delay = time.time() - event.time.ToNanoseconds() / 1e9
                latencies.append(delay)
                if _checks_running(markers):
                    during.append(delay)
    return {
        "events": len(latencies),
        "during_checks": len(during),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies, default=0.0),
        "during_p99_ms": 1000 * percentile(during, 99),
    }


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="swarmd-collapse-latency-") as tmp:
        where = Path(tmp)
        control = await _run(where, args, collapse=False)
        slow = await _run(where, args, collapse=True)
    print(f"{args.agents} sub-agents x {args.steps} model calls of {args.latency:g}s; check sleeps {args.check:g}s")
    print(f"{'run':<22}{'events':>8}{'in checks':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'p99 in checks':>15}")
    for name, row in (("no controller", control), ("slow checks", slow)):
        print(
            f"{name:<22}{row['events']:>8.0f}{row['during_checks']:>11.0f}{row['p50_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}{row['during_p99_ms']:>15.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=4, help="sub-agents (default 4)")
    parser.add_argument("--steps", type=int, default=60, help="model calls per sub-agent (default 60)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per model call (default 0.05)")
    parser.add_argument("--check", type=float, default=2.0, help="seconds each health check sleeps (default 2)")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
