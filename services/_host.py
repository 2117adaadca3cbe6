"""One grpc.aio server with what every swarmd service needs.

:class:`ServiceHost` adds gRPC health checking and server reflection (v1 and
v1alpha, :mod:`.reflection`) for the
services registered on it, tracing interceptors, message-size limits, and a
authentication and authorization when the settings' ``auth`` section names a
credential source (:mod:`.auth`: the server interceptor, and the service's
own token on its channels to peers), and a
graceful shutdown: health flips to NOT_SERVING first, the server stops
accepting new RPCs, in-flight RPCs get ``grace_period_secs`` to finish, then
the registered closers run (stores closed) in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from swarmd.services.auth.authenticator import Authenticator
from swarmd.services.auth.interceptor import AuthInterceptor
from swarmd.services.auth.outgoing import bearer_interceptors, service_token_source
from swarmd.services.config import ServerSettings, TelemetrySettings
from swarmd.services.errors import InvalidArgument
from swarmd.services.reflection import enable_reflection
from swarmd.services.request_guard import MalformedRequestGuard
from swarmd.services.telemetry import Telemetry
from swarmd.services.tls import (
    CertificateReloader,
    channel_credentials,
    channel_tls_options,
    server_credentials,
)

__all__ = ["ServiceHost", "channel_options", "host_channel_options"]

log = logging.getLogger(__name__)


def channel_options(
    max_message_bytes: int = 16 * 1024 * 1024,
    *,
    keepalive_time_secs: float = 30.0,
    keepalive_timeout_secs: float = 20.0,
) -> list[tuple[str, Any]]:
    """Options for servers and channels: message limits and a keepalive policy
    both ends agree on.

    A channel pings after ``keepalive_time_secs`` without activity, calls or
    not, and however long no data flowed. gRPC's server default would take
    that for abuse (it accepts a ping without data only every 5 minutes and
    answers the third early one with GOAWAY ``too_many_pings``, which kills
    every stream on the connection), so the server accepts pings down to
    half the interval: a client on the same setting never draws a strike,
    and the strikes allowed absorb timer jitter.
    """
    keepalive_ms = max(1, int(keepalive_time_secs * 1000))
    min_recv_ms = max(1, keepalive_ms // 2)
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", max(1, int(keepalive_timeout_secs * 1000))),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", min_recv_ms),
        ("grpc.http2.min_ping_interval_without_data_ms", min_recv_ms),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def host_channel_options(settings: ServerSettings) -> list[tuple[str, Any]]:
    """:func:`channel_options` for a service's settings."""
    return channel_options(
        settings.max_message_bytes,
        keepalive_time_secs=settings.keepalive_time_secs,
        keepalive_timeout_secs=settings.keepalive_timeout_secs,
    )


class ServiceHost:
    """Owns one ``grpc.aio.Server``; ``start``/``stop``, or ``async with``."""

    def __init__(
        self,
        name: str,
        settings: ServerSettings,
        telemetry: Telemetry | None = None,
        telemetry_settings: TelemetrySettings | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.telemetry = telemetry or Telemetry(f"swarmd-{name}", telemetry_settings)
        auth: list[grpc.aio.ServerInterceptor] = []
        #: Who may call this server (None: every caller may, auth is not configured).
        self.authenticator: Authenticator | None = None
        try:
            if settings.auth.configured:
                self.authenticator = Authenticator(settings.auth)
                auth.append(
                    AuthInterceptor(self.authenticator, authenticate_health=settings.auth.authenticate_health)
                )
            token_source = service_token_source(settings.auth)
        except ValueError as exc:
            raise InvalidArgument(f"{name}: {exc}") from None
        #: Adds the bearer token to calls to peers (None: the calls carry none).
        self._token_source = token_source if settings.auth.configured or token_source() else None
        self._server = grpc.aio.server(
            interceptors=[*auth, MalformedRequestGuard(), *self.telemetry.server_interceptors()],
            options=host_channel_options(settings),
        )
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._service_names: list[str] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._stopping_hooks: list[Callable[[], Awaitable[None]]] = []
        self._channels: list[grpc.aio.Channel] = []
        self.port: int | None = None
        #: Reloads the TLS certificate when its files change (None in plaintext).
        self.certificates: CertificateReloader | None = None
        self._stopped = asyncio.Event()
        self._stopping = False

    @property
    def server(self) -> grpc.aio.Server:
        return self._server

    @property
    def address(self) -> str:
        """``host:port`` clients can dial (the bound port, not the requested one)."""
        if self.port is None:
            raise RuntimeError(f"{self.name} server is not started")
        host = self.settings.listen.rsplit(":", 1)[0]
        if host in ("", "0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    def add_service(self, full_name: str, register: Callable[[grpc.aio.Server], None]) -> None:
        """Register a servicer; ``full_name`` is e.g. ``swarmd.v1.ResultStoreService``."""
        register(self._server)
        self._service_names.append(full_name)

    def on_stopping(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` when shutdown begins, before the grace period (e.g. end
        endless streams such as watchers so they do not hold the grace period)."""
        self._stopping_hooks.append(hook)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` after the server stopped (closers run last-in first-out)."""
        self._closers.append(closer)

    def channel(self, target: str, *, balanced: bool = False) -> grpc.aio.Channel:
        """A traced client channel to a peer, closed when this host stops
        (after the closers, so they can still flush state to peers).

        With ``balanced``, calls are spread round-robin over every address the
        target resolves to (``ipv4:10.0.0.5:50052,10.0.0.6:50052``, or a DNS
        name with several records); a streaming call stays where it started.
        """
        options = host_channel_options(self.settings) + channel_tls_options(self.settings.tls)
        if balanced:
            options.append(("grpc.lb_policy_name", "round_robin"))
        interceptors: list[Any] = list(self.telemetry.client_interceptors())
        if self._token_source is not None:
            interceptors.extend(bearer_interceptors(self._token_source))
        creds = channel_credentials(self.settings.tls)
        if creds is None:
            ch = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        else:
            ch = grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
        self._channels.append(ch)
        return ch

    async def start(self) -> int:
        enable_reflection(
            [*self._service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name], self._server
        )
        try:
            secure = server_credentials(self.settings.tls)
        except ValueError as exc:
            raise InvalidArgument(f"{self.name}: {exc}") from None
        if secure is None:
            self.port = self._server.add_insecure_port(self.settings.listen)
        else:
            self.port = self._server.add_secure_port(self.settings.listen, secure[0])
            self.certificates = secure[1]
        if not self.port:
            raise OSError(f"{self.name}: cannot listen on {self.settings.listen}")
        await self._server.start()
        if self.authenticator is not None:
            self.authenticator.start()
            self._closers.append(self.authenticator.aclose)
        for service in ("", *self._service_names):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s listening on %s", self.name, self.address)
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown; safe to call more than once."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        grace = self.settings.grace_period_secs if grace is None else grace
        try:
            await self._health.enter_graceful_shutdown()
            for hook in self._stopping_hooks:
                try:
                    await hook()
                except Exception:
                    log.exception("%s: error while stopping", self.name)
            await self._server.stop(grace)
            # Closers may still talk to peers (flush state), so channels close last.
            for closer in reversed(self._closers):
                try:
                    await closer()
                except Exception:
                    log.exception("%s: error while closing", self.name)
            for ch in self._channels:
                await ch.close()
            # The OTLP exporter is synchronous: flush off the event loop.
            await asyncio.to_thread(self.telemetry.shutdown)
        finally:
            self._stopped.set()

    async def wait_closed(self) -> None:
        await self._stopped.wait()

    async def __aenter__(self) -> ServiceHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def until_signalled() -> None:
    """Wait for SIGTERM or SIGINT (the handlers are removed again on return)."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run_until_signalled(hosts: Iterable[ServiceHost], grace: float | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop every host gracefully."""
    hosts = list(hosts)
    try:
        await until_signalled()
    finally:
        await asyncio.gather(*(h.stop(grace) for h in hosts))
