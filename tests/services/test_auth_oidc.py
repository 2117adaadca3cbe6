"""JWTs from an OIDC issuer found by discovery: a real HTTP server on
127.0.0.1:0 serves the OpenID configuration and the JWKS, a real result
store verifies the tokens (GetCacheStats: service and admin only)."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.auth_world import bearer, stats, store_with

from swarmd.services.auth.oidc import DISCOVERY_PATH, RemoteKeys
from swarmd.services.auth.settings import AuthSettings, JwtSettings

pytestmark = pytest.mark.timeout(60)

SERVICE = {"sub": "svc", "swarmd_role": "service"}


def new_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg="RS256", use="sig")
    return dict(jwk)


@dataclass
class Issuer:
    """What the HTTP server serves, changeable while it runs."""

    url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)
    #: The issuer the discovery document names (default: the real one).
    claims_issuer: str | None = None
    hits: list[str] = field(default_factory=list)

    def add_key(self, kid: str) -> Any:
        self.keys[kid] = new_key()
        return self.keys[kid]

    def sign(self, claims: dict[str, Any], kid: str = "k1", key: Any = None) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": "swarmd", "iat": now, "exp": now + 300, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def document(self, path: str) -> dict[str, Any] | None:
        if path == DISCOVERY_PATH:
            issuer = self.url if self.claims_issuer is None else self.claims_issuer
            return {"issuer": issuer, "jwks_uri": self.url + "/keys", "id_token_signing_alg_values_supported": ["RS256"]}
        if path == "/keys":
            return {"keys": [public_jwk(key, kid) for kid, key in self.keys.items()]}
        return None


def serve(issuer: Issuer, port: int = 0) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.hits.append(self.path)
            doc = issuer.document(self.path)
            body = json.dumps(doc).encode()
            self.send_response(200 if doc is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


def shut(server: http.server.ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    found.add_key("k1")
    server = serve(found)
    try:
        yield found
    finally:
        shut(server)


def oidc(issuer_url: str, **kw: Any) -> AuthSettings:
    return AuthSettings(jwt=JwtSettings(issuer=issuer_url, audience="swarmd", refresh_interval_secs=0, **kw))


async def test_tokens_of_a_discovered_issuer(issuer: Issuer, tmp_path: Any) -> None:
    host = await store_with(oidc(issuer.url), tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            good = issuer.sign(SERVICE)
            assert await stats(channel, bearer(good)) == grpc.StatusCode.OK
            assert issuer.hits[:2] == [DISCOVERY_PATH, "/keys"]
            now = int(time.time())
            refused = {
                "wrong iss": issuer.sign({**SERVICE, "iss": "http://127.0.0.1:1"}),
                "no iss": issuer.sign({**SERVICE, "iss": None}),
                "wrong aud": issuer.sign({**SERVICE, "aud": "someone-else"}),
                "expired": issuer.sign({**SERVICE, "exp": now - 3600}),
                "unknown kid": issuer.sign(SERVICE, kid="k9", key=new_key()),
                "known kid, other key": issuer.sign(SERVICE, kid="k1", key=new_key()),
            }
            for case, token in refused.items():
                assert await stats(channel, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED, case
            assert await stats(channel, bearer(good)) == grpc.StatusCode.OK

            # The issuer rotates: a new key id appears in its JWKS, the old one goes.
            key2 = issuer.add_key("k2")
            del issuer.keys["k1"]
            fetched = issuer.hits.count("/keys")
            assert await stats(channel, bearer(issuer.sign(SERVICE, kid="k2", key=key2))) == grpc.StatusCode.OK
            assert issuer.hits.count("/keys") == fetched + 1
            # The cache now holds the new set only.
            assert await stats(channel, bearer(good)) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop(0)


async def test_a_discovery_document_naming_another_issuer_is_refused(
    issuer: Issuer, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.claims_issuer = "https://impostor.test"
    caplog.set_level(logging.INFO)
    host = await store_with(oidc(issuer.url), tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            assert await stats(channel, bearer(issuer.sign(SERVICE))) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop(0)
    assert "/keys" not in issuer.hits, "no JWKS is fetched from a document that names another issuer"
    assert "names the issuer 'https://impostor.test'" in caplog.text


async def test_an_unreachable_issuer_does_not_stop_the_service(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    # A port bound but not listening: connections are refused.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    down = Issuer(url=f"http://127.0.0.1:{port}")
    down.add_key("k1")
    caplog.set_level(logging.INFO)
    host = await store_with(oidc(down.url), tmp_path)
    server = None
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            token = down.sign(SERVICE)
            assert await stats(channel, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED
            assert "JWT keys of issuer" in caplog.text and "not loaded" in caplog.text
            holder.close()
            server = serve(down, port)  # the issuer comes up: the next token loads the keys
            assert await stats(channel, bearer(token)) == grpc.StatusCode.OK
    finally:
        holder.close()
        if server is not None:
            shut(server)
        await host.stop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refetches_are_rate_limited_and_keys_expire(issuer: Issuer) -> None:
    clock = Clock()
    keys = RemoteKeys(issuer=issuer.url, refresh_interval_secs=30, max_age_secs=600, clock=clock)
    assert await keys.key("k1") is not None
    assert issuer.hits == [DISCOVERY_PATH, "/keys"]
    for _ in range(3):  # unknown key ids within the interval: no fetch
        with pytest.raises(ValueError, match="has no key 'k9'"):
            await keys.key("k9")
    assert issuer.hits.count("/keys") == 1
    issuer.add_key("k2")
    clock.now += 30
    assert await keys.key("k2") is not None  # the interval passed: one fetch, the JWKS only
    assert issuer.hits == [DISCOVERY_PATH, "/keys", "/keys"]
    clock.now += 600
    assert await keys.key("k1") is not None  # too old: discovery and JWKS again
    assert issuer.hits[-2:] == [DISCOVERY_PATH, "/keys"] and keys.loads == 3
    # Many tokens naming unknown key ids at once: one fetch.
    clock.now += 30
    fetched = issuer.hits.count("/keys")
    for outcome in await asyncio.gather(*(keys.key(f"x{i}") for i in range(5)), return_exceptions=True):
        assert isinstance(outcome, ValueError)
    assert issuer.hits.count("/keys") == fetched + 1
    # A refresh that fails keeps the keys loaded before.
    issuer.claims_issuer = "https://impostor.test"
    clock.now += 600
    assert await keys.key("k2") is not None
    assert "impostor" in keys.last_error


def test_an_issuer_found_by_discovery_is_https_or_loopback() -> None:
    assert JwtSettings(issuer="https://login.example.com/tenant/v2.0").discovery
    assert JwtSettings(issuer="http://127.0.0.1:8080").discovery
    assert AuthSettings(jwt=JwtSettings(issuer="https://login.example.com")).configured
    # With a JWKS source the issuer is the iss check only.
    assert not JwtSettings(issuer="http://idp.example", jwks_url="https://idp.example/jwks").discovery
    for bad in ("http://idp.example", "idp.example", "https://idp.example/?x=1"):
        with pytest.raises(ValueError, match="jwt.issuer"):
            JwtSettings(issuer=bad)
