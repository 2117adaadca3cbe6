"""Who may call the gateway: the services' ``auth`` settings on HTTP requests.

:class:`GatewayAuth` is ASGI middleware in front of the SDK's routes. A
request needs ``Authorization: Bearer <token>`` with a token one of the
configured sources verifies (the same :class:`~swarmd.services.auth.authenticator.Authenticator`
as the gRPC services: token files, JWTs from a JWKS or an OIDC issuer,
subagent tokens) or one of the gateway's own ``--token`` s:

=========================================  ===============================
the request                                the answer
=========================================  ===============================
no credentials, or ones that do not verify  401, ``WWW-Authenticate: Bearer``
a caller whose role is not client or admin  403 (``error="insufficient_scope"``)
a client or an admin                        served; every orchestrator call
                                            made for it presents its token
=========================================  ===============================

The caller's token goes on to the orchestrator (:func:`caller_token`,
which the request handler reads), so the orchestrator, configured with the
same sources, sees the same identity and keeps its tenant: another tenant's
task is not found through A2A either. A gateway ``--token`` is the
gateway's own: its requests reach the orchestrator with the gateway's
credentials. The Agent Card stays public unless ``public_card`` is off.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
from typing import Any

from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from starlette.responses import JSONResponse

from swarmd.services.auth.authenticator import Authenticator
from swarmd.services.auth.identity import ADMIN, CLIENT, Identity
from swarmd.services.errors import SwarmdError

__all__ = ["GATEWAY_ROLES", "GatewayAuth", "caller_identity", "caller_token"]

log = logging.getLogger(__name__)

#: The roles that may use the gateway (the orchestrator's public API).
GATEWAY_ROLES = frozenset({CLIENT, ADMIN})

_TOKEN: contextvars.ContextVar[str] = contextvars.ContextVar("swarmd_a2a_caller_token", default="")
_IDENTITY: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("swarmd_a2a_caller", default=None)


def caller_token() -> str:
    """The bearer token of the request being served ('' for a gateway token or no authentication)."""
    return _TOKEN.get()


def caller_identity() -> Identity | None:
    """Who sent the request being served (None for a gateway token or no authentication)."""
    return _IDENTITY.get()


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


class GatewayAuth:
    """ASGI middleware: authenticate and authorize every request (the card's too unless public)."""

    def __init__(
        self, app: Any, *, tokens: list[str], authenticator: Authenticator | None, public_card: bool = True
    ) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens]
        self.authenticator = authenticator
        self.public_card = public_card

    async def _refuse(self, scope: Any, receive: Any, send: Any, status: int, message: str, challenge: str) -> None:
        response = JSONResponse({"error": message}, status_code=status, headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":  # nothing is served over websockets
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http" or (self.public_card and scope.get("path") == AGENT_CARD_WELL_KNOWN_PATH):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, raw = header.partition(b" ")
        token = raw.strip()
        if not header or scheme.lower() != b"bearer" or not token:
            await self._refuse(scope, receive, send, 401, "a bearer token is required (Authorization: Bearer <token>)",
                               'Bearer realm="swarmd"')
            return
        if any(hmac.compare_digest(token, t) for t in self.tokens):
            await self.app(scope, receive, send)  # a gateway token: the gateway's own credentials go on
            return
        text = token.decode("utf-8", "replace")
        identity: Identity | None = None
        problem = "the bearer token is not valid"
        if self.authenticator is not None:
            try:
                identity = await self.authenticator.authenticate_bearer(text)
            except SwarmdError as exc:
                problem = exc.message
        if identity is None:
            log.info("A2A %s %s refused: %s", scope.get("method"), scope.get("path"), problem)
            await self._refuse(scope, receive, send, 401, problem,
                               f'Bearer realm="swarmd", error="invalid_token", error_description="{_quoted(problem)}"')
            return
        if identity.role not in GATEWAY_ROLES:
            problem = f"{identity.role} {identity.subject!r} may not use the A2A gateway (client or admin only)"
            log.info("A2A %s %s refused: %s", scope.get("method"), scope.get("path"), problem)
            await self._refuse(scope, receive, send, 403, problem,
                               f'Bearer realm="swarmd", error="insufficient_scope", error_description="{_quoted(problem)}"')
            return
        reset_token, reset_identity = _TOKEN.set(text), _IDENTITY.set(identity)
        try:
            await self.app(scope, receive, send)
        finally:
            _TOKEN.reset(reset_token)
            _IDENTITY.reset(reset_identity)
