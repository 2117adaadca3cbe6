#!/usr/bin/env python3
"""Container health check: gRPC health of the service at HOST:PORT (default 127.0.0.1:50051).

Over TLS when ``SWARMD_TLS_CA`` (and, for a server that requires mutual TLS,
``SWARMD_TLS_CERT`` and ``SWARMD_TLS_KEY``) name PEM files, as in
compose.tls.yaml; plaintext otherwise.
"""

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _read(name: str) -> bytes | None:
    path = os.environ.get(name, "").strip()
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
ca, cert, key = _read("SWARMD_TLS_CA"), _read("SWARMD_TLS_CERT"), _read("SWARMD_TLS_KEY")
if ca or cert:
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    channel = grpc.secure_channel(target, creds)
else:
    channel = grpc.insecure_channel(target)
with channel:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as exc:
        sys.exit(f"unhealthy: {exc.code().name}")
sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
