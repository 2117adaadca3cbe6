"""Bearer JWTs verified against a JWKS file, a JWKS URL or an OIDC issuer's keys (PyJWT).

Checks: the signature with the key the token's ``kid`` names (the only key
when the set has one and the token names none), an allowed asymmetric
algorithm, ``exp`` (required) and ``nbf`` with ``leeway_secs`` of skew,
``iss`` (required) when ``issuer`` is set, ``aud`` against ``audience``.
The role and tenant come from the configured claims. A JWKS file is reread
when it changes; keys fetched over HTTP (``jwks_url``, or discovery from
``issuer`` alone) are cached by :class:`~.oidc.RemoteKeys`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jwt

from swarmd.services.auth.identity import Identity
from swarmd.services.auth.oidc import RemoteKeys
from swarmd.services.auth.settings import JwtSettings

__all__ = ["JwtVerifier", "looks_like_jwt"]

_ROLES = ("client", "admin", "service")


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts separated by dots."""
    return token.count(".") == 2 and not token.startswith("swarmd")


class _JwksFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._keys: list[jwt.PyJWK] = []
        self.keys()  # unreadable at start-up: a configuration error

    def keys(self) -> list[jwt.PyJWK]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._stamp is None:
                raise ValueError(f"cannot read the JWKS file {self.path}: {exc.strerror}") from None
            return self._keys
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._keys = list(jwt.PyJWKSet.from_dict(data).keys)
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                if self._stamp is None:
                    raise ValueError(f"JWKS file {self.path}: {exc}") from None
            self._stamp = stamp
        return self._keys


class JwtVerifier:
    """Verifies bearer JWTs under one :class:`JwtSettings`."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._file = _JwksFile(settings.jwks_file) if settings.jwks_file is not None else None
        self.remote: RemoteKeys | None = None
        if settings.jwks_url or settings.discovery:
            self.remote = RemoteKeys(
                issuer=settings.issuer if settings.discovery else "",
                jwks_url=settings.jwks_url,
                refresh_interval_secs=settings.refresh_interval_secs,
                max_age_secs=settings.keys_max_age_secs,
                timeout_secs=settings.fetch_timeout_secs,
            )

    @staticmethod
    def handles(token: str) -> bool:
        """Whether ``token`` is for this verifier (it looks like a JWT)."""
        return looks_like_jwt(token)

    async def _key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise ValueError("the bearer token is not a JWT") from None
        if self._file is not None:
            keys = self._file.keys()
            for key in keys:
                if kid is not None and key.key_id == kid:
                    return key.key
            if kid is None and len(keys) == 1:
                return keys[0].key
        if self.remote is not None:
            return await self.remote.key(kid if isinstance(kid, str) else None)
        raise ValueError(f"the JWKS has no key {kid!r}")

    async def verify(self, token: str) -> Identity:
        """The identity of a valid JWT; ValueError saying why it is not."""
        s = self.settings
        key = await self._key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[a for a in s.algorithms if not a.startswith("HS") and a != "none"],
                audience=s.audience or None,
                issuer=s.issuer or None,
                leeway=s.leeway_secs,
                options={"require": ["exp", "iss"] if s.issuer else ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise ValueError("the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise ValueError("the JWT is not valid yet (nbf)") from None
        except jwt.PyJWTError as exc:
            raise ValueError(f"the JWT does not verify: {exc}") from None
        raw = claims.get(s.role_claim, s.default_role)
        candidates = raw if isinstance(raw, list) else [raw]
        role = next((r for r in candidates if r in _ROLES), None)
        if role is None:
            raise ValueError(f"the JWT's {s.role_claim} claim names no role swarmd knows ({', '.join(_ROLES)})")
        tenant = str(claims.get(s.tenant_claim) or "")
        if role == "client" and not tenant:
            raise ValueError(f"the JWT of a client needs a {s.tenant_claim} claim")
        return Identity(subject=str(claims.get(s.subject_claim, "")), role=role, tenant=tenant, source="jwt")
