"""Signing keys fetched over HTTP: an OIDC issuer's (by discovery) or a JWKS URL's.

With ``jwt.issuer`` alone, :class:`RemoteKeys` reads
``<issuer>/.well-known/openid-configuration``, refuses a document whose
``issuer`` is not exactly the configured one, and fetches the JWKS its
``jwks_uri`` names; with ``jwt.jwks_url`` it fetches that JWKS directly.
The keys are cached and fetched again:

* when a token names a key id the cache does not hold (a rotation), at most
  once per ``refresh_interval_secs``;
* when the cache is older than ``keys_max_age_secs`` (discovery included);
* while none could be loaded yet (an issuer unreachable at start-up), at
  most once per ``refresh_interval_secs``: tokens are refused until then,
  each refusal and each failed fetch saying why.

A refresh that fails keeps the keys loaded before. The service starts the
first load in the background (:meth:`RemoteKeys.start`), so an issuer that
is down does not stop it from serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from swarmd.services.auth.settings import is_local_http

__all__ = ["DISCOVERY_PATH", "RemoteKeys", "discovery_url"]

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
_MAX_BYTES = 1 << 20


def discovery_url(issuer: str) -> str:
    """Where an issuer's OpenID Provider configuration is (OIDC Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + DISCOVERY_PATH


class RemoteKeys:
    """The signing keys of one issuer (``issuer``) or one JWKS URL (``jwks_url``)."""

    def __init__(
        self,
        *,
        issuer: str = "",
        jwks_url: str = "",
        refresh_interval_secs: float = 30.0,
        max_age_secs: float = 3600.0,
        timeout_secs: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if bool(issuer) == bool(jwks_url):
            raise ValueError("RemoteKeys needs an issuer or a JWKS URL, not both")
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.refresh_interval_secs = refresh_interval_secs
        self.max_age_secs = max_age_secs
        self.timeout_secs = timeout_secs
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._all: list[jwt.PyJWK] = []
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        #: Why the last fetch failed ('' after a good one).
        self.last_error = ""
        #: Fetches of the JWKS that succeeded (tests and logs).
        self.loads = 0
        self._uri = jwks_url
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[bool] | None = None

    @property
    def source(self) -> str:
        return f"issuer {self.issuer}" if self.issuer else f"JWKS {self.jwks_url}"

    # -- fetching -------------------------------------------------------------

    async def _get_json(self, client: httpx.AsyncClient, url: str, what: str) -> Any:
        try:
            reply = await client.get(url, headers={"Accept": "application/json"})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ValueError(f"cannot fetch the {what} {url}: {exc.__class__.__name__}: {exc}") from None
        if reply.status_code != 200:
            raise ValueError(f"the {what} {url} answered HTTP {reply.status_code}")
        if len(reply.content) > _MAX_BYTES:
            raise ValueError(f"the {what} {url} is larger than {_MAX_BYTES} bytes")
        try:
            return reply.json()
        except ValueError:
            raise ValueError(f"the {what} {url} is not JSON") from None

    async def _discover(self, client: httpx.AsyncClient) -> str:
        url = discovery_url(self.issuer)
        doc = await self._get_json(client, url, "OpenID configuration")
        if not isinstance(doc, dict):
            raise ValueError(f"the OpenID configuration {url} is not a JSON object")
        if doc.get("issuer") != self.issuer:
            raise ValueError(
                f"the OpenID configuration {url} names the issuer {doc.get('issuer')!r}, not {self.issuer!r}"
            )
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or not uri:
            raise ValueError(f"the OpenID configuration {url} has no jwks_uri")
        if urlsplit(uri).scheme != "https" and not is_local_http(uri):
            raise ValueError(f"the issuer's jwks_uri {uri} is not https")
        return uri

    async def _fetch(self, *, discover: bool) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_secs, follow_redirects=False, trust_env=False) as client:
            if self.issuer and (discover or not self._uri):
                self._uri = await self._discover(client)
            data = await self._get_json(client, self._uri, "JWKS")
        try:
            keys = list(jwt.PyJWKSet.from_dict(data).keys)
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"the JWKS {self._uri} holds no usable key: {exc}") from None
        self._all = keys
        self._keys = {k.key_id: k for k in keys if k.key_id}
        self.loads += 1

    async def refresh(self, *, discover: bool = False, force: bool = True) -> bool:
        """Fetch the keys now (unless ``force`` is off and the last fetch is more
        recent than the refresh interval); False, with :attr:`last_error` set and
        logged, when there are no keys fresh from this call."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not force and not self._may_retry(self._clock()):
                return False  # a concurrent caller has just fetched: no second fetch
            self._tried_at = self._clock()
            try:
                await self._fetch(discover=discover)
            except (ValueError, httpx.InvalidURL) as exc:
                self.last_error = str(exc)
                kept = " (keeping the keys loaded before)" if self._loaded_at is not None else ""
                log.warning("JWT keys of %s not loaded%s: %s", self.source, kept, exc)
                return False
            first = self._loaded_at is None
            self._loaded_at = self._clock()
            self.last_error = ""
            log.log(logging.INFO if first else logging.DEBUG, "JWT keys of %s loaded (%d keys)",
                    self.source, len(self._all))
            return True

    def start(self) -> None:
        """Begin the first load in the background (a service calls this once it serves)."""
        if self._task is None and self._loaded_at is None:
            self._task = asyncio.get_running_loop().create_task(self.refresh(discover=True))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- looking a key up -----------------------------------------------------

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return self._all[0] if len(self._all) == 1 else None

    def _may_retry(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self.refresh_interval_secs

    async def key(self, kid: str | None) -> Any:
        """The verification key for a token's ``kid``; ValueError saying why there is none."""
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)  # the first load is under way: wait for it
        now = self._clock()
        if self._loaded_at is None:
            if self._may_retry(now):
                await self.refresh(discover=True, force=False)
            if self._loaded_at is None:
                raise ValueError(f"the JWT keys of {self.source} are not loaded: {self.last_error}")
        elif now - self._loaded_at >= self.max_age_secs and self._may_retry(now):
            await self.refresh(discover=True, force=False)
        found = self._find(kid)
        if found is None and kid is not None and self._may_retry(self._clock()):
            await self.refresh(force=False)
            found = self._find(kid)
        if found is None:
            raise ValueError(f"{self.source} has no key {kid!r}")
        return found.key
