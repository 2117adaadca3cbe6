#!/usr/bin/env python3
"""Container health check: gRPC health of the service at HOST:PORT (default 127.0.0.1:50051)."""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
with grpc.insecure_channel(target) as channel:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as exc:
        sys.exit(f"unhealthy: {exc.code().name}")
sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
