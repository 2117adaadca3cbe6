"""The ``auth`` section of every service's settings.

A service authenticates its callers as soon as one credential source is set
(:attr:`AuthSettings.configured`): a token file, a JWKS (file or URL),
identities for mTLS peers or a mesh header, or the subagent key; an OIDC
issuer (``jwt.issuer`` alone) counts as a JWKS. With none,
the service accepts every call as it always did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AuthSettings", "IdentityEntry", "JwtSettings", "Role", "is_local_http"]

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

#: The roles of :mod:`swarmd.services.auth.policy`.
Role = Literal["client", "admin", "service", "subagent"]


def is_local_http(url: str) -> bool:
    """Plain HTTP to a loopback host (the only plain HTTP an issuer may use)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IdentityEntry(_Model):
    """A transport identity (mTLS certificate name or mesh header) and what it may do."""

    name: str = Field(
        ..., min_length=1, description="A name of the peer's certificate (a SAN such as a SPIFFE URI or DNS "
        "name, or the common name), exactly as it appears."
    )
    role: Literal["client", "admin", "service"] = Field(..., description="Role of callers with this identity.")
    tenant: str = Field("", description="Tenant of callers with this identity (clients).")
    subject: str = Field("", description="Name logged for the caller; defaults to name.")

    @model_validator(mode="after")
    def _client_has_tenant(self) -> IdentityEntry:
        if self.role == "client" and not self.tenant:
            raise ValueError(f"identity {self.name!r}: a client needs a tenant")
        return self


class JwtSettings(_Model):
    """Bearer JWTs verified against a JWKS."""

    jwks_file: Path | None = Field(None, description="JWKS (JSON) file; reread when it changes.")
    jwks_url: str = Field(
        "", description="JWKS URL of an OIDC issuer (its openid-configuration's jwks_uri); keys are cached "
        "and fetched again for an unknown key id."
    )
    issuer: str = Field(
        "", description="Required iss claim; empty accepts any issuer. Set without jwks_file and jwks_url, it "
        "is an OIDC issuer URL whose keys are found by discovery (<issuer>/.well-known/openid-configuration, "
        "whose issuer must be this exact string, then its jwks_uri): https, or http to a loopback host."
    )
    audience: str = Field("", description="Required aud claim; empty accepts tokens without one only.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"],
        description="Signature algorithms accepted (never none, never HMAC).",
    )
    subject_claim: str = Field("sub", description="Claim naming the caller.")
    role_claim: str = Field(
        "swarmd_role", description="Claim holding the role (a string, or a list: the first role known wins)."
    )
    tenant_claim: str = Field("swarmd_tenant", description="Claim holding the tenant.")
    default_role: Literal["", "client", "admin", "service"] = Field(
        "", description="Role of a token without the role claim; empty refuses such tokens."
    )
    leeway_secs: float = Field(30.0, ge=0, description="Clock skew tolerated on exp and nbf.")
    refresh_interval_secs: float = Field(
        30.0, ge=0, description="Keys fetched over HTTP (issuer or jwks_url): the least time between two "
        "fetches made because a token names an unknown key id, or because no keys could be loaded yet."
    )
    keys_max_age_secs: float = Field(
        3600.0, gt=0, description="Keys fetched over HTTP are fetched again (discovery included) once older."
    )
    fetch_timeout_secs: float = Field(5.0, gt=0, description="Timeout of each discovery and JWKS fetch.")

    @property
    def configured(self) -> bool:
        return self.jwks_file is not None or bool(self.jwks_url) or bool(self.issuer)

    @property
    def discovery(self) -> bool:
        """Whether the keys come from the issuer's OIDC discovery document."""
        return bool(self.issuer) and self.jwks_file is None and not self.jwks_url

    @model_validator(mode="after")
    def _discoverable_issuer(self) -> JwtSettings:
        if self.discovery:
            parts = urlsplit(self.issuer)
            if not parts.netloc or (parts.scheme != "https" and not is_local_http(self.issuer)):
                raise ValueError(
                    f"jwt.issuer {self.issuer!r}: an issuer found by discovery is an https URL "
                    "(or http to a loopback host)"
                )
            if parts.query or parts.fragment:
                raise ValueError(f"jwt.issuer {self.issuer!r}: an issuer URL has no query or fragment")
        return self


class AuthSettings(_Model):
    """Authentication and authorization of a service's callers (see :mod:`swarmd.services.auth`)."""

    token_file: Path | None = Field(
        None, description="YAML or JSON file of static tokens: entries {sha256, subject, role, tenant}, the "
        "token itself never stored (swarmd auth-token hash); reread when it changes."
    )
    jwt: JwtSettings = Field(default_factory=JwtSettings, description="Bearer JWTs verified against a JWKS.")
    identities: list[IdentityEntry] = Field(
        default_factory=list,
        description="Roles of mTLS peers (names from the verified client certificate) and of identities a "
        "mesh sidecar names in mesh_header.",
    )
    mesh_header: str = Field(
        "", description="Metadata header in which a sidecar that terminated mTLS names the caller "
        "(x-forwarded-client-cert, or a header holding the name alone); honoured from loopback peers only."
    )
    subagent_key_file: Path | None = Field(
        None, description="Secret key (a file, at least 32 bytes) with which the orchestrator signs the "
        "per-attempt subagent tokens and every service verifies them; the same file on all services."
    )
    subagent_token_ttl_secs: float = Field(
        900.0, gt=0, description="How long a subagent token stays valid after its attempt was sent, at least: "
        "the orchestrator extends it to the swarm's subtask_timeout_secs plus 5 minutes."
    )
    service_token_file: Path | None = Field(
        None, description="File holding the token this service presents to its peers (role service in their "
        "token files); the SWARMD_SERVICE_TOKEN environment variable is used when unset."
    )
    authenticate_health: bool = Field(
        False, description="Health checking and server reflection need credentials too (any role)."
    )

    @property
    def configured(self) -> bool:
        """Whether callers must authenticate at all."""
        return (
            self.token_file is not None
            or self.jwt.configured
            or bool(self.identities)
            or bool(self.mesh_header)
            or self.subagent_key_file is not None
        )
