"""Result-store load: many clients publishing and reading results at once (scenario e)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import grpc
from google.protobuf import struct_pb2

from benchmarks.measures import percentile
from swarmd.v1 import result_store_pb2, result_store_pb2_grpc

__all__ = ["store_load"]


async def store_load(address: str, clients: int, pairs: int) -> dict[str, Any]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(8)]
    stubs = [result_store_pb2_grpc.ResultStoreServiceStub(ch) for ch in channels]
    publish: list[float] = []
    get: list[float] = []
    errors = 0
    misses = 0
    rng = random.Random(7)

    async def client(i: int) -> None:
        nonlocal errors, misses
        stub = stubs[i % len(stubs)]
        for j in range(pairs):
            value = struct_pb2.Value()
            value.struct_value.update(
                {"client": i, "n": j, "text": f"finding {j} of client {i}" * 4}
            )
            started = time.perf_counter()
            try:
                await stub.PublishResult(
                    result_store_pb2.PublishResultRequest(
                        scope="bench",
                        key=f"c{i}/k{j}",
                        producer_id=f"c{i}",
                        value=value,
                        tags=["bench"],
                    ),
                    timeout=60,
                )
            except grpc.aio.AioRpcError:
                errors += 1
            publish.append((time.perf_counter() - started) * 1000)
            other = rng.randrange(clients)
            started = time.perf_counter()
            try:
                await stub.GetResult(
                    result_store_pb2.GetResultRequest(scope="bench", key=f"c{other}/k{j}"),
                    timeout=60,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    misses += 1
                else:
                    errors += 1
            get.append((time.perf_counter() - started) * 1000)

    cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    for ch in channels:
        await ch.close()
    both = publish + get
    return {
        "ops": len(both),
        "wall_s": round(wall, 3),
        "ops_per_s": round(len(both) / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(percentile(both, 50), 2),
        "p99_ms": round(percentile(both, 99), 2),
        "publish_p99_ms": round(percentile(publish, 99), 2),
        "get_p99_ms": round(percentile(get, 99), 2),
        "errors": errors,
        "get_not_found": misses,
        "client_cpu_s": round(cpu, 2),
    }
