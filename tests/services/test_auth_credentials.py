"""Each credential source against a real server: static token files (and
their reload), JWTs from a JWKS file, mTLS certificate names, a mesh header."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from fakes.auth_world import (
    ISSUER,
    TOKENS,
    AuthWorld,
    bearer,
    make_world,
    stats,
    status_of,
    store_with,
    token_of,
    write_token_file,
)

from swarmd.clients.tls import ClientTls
from swarmd.services.auth.peers import is_loopback_peer, mesh_names
from swarmd.services.auth.settings import AuthSettings, IdentityEntry
from swarmd.services.auth.tokens import TokenFile, hash_token
from swarmd.services.config import TlsSettings
from swarmd.services.errors import InvalidArgument
from swarmd.v1 import result_store_pb2, result_store_pb2_grpc

pytestmark = pytest.mark.timeout(60)

GEN = Path(__file__).resolve().parents[2] / "scripts" / "gen_certs.sh"


async def shared(channel: grpc.aio.Channel, metadata: Any = ()) -> grpc.StatusCode:
    """ListResults of a scope: past authorization it answers OK (an empty list)."""
    stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
    request = result_store_pb2.ListResultsRequest(scope="s")
    return await status_of(stub.ListResults(request, metadata=metadata or None, timeout=5))


def bump(path: Path) -> None:
    """Make a rewrite visible even where mtimes are coarse."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_token_file_holds_hashes_and_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    write_token_file(path, {"alice": ("client", "tenant-a")})
    assert token_of("alice") not in path.read_text() and hash_token(token_of("alice")) in path.read_text()
    tokens = TokenFile(path)
    found = tokens.lookup(token_of("alice"))
    assert found is not None and (found.subject, found.role, found.tenant) == ("alice", "client", "tenant-a")
    assert tokens.lookup(token_of("bob")) is None

    write_token_file(path, {"bob": ("admin", "")})
    bump(path)
    assert tokens.lookup(token_of("alice")) is None and tokens.lookup(token_of("bob")) is not None
    assert tokens.reloads == 1

    path.write_text("tokens: [{sha256: nothex, role: client}")  # half-written: keep what was read
    bump(path)
    assert tokens.lookup(token_of("bob")) is not None


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"sha256": "ab", "role": "client", "tenant": "t"}, "64 hex digits"),
        ({"sha256": "a" * 64, "role": "subagent"}, "role must be one of"),
        ({"sha256": "a" * 64, "role": "client"}, "needs a tenant"),
    ],
)
def test_bad_token_files_are_refused_at_start(tmp_path: Path, entry: dict[str, str], complaint: str) -> None:
    import json

    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(ValueError, match=complaint):
        TokenFile(path)


async def test_a_new_token_works_without_a_restart(tmp_path: Path) -> None:
    world = make_world(tmp_path / "auth")
    host = await store_with(world.settings, tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            assert await shared(channel, bearer(token_of("carol"))) == grpc.StatusCode.UNAUTHENTICATED
            write_token_file(world.token_file, {**TOKENS, "carol": ("service", "")})
            bump(world.token_file)
            assert await shared(channel, bearer(token_of("carol"))) == grpc.StatusCode.OK
            write_token_file(world.token_file, {"alice": TOKENS["alice"]})
            bump(world.token_file)
            assert await shared(channel, bearer(token_of("carol"))) == grpc.StatusCode.UNAUTHENTICATED
            assert await stats(channel, bearer(token_of("alice"))) == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await host.stop(0)


async def test_unreadable_token_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="token file"):
        await store_with(AuthSettings(token_file=tmp_path / "missing.yaml"), tmp_path)


def jwt_cases(world: AuthWorld) -> dict[str, tuple[str, grpc.StatusCode]]:
    now = int(time.time())
    service = {"sub": "svc", "swarmd_role": "service"}
    sign = world.keys.sign
    hs = jwt.encode({**service, "iss": ISSUER, "aud": "swarmd", "exp": now + 60}, "s" * 32, algorithm="HS256")
    return {
        "rsa": (sign(service), grpc.StatusCode.OK),
        "ec": (sign(service, kind="ec"), grpc.StatusCode.OK),
        "role list": (sign({"sub": "svc", "swarmd_role": ["viewer", "service"]}), grpc.StatusCode.OK),
        "expired": (sign({**service, "exp": now - 3600}), grpc.StatusCode.UNAUTHENTICATED),
        "not yet valid": (sign({**service, "nbf": now + 3600}), grpc.StatusCode.UNAUTHENTICATED),
        "wrong audience": (sign({**service, "aud": "someone-else"}), grpc.StatusCode.UNAUTHENTICATED),
        "wrong issuer": (sign({**service, "iss": "https://evil.test"}), grpc.StatusCode.UNAUTHENTICATED),
        "no expiry": (
            jwt.encode({**service, "iss": ISSUER, "aud": "swarmd"}, world.keys.rsa, algorithm="RS256",
                       headers={"kid": "rsa-1"}),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        "hmac": (hs, grpc.StatusCode.UNAUTHENTICATED),
        "no role": (sign({"sub": "svc"}), grpc.StatusCode.UNAUTHENTICATED),
        "client without tenant": (sign({"sub": "c", "swarmd_role": "client"}), grpc.StatusCode.UNAUTHENTICATED),
        "client": (sign({"sub": "c", "swarmd_role": "client", "swarmd_tenant": "t"}), grpc.StatusCode.PERMISSION_DENIED),
    }


async def test_jwts_are_checked_against_the_jwks(tmp_path: Path) -> None:
    world = make_world(tmp_path / "auth")
    host = await store_with(world.settings, tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            for case, (token, expected) in jwt_cases(world).items():
                assert await stats(channel, bearer(token)) == expected, case
            # A key rotated out of the JWKS file stops verifying.
            jwks = world.keys.jwks()
            jwks["keys"] = [k for k in jwks["keys"] if k["kid"] != "rsa-1"]
            import json

            (world.root / "jwks.json").write_text(json.dumps(jwks))
            bump(world.root / "jwks.json")
            token, _ = jwt_cases(world)["rsa"]
            assert await stats(channel, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop(0)


def test_mesh_header_names() -> None:
    xfcc = (
        'By=spiffe://cluster/ns/x/sa/front;Hash=abc;Subject="CN=outer";URI=spiffe://cluster/ns/x/sa/outer,'
        'By=spiffe://cluster/ns/swarmd/sa/store;Hash=def;Subject="O=acme,CN=ci-bot";'
        "URI=spiffe://cluster/ns/ci/sa/bot;DNS=bot.ci.svc"
    )
    assert mesh_names(xfcc) == ["ci-bot", "spiffe://cluster/ns/ci/sa/bot", "bot.ci.svc"]
    assert mesh_names("plain-name") == ["plain-name"]
    assert mesh_names("") == []
    assert is_loopback_peer("ipv4:127.0.0.1:5000") and is_loopback_peer("ipv6:[::1]:5000")
    assert not is_loopback_peer("ipv4:10.0.0.5:5000") and not is_loopback_peer("ipv6:[2001:db8::1]:80")


async def test_mesh_header_from_the_local_sidecar(tmp_path: Path) -> None:
    auth = AuthSettings(
        mesh_header="x-forwarded-client-cert",
        identities=[IdentityEntry(name="spiffe://cluster/ns/swarmd/sa/executor", role="service")],
    )
    host = await store_with(auth, tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            known = (("x-forwarded-client-cert", "By=x;URI=spiffe://cluster/ns/swarmd/sa/executor"),)
            unknown = (("x-forwarded-client-cert", "By=x;URI=spiffe://cluster/ns/other/sa/intruder"),)
            assert await shared(channel, known) == grpc.StatusCode.OK
            assert await shared(channel, unknown) == grpc.StatusCode.UNAUTHENTICATED
            assert await shared(channel) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop(0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make test certificates")
    where = tmp_path_factory.mktemp("pki")
    subprocess.run([str(GEN), str(where)], check=True, capture_output=True)
    return where


async def test_mtls_peer_identity_maps_to_a_role(pki: Path, tmp_path: Path) -> None:
    tls = TlsSettings(
        cert_file=pki / "server.pem", key_file=pki / "server-key.pem", ca_file=pki / "ca.pem", client_auth="require"
    )
    auth = AuthSettings(identities=[IdentityEntry(name="swarmd-client", role="service")])
    host = await store_with(auth, tmp_path, tls)
    try:
        client = ClientTls(ca_file=pki / "ca.pem", cert_file=pki / "client.pem", key_file=pki / "client-key.pem")
        async with client.channel(host.address) as channel:
            assert await shared(channel) == grpc.StatusCode.OK
            # A bearer token that does not verify is refused, certificate or not.
            assert await shared(channel, bearer("swarmd_wrong")) == grpc.StatusCode.UNAUTHENTICATED
        # The server's own certificate (names localhost, 127.0.0.1) is not listed.
        other = ClientTls(ca_file=pki / "ca.pem", cert_file=pki / "server.pem", key_file=pki / "server-key.pem")
        async with other.channel(host.address) as channel:
            assert await shared(channel) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop(0)


@pytest.fixture
def generated_tokens(tmp_path: Path) -> Path:
    script = Path(__file__).resolve().parents[2] / "scripts" / "gen_tokens.sh"
    subprocess.run([str(script), str(tmp_path / "tokens"), "acme"], check=True, capture_output=True)
    return tmp_path / "tokens"


async def test_generated_tokens_serve_compose(generated_tokens: Path, tmp_path: Path) -> None:
    """scripts/gen_tokens.sh's files, as compose.tls.yaml hands them to the services."""
    files = generated_tokens
    assert "swarmd_" not in (files / "tokens.yaml").read_text()
    auth = AuthSettings(token_file=files / "tokens.yaml", subagent_key_file=files / "subagent.key",
                        service_token_file=files / "service.token")
    host = await store_with(auth, tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            for name, expected in (("service", grpc.StatusCode.OK), ("admin", grpc.StatusCode.OK),
                                   ("client", grpc.StatusCode.PERMISSION_DENIED)):
                token = (files / f"{name}.token").read_text().strip()
                assert await stats(channel, bearer(token)) == expected, name
    finally:
        await host.stop(0)
    tokens = TokenFile(files / "tokens.yaml")
    client = tokens.lookup((files / "client.token").read_text().strip())
    assert client is not None and client.tenant == "acme"


@pytest.fixture
def jwks_server(tmp_path: Path) -> Any:
    """An HTTP server on loopback serving a JWKS (an OIDC issuer's jwks_uri), in a thread."""
    import http.server
    import threading

    world = make_world(tmp_path / "issuer")
    body = (world.root / "jwks.json").read_bytes()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield world, f"http://127.0.0.1:{server.server_address[1]}/jwks", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_jwts_against_an_issuers_jwks_url(jwks_server: Any, tmp_path: Path) -> None:
    from swarmd.services.auth.settings import JwtSettings

    world, url, hits = jwks_server
    auth = AuthSettings(jwt=JwtSettings(jwks_url=url, issuer=ISSUER, audience="swarmd"))
    host = await store_with(auth, tmp_path)
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            cases = jwt_cases(world)
            for case in ("rsa", "ec", "expired", "wrong audience", "client"):
                token, expected = cases[case]
                assert await stats(channel, bearer(token)) == expected, case
            other = make_world(tmp_path / "other")  # signed with keys the issuer never published
            assert await stats(channel, bearer(jwt_cases(other)["rsa"][0])) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop(0)
    assert hits and set(hits) == {"/jwks"}


def test_auth_settings_from_the_environment(tmp_path: Path) -> None:
    from swarmd.services.config import load_settings

    settings = load_settings(env={
        "SWARMD_ORCHESTRATOR__AUTH__TOKEN_FILE": str(tmp_path / "tokens.yaml"),
        "SWARMD_ORCHESTRATOR__AUTH__JWT__AUDIENCE": "swarmd",
        "SWARMD_RESULT_STORE__AUTH__IDENTITIES": '[{"name": "spiffe://x/ci", "role": "client", "tenant": "ci"}]',
    })
    assert settings.orchestrator.auth.configured and settings.orchestrator.auth.jwt.audience == "swarmd"
    assert settings.result_store.auth.configured and settings.result_store.auth.identities[0].tenant == "ci"
    assert not settings.executor.auth.configured  # nothing named: no authentication, as before
    with pytest.raises(InvalidArgument, match="a client needs a tenant"):
        load_settings(env={"SWARMD_EXECUTOR__AUTH__IDENTITIES": '[{"name": "x", "role": "client"}]'})
    with pytest.raises(InvalidArgument, match="executor.auth.jwt.algorithm"):
        load_settings(env={"SWARMD_EXECUTOR__AUTH__JWT__ALGORITHM": "RS256"})


@pytest.mark.parametrize(
    ("auth", "complaint"),
    [
        ({"jwt": {"jwks_file": "missing.json"}}, "cannot read the JWKS file"),
        ({"subagent_key_file": "short.key"}, "at least 32 bytes"),
        ({"token_file": "tokens.yaml", "service_token_file": "missing.token"}, "cannot read the token file"),
    ],
)
async def test_bad_credential_files_stop_the_service_at_start(
    tmp_path: Path, auth: dict[str, Any], complaint: str
) -> None:
    (tmp_path / "short.key").write_bytes(b"too short")
    write_token_file(tmp_path / "tokens.yaml", TOKENS)

    def rooted(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rooted(v) for k, v in value.items()}
        return str(tmp_path / value)

    with pytest.raises(InvalidArgument, match=complaint):
        await store_with(AuthSettings.model_validate(rooted(auth)), tmp_path)
