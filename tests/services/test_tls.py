"""TLS and mutual TLS on a real service host over real sockets, with
certificates made by ``scripts/gen_certs.sh`` (openssl)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.clients.launcher import build_service
from swarmd.clients.tls import ClientTls
from swarmd.services.config import Settings, TlsSettings
from swarmd.services.errors import InvalidArgument

pytestmark = pytest.mark.timeout(60)

GEN = Path(__file__).resolve().parents[2] / "scripts" / "gen_certs.sh"


def pki(where: Path) -> Path:
    subprocess.run([str(GEN), str(where)], check=True, capture_output=True)
    return where


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two unrelated CAs, each with a server and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make test certificates")
    root = tmp_path_factory.mktemp("pki")
    return pki(root / "a"), pki(root / "b")


def settings_with(tls: TlsSettings, db: Path) -> Settings:
    settings = Settings()
    settings.result_store.tls = tls
    settings.result_store.db_path = db
    return settings


async def healthy(address: str, tls: ClientTls) -> grpc.StatusCode:
    async with tls.channel(address) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def server_tls(pki_dir: Path, **extra: object) -> TlsSettings:
    return TlsSettings(cert_file=pki_dir / "server.pem", key_file=pki_dir / "server-key.pem", **extra)


async def test_tls_server_refuses_plaintext(certs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = certs
    host, _ = await build_service("result-store", settings_with(server_tls(a), tmp_path / "db.sqlite"))
    await host.start()
    try:
        assert await healthy(host.address, ClientTls(ca_file=a / "ca.pem")) == grpc.StatusCode.OK
        assert await healthy(host.address, ClientTls()) == grpc.StatusCode.UNAVAILABLE  # plaintext
        assert await healthy(host.address, ClientTls(ca_file=b / "ca.pem")) == grpc.StatusCode.UNAVAILABLE
    finally:
        await host.stop(0)


async def test_mutual_tls_needs_a_client_certificate_from_the_ca(certs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = certs
    tls = server_tls(a, ca_file=a / "ca.pem", client_auth="require")
    host, _ = await build_service("result-store", settings_with(tls, tmp_path / "db.sqlite"))
    await host.start()
    try:
        ok = ClientTls(ca_file=a / "ca.pem", cert_file=a / "client.pem", key_file=a / "client-key.pem")
        assert await healthy(host.address, ok) == grpc.StatusCode.OK
        assert await healthy(host.address, ClientTls(ca_file=a / "ca.pem")) == grpc.StatusCode.UNAVAILABLE
        other_ca = ClientTls(ca_file=a / "ca.pem", cert_file=b / "client.pem", key_file=b / "client-key.pem")
        assert await healthy(host.address, other_ca) == grpc.StatusCode.UNAVAILABLE
    finally:
        await host.stop(0)


async def test_rotated_certificate_is_served_to_new_connections(certs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = certs
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.pem", "server-key.pem"):
        shutil.copy(a / name, live / name)
    host, _ = await build_service("result-store", settings_with(server_tls(live), tmp_path / "db.sqlite"))
    await host.start()
    try:
        trusts_b = ClientTls(ca_file=b / "ca.pem")
        assert await healthy(host.address, trusts_b) == grpc.StatusCode.UNAVAILABLE
        # Rotate: the key first, then the certificate (a half-done rotation keeps the old pair).
        for name in ("server-key.pem", "server.pem"):
            shutil.copy(b / name, live / f".{name}")
            (live / f".{name}").replace(live / name)
        for _ in range(50):
            if await healthy(host.address, trusts_b) == grpc.StatusCode.OK:
                break
            await asyncio.sleep(0.1)
        assert await healthy(host.address, trusts_b) == grpc.StatusCode.OK
        assert await healthy(host.address, ClientTls(ca_file=a / "ca.pem")) == grpc.StatusCode.UNAVAILABLE
        assert host.certificates is not None and host.certificates.reloads >= 1
    finally:
        await host.stop(0)


async def test_bad_tls_settings_are_clear_errors(certs: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = certs
    for tls, why in [
        (TlsSettings(cert_file=a / "server.pem"), "key_file is not"),
        (TlsSettings(cert_file=tmp_path / "missing.pem", key_file=a / "server-key.pem"), "cannot read"),
        (server_tls(a, client_auth="require"), "needs tls.ca_file"),
    ]:
        host, _ = await build_service("result-store", settings_with(tls, tmp_path / "db.sqlite"))
        with pytest.raises(InvalidArgument, match=why):
            await host.start()
        await host.stop(0)


def test_client_tls_from_the_environment(tmp_path: Path) -> None:
    tls = ClientTls.from_env({"SWARMD_TLS_CA": str(tmp_path / "ca.pem"), "SWARMD_TLS_SERVER_NAME": "orch"})
    assert tls.active and tls.ca_file == tmp_path / "ca.pem" and tls.server_name == "orch"
    assert not ClientTls.from_env({}).active
    assert ClientTls.from_env({"SWARMD_TLS": "1"}).active
