"""From a call's metadata and transport to an :class:`Identity`, or UNAUTHENTICATED.

The sources, in order:

1. ``authorization: Bearer <token>``: a subagent token (``swarmd-sa.…``,
   :mod:`.subagent`), a JWT (:mod:`.jwt_keys`) or a static token
   (:mod:`.tokens`). A bearer token that does not verify is refused; it does
   not fall back to the transport identity.
2. The mesh header (``auth.mesh_header``) from a loopback peer (:mod:`.peers`).
3. The verified mTLS client certificate's names.

Every refusal is :class:`~swarmd.services.errors.Unauthenticated` with one
message per cause, never a word about what the call asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from swarmd.services.auth.identity import Identity
from swarmd.services.auth.peers import IdentityMap, is_loopback_peer, mesh_names
from swarmd.services.auth.settings import AuthSettings
from swarmd.services.auth.subagent import PREFIX, SubagentTokens, read_key
from swarmd.services.auth.tokens import TokenFile
from swarmd.services.errors import Unauthenticated
from swarmd.services.tls import peer_identity

if TYPE_CHECKING:
    from swarmd.services.auth.jwt_keys import JwtVerifier

__all__ = ["Authenticator", "bearer_token"]

log = logging.getLogger(__name__)


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token of an ``authorization: Bearer`` entry; None without one.

    Raises Unauthenticated for an authorization entry of another scheme.
    """
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization metadata must read 'Bearer <token>'", reason="BAD_CREDENTIALS")
        return token.strip()
    return None


class Authenticator:
    """The credential sources one service's ``auth`` settings configure."""

    def __init__(self, settings: AuthSettings) -> None:
        """Raises ValueError for an unreadable token file, JWKS or key."""
        self.settings = settings
        self.tokens = TokenFile(settings.token_file) if settings.token_file is not None else None
        self.jwt: JwtVerifier | None = None
        if settings.jwt.configured:
            # PyJWT, cryptography and httpx are loaded only by a service that accepts JWTs.
            from swarmd.services.auth.jwt_keys import JwtVerifier

            self.jwt = JwtVerifier(settings.jwt)
        self.subagents = (
            SubagentTokens(read_key(settings.subagent_key_file), settings.subagent_token_ttl_secs)
            if settings.subagent_key_file is not None
            else None
        )
        self.identities = IdentityMap(settings.identities)
        self.mesh_header = settings.mesh_header.lower()

    def start(self) -> None:
        """Begin loading keys fetched over HTTP (in the background: an issuer that is down
        does not stop the service; its tokens are refused until the keys load)."""
        if self.jwt is not None and self.jwt.remote is not None:
            self.jwt.remote.start()

    async def aclose(self) -> None:
        if self.jwt is not None and self.jwt.remote is not None:
            await self.jwt.remote.aclose()

    async def authenticate_bearer(self, token: str) -> Identity:
        """The caller a bearer token names; Unauthenticated when it does not verify."""
        if token.startswith(PREFIX):
            if self.subagents is None:
                raise Unauthenticated("subagent tokens are not accepted here", reason="BAD_CREDENTIALS")
            try:
                return self.subagents.verify(token)
            except ValueError as exc:
                raise Unauthenticated(str(exc), reason="BAD_CREDENTIALS") from None
        if self.jwt is not None and self.jwt.handles(token):
            try:
                return await self.jwt.verify(token)
            except ValueError as exc:
                raise Unauthenticated(str(exc), reason="BAD_CREDENTIALS") from None
        found = self.tokens.lookup(token) if self.tokens is not None else None
        if found is None:
            raise Unauthenticated("the bearer token is not valid", reason="BAD_CREDENTIALS")
        return found

    async def authenticate(self, context: Any) -> Identity:
        """The caller of the RPC ``context`` serves; Unauthenticated when there is none."""
        metadata = tuple(context.invocation_metadata() or ())
        token = bearer_token(metadata)
        if token is not None:
            return await self.authenticate_bearer(token)
        if self.mesh_header and self.identities:
            values = [v for k, v in metadata if k.lower() == self.mesh_header and isinstance(v, str)]
            if values:
                if not is_loopback_peer(context.peer() or ""):
                    raise Unauthenticated(
                        f"{self.mesh_header} is honoured from the local sidecar only", reason="BAD_CREDENTIALS"
                    )
                found = self.identities.lookup(mesh_names(values[-1]), "mesh")
                if found is None:
                    raise Unauthenticated("the identity in the mesh header is not known", reason="BAD_CREDENTIALS")
                return found
        peer = peer_identity(context)
        if peer.names and self.identities:
            found = self.identities.lookup(peer.names, "mtls")
            if found is not None:
                return found
            raise Unauthenticated("the client certificate's identity is not known", reason="BAD_CREDENTIALS")
        raise Unauthenticated("credentials are required: authorization: Bearer <token>", reason="MISSING_CREDENTIALS")
