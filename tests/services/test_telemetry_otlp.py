"""Spans reach a real OTLP/gRPC receiver (built from opentelemetry-proto's service)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings, TelemetrySettings
from swarmd.services.executor import build_executor
from swarmd.services.telemetry import Telemetry
from swarmd.v1 import executor_pb2, executor_pb2_grpc


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.arrived = asyncio.Event()

    async def Export(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        self.arrived.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[str, str]]:
        out = []
        for req in self.requests:
            for rs in req.resource_spans:
                attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    out.extend((attrs.get("service.name", ""), span.name) for span in ss.spans)
        return out


@pytest.fixture
async def receiver():  # type: ignore[no-untyped-def]
    servicer = OtlpReceiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"http://127.0.0.1:{port}"
    await server.stop(0)


async def test_spans_are_exported_to_the_otlp_endpoint(receiver) -> None:  # type: ignore[no-untyped-def]
    servicer, endpoint = receiver
    settings = ExecutorSettings()
    telemetry = Telemetry("swarmd-executor", TelemetrySettings(otlp_endpoint=endpoint))
    host = ServiceHost("executor", settings, telemetry)
    plugins = load_plugins(env={"SWARMD_BLOCK_PLUGINS": "builtin-tools,local,openai,replay"})
    settings.default_executor = "remote"
    await build_executor(host, settings, plugins)
    await host.start()
    async with grpc.aio.insecure_channel(host.address) as ch:
        reply = await executor_pb2_grpc.ExecutorServiceStub(ch).Describe(executor_pb2.DescribeRequest(), timeout=5)
        assert reply.default_executor == "remote"
    await host.stop(grace=0)  # flushes the batch processor
    await asyncio.wait_for(servicer.arrived.wait(), 10)
    spans = servicer.spans()
    assert ("swarmd-executor", "/swarmd.v1.ExecutorService/Describe") in spans


async def test_nothing_is_exported_without_an_endpoint() -> None:
    telemetry = Telemetry("swarmd-executor", TelemetrySettings(otlp_endpoint=None))
    assert telemetry.provider._active_span_processor._span_processors == ()  # type: ignore[attr-defined]
    telemetry.shutdown()
