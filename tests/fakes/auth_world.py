"""A world of credentials for the authentication tests: token files, a JWKS
with a real RSA key, a subagent key, and the three services (real gRPC on
loopback, real SQLite) with authentication switched on."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fakes.swarm_services import test_plugins

from swarmd.clients.launcher import EmbeddedSwarmd, build_service
from swarmd.services.auth.settings import AuthSettings, JwtSettings
from swarmd.services.auth.subagent import SubagentTokens
from swarmd.services.auth.tokens import hash_token
from swarmd.services.config import Settings, TlsSettings
from swarmd.v1 import result_store_pb2, result_store_pb2_grpc

ISSUER = "https://issuer.test"
AUDIENCE = "swarmd"

TOKENS = {
    "alice": ("client", "tenant-a"),
    "bob": ("client", "tenant-b"),
    "root": ("admin", ""),
    "services": ("service", ""),
}


def token_of(subject: str) -> str:
    return f"swarmd_test_{subject}_token_0123456789"


def write_token_file(path: Path, subjects: dict[str, tuple[str, str]]) -> None:
    entries = [
        {"sha256": hash_token(token_of(s)), "subject": s, "role": role, **({"tenant": tenant} if tenant else {})}
        for s, (role, tenant) in subjects.items()
    ]
    path.write_text(json.dumps({"tokens": entries}) if path.suffix == ".json" else _yaml(entries))


def _yaml(entries: list[dict[str, str]]) -> str:
    import yaml

    return yaml.safe_dump({"tokens": entries})


@dataclass
class Keys:
    """Signing keys whose public halves are in the JWKS file."""

    rsa: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (("rsa-1", self.rsa, "RS256"), ("ec-1", self.ec, "ES256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            jwk.update(kid=kid, alg=alg, use="sig")
            keys.append(jwk)
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], *, kind: str = "rsa") -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
        key, kid, alg = (self.rsa, "rsa-1", "RS256") if kind == "rsa" else (self.ec, "ec-1", "ES256")
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


@dataclass
class AuthWorld:
    root: Path
    keys: Keys
    settings: AuthSettings
    subagent_key: bytes

    @property
    def token_file(self) -> Path:
        assert self.settings.token_file is not None
        return self.settings.token_file

    def subagent_token(self, swarm_id: str, subtask_id: str, tenant: str = "tenant-a", ttl: float = 300) -> str:
        return SubagentTokens(self.subagent_key).mint(swarm_id, subtask_id, 1, tenant, ttl_secs=ttl)


def make_world(root: Path, **overrides: Any) -> AuthWorld:
    root.mkdir(parents=True, exist_ok=True)
    keys = Keys()
    (root / "jwks.json").write_text(json.dumps(keys.jwks()))
    write_token_file(root / "tokens.yaml", TOKENS)
    (root / "service.token").write_text(token_of("services") + "\n")
    key = b"k" * 16 + b"0123456789abcdef0123456789abcdef"
    (root / "subagent.key").write_bytes(key)
    settings = AuthSettings(
        token_file=root / "tokens.yaml",
        jwt=JwtSettings(jwks_file=root / "jwks.json", issuer=ISSUER, audience=AUDIENCE),
        subagent_key_file=root / "subagent.key",
        service_token_file=root / "service.token",
        **overrides,
    )
    return AuthWorld(root, keys, settings, key)


def settings_for(world: AuthWorld, **executor_options: str) -> Settings:
    settings = Settings()
    for section in (settings.orchestrator, settings.executor, settings.result_store):
        section.auth = world.settings.model_copy(deep=True)
        section.grace_period_secs = 0
    settings.executor.options = dict(executor_options)
    settings.telemetry.enabled = False
    return settings


@contextlib.asynccontextmanager
async def serve_with_auth(world: AuthWorld, tmp_path: Path, **executor_options: str) -> AsyncIterator[EmbeddedSwarmd]:
    """The three services with ``world``'s authentication, the fake executor and the local one."""
    embedded = EmbeddedSwarmd(
        settings_for(world, **executor_options), db_path=tmp_path / "swarmd.db", plugins=test_plugins(builtins=True)
    )
    async with embedded:
        embedded.services["orchestrator"]._deps.cwd = str(tmp_path)
        yield embedded


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def status_of(call: Any) -> grpc.StatusCode:
    """The status a call ended with (OK when it answered)."""
    try:
        result = call
        if hasattr(result, "__aiter__"):
            async for _ in result:
                break
        else:
            await result
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def store_with(auth: AuthSettings, tmp_path: Path, tls: TlsSettings | None = None) -> Any:
    settings = Settings()
    settings.result_store.db_path = tmp_path / "store.db"
    settings.result_store.auth = auth
    settings.result_store.grace_period_secs = 0
    settings.telemetry.enabled = False
    if tls is not None:
        settings.result_store.tls = tls
    host, _ = await build_service("result-store", settings)
    await host.start()
    return host


async def stats(channel: grpc.aio.Channel, metadata: Any = ()) -> grpc.StatusCode:
    """GetCacheStats: an internal RPC (service and admin only)."""
    stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
    return await status_of(stub.GetCacheStats(result_store_pb2.GetCacheStatsRequest(), metadata=metadata or None, timeout=5))
