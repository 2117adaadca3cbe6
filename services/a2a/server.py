"""The gateway's HTTP server: Starlette routes from the SDK (the card, the
JSON-RPC binding at ``/``, the HTTP+JSON binding under ``/rest``) around
:class:`SwarmdRequestHandler`, :class:`~.auth.GatewayAuth` when tokens or
``auth`` settings are configured, and uvicorn serving it in the caller's
event loop.

    async with A2AGateway(settings) as gateway:
        print(gateway.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from starlette.applications import Starlette

from swarmd.clients.client import SwarmdClient
from swarmd.clients.tls import ClientTls
from swarmd.services.a2a.auth import GatewayAuth
from swarmd.services.a2a.card import JSONRPC_PATH, REST_PATH, agent_card
from swarmd.services.a2a.handler import SwarmdRequestHandler
from swarmd.services.a2a.repositories import Repositories
from swarmd.services.auth.authenticator import Authenticator
from swarmd.services.auth.settings import AuthSettings

__all__ = ["A2AGateway", "GatewaySettings"]

log = logging.getLogger(__name__)


@dataclass
class GatewaySettings:
    """How a gateway is run: where it listens, the orchestrator it fronts,
    its repositories, who may call it (``auth``, the services' settings,
    and its own ``tokens``; neither: no authentication), the model used
    when a request names none, and the URL the card advertises (default:
    ``http://`` + the address it listens on)."""

    orchestrator: str
    repositories: Repositories
    listen: str = "127.0.0.1:0"
    tokens: list[str] = field(default_factory=list)
    default_model: str = ""
    public_url: str = ""
    tls: ClientTls | None = None
    #: Bearer token the gateway presents to an orchestrator that authenticates
    #: for requests that bring no token of their own (a gateway ``tokens`` one,
    #: or no authentication): a client token, those swarms belong to its tenant;
    #: None reads SWARMD_TOKEN / SWARMD_TOKEN_FILE.
    orchestrator_token: str | None = None
    #: Callers' credentials as the gRPC services take them (bearer tokens from
    #: token files, JWTs); each caller's token goes on to the orchestrator.
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: The Agent Card is served without credentials (the A2A convention).
    public_card: bool = True


def _split(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class A2AGateway:
    """An A2A server in front of one orchestrator; ``start``/``stop`` or ``async with``."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.client: SwarmdClient | None = None
        self.authenticator: Authenticator | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []
        self.address = ""

    @property
    def url(self) -> str:
        """The base URL the card advertises."""
        return (self.settings.public_url or f"http://{self.address}").rstrip("/")

    def _app(self, handler: SwarmdRequestHandler) -> Any:
        auth = self.settings.auth
        card = agent_card(
            self.url, self.settings.repositories.names, bearer=bool(self.settings.tokens) or auth.configured,
            openid_issuer=auth.jwt.issuer if auth.jwt.discovery else "",
        )
        routes = [
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, rpc_url=JSONRPC_PATH),
            *create_rest_routes(handler, path_prefix=REST_PATH),
        ]
        app: Any = Starlette(routes=routes)
        if self.settings.tokens or self.authenticator is not None:
            app = GatewayAuth(app, tokens=self.settings.tokens, authenticator=self.authenticator,
                              public_card=self.settings.public_card)
        return app

    async def start(self) -> A2AGateway:
        """Raises ValueError for settings it cannot run with (a listen address, credential files)."""
        if self.settings.auth.configured:
            self.authenticator = Authenticator(self.settings.auth)
        await self.settings.repositories.prepare()
        host, port = _split(self.settings.listen)
        # Bound first: the card names the gateway's URL, port included.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ValueError(f"the A2A gateway cannot listen on {self.settings.listen}: {exc.strerror}") from None
        bound = sock.getsockname()[1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.address = f"[{shown}]:{bound}" if ":" in shown else f"{shown}:{bound}"
        self.client = SwarmdClient(
            self.settings.orchestrator, tls=self.settings.tls, token=self.settings.orchestrator_token
        )
        handler = SwarmdRequestHandler(
            self.client, self.settings.repositories, default_model=self.settings.default_model
        )
        config = uvicorn.Config(self._app(handler), log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        # uvicorn's serve() in steps, so start() returns once the socket is
        # served; the caller owns the signals (nothing is captured here).
        config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        if server.should_exit:
            sock.close()
            raise RuntimeError(f"the A2A gateway could not start on {self.settings.listen}")
        self._server, self._sockets = server, [sock]
        self._task = asyncio.create_task(server.main_loop())
        if self.authenticator is not None:
            self.authenticator.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.shutdown(sockets=self._sockets)
            self._server = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self.authenticator is not None:
            await self.authenticator.aclose()
            self.authenticator = None

    async def __aenter__(self) -> A2AGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def workspace_default() -> Path:
    """Where git-URL repositories are cloned when no workspace is given."""
    return Path(".swarmd") / "a2a-repositories"
