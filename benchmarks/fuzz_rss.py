"""``python -m benchmarks.fuzz_rss`` — what the services keep under fuzzed messages.

Starts the three services as separate ``swarmd serve`` processes and sends
them a seeded stream of malformed or valid-but-odd requests: SubmitSwarm with
random plans (dry runs, swarms whose model cannot be reached, bad ids and
cycles), AcquirePermit/ReportOutcome with random keys, permits and swarm
ids, ListSwarms with random page tokens, GetSwarm/WatchSwarm of unknown ids;
AppendEvents, SaveSwarmState, PublishResult and CacheGet on the result store
with random content and timestamps. Every ``--every`` messages it prints each
process's RSS (psutil).

To tell a leak from SQLite's page cache or the allocator's high-water mark:

* the same load runs twice (``--rounds 2``): memory a round keeps for good
  grows again in the second round; a cache or a high-water mark does not;
* ``--tracemalloc DIR`` starts the services with ``SWARMD_TRACEMALLOC_DIR``
  set: each one traces Python allocations and writes a snapshot on SIGUSR2
  (see ``swarmd.services.memdebug``). The script takes one after a warm-up
  round and one at the end and prints the allocation sites that grew most
  (Python objects only: SQLite's page cache is C memory, outside it).

    python -m benchmarks.fuzz_rss                       # 3,000 messages, RSS every 500
    python -m benchmarks.fuzz_rss --messages 3000 --rounds 2 --tracemalloc /tmp/snaps
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import string
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
import psutil
from google.protobuf import struct_pb2, timestamp_pb2

from benchmarks.processes import ServiceProcesses
from swarmd.v1 import common_pb2, coordinator_pb2, orchestrator_pb2, result_store_pb2
from swarmd.v1.coordinator_pb2_grpc import CoordinatorServiceStub
from swarmd.v1.orchestrator_pb2_grpc import OrchestratorServiceStub
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub

MB = 1024 * 1024
RPC_TIMEOUT = 10.0


def _text(rng: random.Random, n: int = 12, alphabet: str = string.ascii_letters + string.digits + "-_.") -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))


def _odd(rng: random.Random) -> str:
    """Ids and keys a client might send: empty, long, unicode, path-like, or plausible."""
    return rng.choice(
        [
            "",
            _text(rng, 8),
            _text(rng, 300),
            "../" + _text(rng, 6),
            "\u00e9\u4e2d\u0000" + _text(rng, 4),
            f"s-{rng.randrange(10**9)}",
            str(rng.randrange(10**40)),
        ]
    )


def _timestamp(rng: random.Random) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(
        seconds=rng.choice([0, 1_700_000_000, -(2**62), 2**62, rng.randrange(-(2**40), 2**40)]),
        nanos=rng.choice([0, 999_999_999, rng.randrange(0, 10**9)]),
    )


def _plan(rng: random.Random) -> common_pb2.Plan:
    ids = [rng.choice([f"t{i}", _odd(rng)]) for i in range(rng.randint(0, 12))]
    plan = common_pb2.Plan()
    for sid in ids:
        deps = rng.sample(ids, k=min(len(ids), rng.randint(0, 2)))
        plan.subtasks.append(
            common_pb2.SubTask(
                id=sid,
                instruction=_text(rng, 200, string.printable),
                dependencies=deps,
                priority=rng.choice([0, 1, -5, 2**31 - 1]),
                read_only=rng.random() < 0.5,
            )
        )
    return plan


class Fuzzer:
    """Builds and sends one random request at a time (see the module docstring)."""

    def __init__(
        self,
        rng: random.Random,
        repo: Path,
        orch: OrchestratorServiceStub,
        store: ResultStoreServiceStub,
        coord: CoordinatorServiceStub,
        large_share: float = 0.0,
    ) -> None:
        self.rng = rng
        self.large_share = large_share
        self.repo = repo
        self.orch = orch
        self.coord = coord
        self.store = store
        self.codes: Counter[str] = Counter()
        self.kinds: list[Callable[[], Coroutine[Any, Any, Any]]] = [
            self.submit,
            self.submit,
            self.acquire,
            self.report,
            self.list_swarms,
            self.get_or_watch,
            self.append_events,
            self.save_state,
            self.publish,
            self.cache_get,
        ]

    def only(self, names: list[str]) -> None:
        """Send only these kinds of request (method names: submit, acquire, report...)."""
        chosen = [k for k in self.kinds if k.__name__ in names]
        if not chosen:
            raise SystemExit(f"--kinds: none of {names}; choose from {sorted({k.__name__ for k in self.kinds})}")
        self.kinds = chosen

    async def one(self) -> None:
        call = self.rng.choice(self.kinds)
        try:
            await call()
            self.codes["OK"] += 1
        except grpc.aio.AioRpcError as exc:
            self.codes[exc.code().name] += 1

    async def submit(self) -> None:
        rng = self.rng
        config = common_pb2.SwarmConfig(
            # The executor's model endpoint answers 401 to everything (see
            # _refusing_server): a swarm that starts fails at its first call, so
            # a run still in memory after the round is kept, not merely slow.
            model=rng.choice(["openai/fake", "openai/fake", "replay/missing.jsonl", _odd(rng), ""]),
            repo_path=rng.choice([str(self.repo), str(self.repo), _odd(rng)]),
            request_delay_ms=0,
            max_concurrent=rng.choice([0, 1, 4, -1]),
            cache_enabled=rng.random() < 0.5,
        )
        request = orchestrator_pb2.SubmitSwarmRequest(
            task=_text(rng, 100, string.printable),
            plan=_plan(rng) if rng.random() < 0.8 else None,
            config=config,
            request_id=rng.choice(["", _odd(rng)]),
            dry_run=rng.random() < 0.3,
            labels={_text(rng, 5): _text(rng, 10) for _ in range(rng.randint(0, 3))},
        )
        await self.orch.SubmitSwarm(request, timeout=RPC_TIMEOUT)

    def _key(self) -> coordinator_pb2.RateLimitKey:
        rng = self.rng
        return coordinator_pb2.RateLimitKey(
            provider=rng.choice(["openai", _odd(rng)]),
            base_url=f"http://{_text(rng, 10)}",
            model=_odd(rng) or "m",
            api_key_fingerprint=_text(rng, 12, string.hexdigits),
        )

    async def acquire(self) -> None:
        request = coordinator_pb2.AcquirePermitRequest(
            key=self._key(), swarm_id=self.rng.choice(["", _odd(self.rng)]), estimated_tokens=self.rng.choice([0, 10, -1])
        )
        await self.coord.AcquirePermit(request, timeout=RPC_TIMEOUT)

    async def report(self) -> None:
        rng = self.rng
        request = coordinator_pb2.ReportOutcomeRequest(
            permit_id=_odd(rng) or "p",
            key=self._key(),
            outcome=rng.choice([0, 1, 2, 3, 99]),
            http_status=rng.choice([0, 200, 429, 503]),
            headers={"retry-after": str(rng.randint(0, 5)), "x-ratelimit-remaining-requests": str(rng.randint(0, 9))},
            swarm_id=_odd(rng),
            subtask_id=_odd(rng),
        )
        await self.coord.ReportOutcome(request, timeout=RPC_TIMEOUT)

    async def list_swarms(self) -> None:
        rng = self.rng
        request = orchestrator_pb2.ListSwarmsRequest(
            page_size=rng.choice([0, 1, 1000, -1, 5000]), page_token=rng.choice(["", "0", _odd(rng)])
        )
        await self.orch.ListSwarms(request, timeout=RPC_TIMEOUT)

    async def get_or_watch(self) -> None:
        swarm_id = _odd(self.rng)
        if self.rng.random() < 0.5:
            await self.orch.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=swarm_id), timeout=RPC_TIMEOUT)
            return
        call = self.orch.WatchSwarm(orchestrator_pb2.WatchSwarmRequest(swarm_id=swarm_id, history_only=True), timeout=RPC_TIMEOUT)
        async for _ in call:
            pass

    def _large(self) -> bool:
        return self.rng.random() < self.large_share

    def _blob_text(self) -> str:
        """Up to 2,000 characters, or (a ``--large-share`` of the time) 0.5 to 4 MB."""
        if self._large():
            return "x" * self.rng.randint(512 * 1024, 4 * MB)
        return _text(self.rng, 2000, string.printable)

    async def append_events(self) -> None:
        rng = self.rng
        swarm_id = rng.choice([f"fz-{rng.randrange(50)}", _odd(rng)])
        events = [
            common_pb2.SwarmEvent(
                swarm_id=swarm_id,
                sequence=rng.choice([0, 0, 1, rng.randrange(1, 10**6)]),
                time=_timestamp(rng),
                warning=common_pb2.SwarmWarning(code=_text(rng, 10), message=self._blob_text()),
            )
            for _ in range(rng.randint(0, 3 if self.large_share else 20))
        ]
        await self.store.AppendEvents(result_store_pb2.AppendEventsRequest(swarm_id=swarm_id, events=events), timeout=RPC_TIMEOUT)

    async def save_state(self) -> None:
        rng = self.rng
        swarm = common_pb2.Swarm(
            id=rng.choice([f"fz-{rng.randrange(50)}", _odd(rng)]),
            task=self._blob_text(),
            state=rng.choice([0, 1, 2, 3, 4, 5, 77]),
            created_at=_timestamp(rng),
        )
        for subtask in _plan(rng).subtasks:
            swarm.subtasks.append(common_pb2.SubTaskState(subtask=subtask, status=rng.choice([0, 1, 3, 42])))
        await self.store.SaveSwarmState(result_store_pb2.SaveSwarmStateRequest(swarm=swarm), timeout=RPC_TIMEOUT)

    async def publish(self) -> None:
        rng = self.rng
        value = struct_pb2.Value()
        choice = rng.randrange(3)
        if choice == 0:
            value.string_value = self._blob_text()
        elif choice == 1:
            value.number_value = rng.choice([1.0, 1e308, -0.0])
        request = result_store_pb2.PublishResultRequest(
            scope=_odd(rng),
            key=_odd(rng),
            producer_id=_odd(rng),
            value=value,
            tags=[_text(rng, 20) for _ in range(rng.randint(0, 5))],
            ttl_secs=rng.choice([0, 1, -1, 10**12]),
        )
        await self.store.PublishResult(request, timeout=RPC_TIMEOUT)

    async def cache_get(self) -> None:
        key = self.rng.choice([_text(self.rng, 64, "0123456789abcdef"), _odd(self.rng)])
        await self.store.CacheGet(result_store_pb2.CacheGetRequest(key=key), timeout=RPC_TIMEOUT)


async def _refusing_server() -> tuple[asyncio.Server, str]:
    """An HTTP server answering every request with 401: model calls fail at once, for good."""
    body = b'{"error": {"message": "invalid api key", "type": "invalid_request_error"}}'

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                    0,
                )
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


def _rss(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).memory_info().rss / MB
        except psutil.Error:
            out[name] = float("nan")
    return out


def _make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    (path / "README.md").write_text("# fuzz\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


def _snapshot(pids: dict[str, int], snap_dir: Path, label: str) -> dict[str, Path]:
    """Ask each service for a tracemalloc snapshot; the files it wrote, by service."""
    before = {p.name for p in snap_dir.glob("*.tracemalloc")}
    for pid in pids.values():
        os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 60
    found: dict[str, Path] = {}
    while time.monotonic() < deadline and len(found) < len(pids):
        time.sleep(0.5)
        for path in snap_dir.glob("*.tracemalloc"):
            if path.name in before:
                continue
            pid = int(path.name.split("-")[-2])
            name = next((n for n, p in pids.items() if p == pid), None)
            if name is not None:
                found[name] = path
    for name, path in found.items():
        final = path.with_name(f"{name}-{label}.tracemalloc")
        path.rename(final)
        found[name] = final
    return found


def _compare(first: Path, second: Path, top: int) -> list[str]:
    old = tracemalloc.Snapshot.load(str(first))
    new = tracemalloc.Snapshot.load(str(second))
    lines = [
        f"  traced Python memory {sum(s.size for s in old.statistics('filename')) / MB:.1f} MB -> "
        f"{sum(s.size for s in new.statistics('filename')) / MB:.1f} MB; top growth by allocation site:"
    ]
    for stat in new.compare_to(old, "traceback")[:top]:
        frames = [f for f in stat.traceback if "swarmd" in f.filename or "site-packages" not in f.filename][-3:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames or list(stat.traceback)[-1:]))
        lines.append(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+7d} blocks  {where}")
    return lines


async def _round(fuzzer: Fuzzer, messages: int, every: int, pids: dict[str, int], concurrency: int, sent: int) -> int:
    queue = iter(range(messages))

    async def worker() -> None:
        for _ in queue:
            await fuzzer.one()

    for start in range(0, messages, every):
        batch = min(every, messages - start)
        queue = iter(range(batch))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        sent += batch
        rss = _rss(pids)
        print(f"{sent:>8}  " + "  ".join(f"{rss[n]:>10.1f}" for n in pids), flush=True)
    return sent


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="swarmd-fuzz-rss-"))
    refusing, model_url = await _refusing_server()
    env = {
        "SWARMD_TELEMETRY__ENABLED": "false",
        "SWARMD_EXECUTOR__OPTIONS": json.dumps({"provider.base_url": model_url, "provider.api_key": "none"}),
    }
    snap_dir = Path(args.tracemalloc).resolve() if args.tracemalloc else None
    if snap_dir is not None:
        snap_dir.mkdir(parents=True, exist_ok=True)
        env["SWARMD_TRACEMALLOC_DIR"] = str(snap_dir)
    repo = _make_repo(workdir / "repo")
    services = ServiceProcesses(workdir / "services", env=env).start()
    pids = services.pids
    snaps: list[dict[str, Path]] = []
    try:
        async with grpc.aio.insecure_channel(services.addresses["orchestrator"]) as oc, grpc.aio.insecure_channel(
            services.addresses["result-store"]
        ) as sc:
            fuzzer = Fuzzer(
                rng, repo, OrchestratorServiceStub(oc), ResultStoreServiceStub(sc), CoordinatorServiceStub(oc), args.large_share
            )
            if args.kinds:
                fuzzer.only(args.kinds.split(","))
            print(f"swarmd services under fuzzed messages (seed {args.seed}); RSS in MB; scratch {workdir}")
            print(f"{'messages':>8}  " + "  ".join(f"{n:>10}" for n in pids))
            rss = _rss(pids)
            print(f"{0:>8}  " + "  ".join(f"{rss[n]:>10.1f}" for n in pids), flush=True)
            sent = 0
            for number in range(1, args.rounds + 1):
                sent = await _round(fuzzer, args.messages, args.every, pids, args.concurrency, sent)
                await asyncio.sleep(args.settle)  # let started swarms fail and be reaped
                rss = _rss(pids)
                print(f"{'settled':>8}  " + "  ".join(f"{rss[n]:>10.1f}" for n in pids) + f"   (after round {number})", flush=True)
                if snap_dir is not None and (number == 1 or number == args.rounds):
                    snaps.append(_snapshot(pids, snap_dir, f"round{number}"))
            print("replies: " + ", ".join(f"{code} {n}" for code, n in fuzzer.codes.most_common()))
            live = await fuzzer.orch.ListSwarms(
                orchestrator_pb2.ListSwarmsRequest(
                    page_size=500,
                    filter=orchestrator_pb2.SwarmFilter(
                        states=[common_pb2.SWARM_STATE_PLANNING, common_pb2.SWARM_STATE_RUNNING]
                    ),
                ),
                timeout=RPC_TIMEOUT,
            )
            print(f"swarms planning or running at the end: {len(live.swarms)}")
    finally:
        services.stop()
        refusing.close()
    if len(snaps) == 2:
        for name in pids:
            if name in snaps[0] and name in snaps[1]:
                print(f"{name}: round 1 -> round {args.rounds}")
                print("\n".join(_compare(snaps[0][name], snaps[1][name], args.top)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_rss", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages per round (3000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the same load (1)")
    parser.add_argument("--every", type=int, default=500, help="print RSS every N messages (500)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after a round (5)")
    parser.add_argument("--large-share", type=float, default=0.0, help="share of payloads of 0.5-4 MB (0)")
    parser.add_argument("--kinds", help="only these requests, e.g. submit,report (default: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tracemalloc", metavar="DIR", help="trace allocations in the services; snapshots go to DIR")
    parser.add_argument("--top", type=int, default=12, help="allocation sites to print per service (12)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
