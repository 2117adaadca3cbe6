"""OpenTelemetry set-up shared by the three services.

Each service gets its own :class:`TracerProvider` (``service.name`` =
``swarmd-orchestrator`` / ``swarmd-executor`` / ``swarmd-result-store``),
passed explicitly to the gRPC interceptors instead of being installed
globally, so the embedded mode (three services in one process) still reports
three services. W3C trace context travels in gRPC metadata through the
client and server interceptors, so one swarm is one trace across services.

Nothing is exported unless an OTLP endpoint is configured
(``telemetry.otlp_endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``); extra span
processors (an in-memory exporter in tests) can be added by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from swarmd.services.config import TelemetrySettings

__all__ = ["Telemetry", "swarmd_version"]


def swarmd_version() -> str:
    try:
        return metadata.version("swarmd")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0+local"


class Telemetry:
    """A tracer provider for one service plus the gRPC interceptors that use it."""

    def __init__(
        self,
        service_name: str,
        settings: TelemetrySettings | None = None,
        span_processors: Iterable[SpanProcessor] = (),
    ) -> None:
        settings = settings or TelemetrySettings()
        self.service_name = service_name
        resource = Resource.create({"service.name": service_name, "service.version": swarmd_version()})
        self.provider = TracerProvider(resource=resource)
        if settings.enabled and settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(
                BatchSpanProcessor(
                    OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=settings.otlp_insecure)
                )
            )
        processors = list(span_processors)
        for processor in processors:
            self.provider.add_span_processor(processor)
        # With no exporter and no processor nobody sees a span: skip the
        # tracing work (interceptors, span objects) on every call.
        self.enabled = settings.enabled and bool(settings.otlp_endpoint or processors)
        self.tracer: trace.Tracer = (
            self.provider.get_tracer("swarmd", swarmd_version()) if settings.enabled else trace.NoOpTracer()
        )

    def server_interceptors(self) -> Sequence[Any]:
        return [aio_server_interceptor(tracer_provider=self.provider)] if self.enabled else []

    def client_interceptors(self) -> Sequence[Any]:
        return list(aio_client_interceptors(tracer_provider=self.provider)) if self.enabled else []

    def shutdown(self) -> None:
        """Flush and stop exporting; idempotent."""
        self.provider.force_flush()
        self.provider.shutdown()
