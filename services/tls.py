"""Transport security for swarmd's servers and channels: TLS and mutual TLS.

Every service takes a ``tls`` section (:class:`swarmd.services.config.TlsSettings`):

``cert_file`` / ``key_file``
    the service's certificate chain and private key (PEM). Set, the server
    listens with TLS only; its channels to peers present the same pair as a
    client certificate, which is what mutual TLS between services needs.
``ca_file``
    the CA bundle (PEM) that peers' certificates are verified against: the
    servers a channel dials and, with ``client_auth``, the clients that call.
``client_auth``
    ``none`` (any client that speaks TLS) or ``require`` (mutual TLS: no
    client certificate verified against ``ca_file``, no connection).
``server_name``
    the name channels expect in the peers' certificates when it differs from
    the host dialled (an IP address, a load balancer).

The server reloads its certificate, key and CA when their files change:
:func:`server_credentials` hands gRPC a fetcher that gRPC calls at each new
handshake, and the fetcher rereads the files only when one's modification
time or size moved. Open connections keep the certificate they started
with. Channels read their files when they are made.

Without ``cert_file`` a service listens in plaintext, as the embedded mode on
loopback does; behind a service mesh that terminates mTLS in a sidecar, keep
it so and listen on the pod's loopback (see the README).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

__all__ = [
    "CertificateReloader",
    "PeerIdentity",
    "channel_credentials",
    "channel_tls_options",
    "peer_identity",
    "server_credentials",
]

log = logging.getLogger(__name__)


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None


def _stamp(paths: Sequence[Path | None]) -> tuple[tuple[int, int], ...]:
    out = []
    for path in paths:
        if path is None:
            out.append((0, 0))
            continue
        try:
            st = os.stat(path)
        except OSError:
            out.append((-1, -1))
        else:
            out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


class CertificateReloader:
    """Builds gRPC server certificate configurations from files, again when they change."""

    def __init__(self, cert_file: Path, key_file: Path, ca_file: Path | None) -> None:
        self.files = (cert_file, key_file, ca_file)
        self._stamp = _stamp(self.files)
        self.reloads = 0
        self.initial = self._config()

    def _config(self) -> Any:
        cert_file, key_file, ca_file = self.files
        cert = _read(cert_file, "certificate")
        key = _read(key_file, "private key")
        ca = _read(ca_file, "CA bundle")
        assert cert is not None and key is not None
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch(self) -> Any:
        """gRPC's fetcher: a new configuration when the files changed, else None."""
        stamp = _stamp(self.files)
        if stamp == self._stamp:
            return None
        try:
            config = self._config()
        except (ValueError, RuntimeError) as exc:
            # Half-written files (a rotation in progress): keep serving the old pair.
            log.warning("TLS certificate reload failed, keeping the current one: %s", exc)
            return None
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.files[0])
        return config


def server_credentials(tls: Any) -> tuple[grpc.ServerCredentials, CertificateReloader] | None:
    """Credentials for ``add_secure_port`` from ``TlsSettings``; None for plaintext.

    Raises ValueError for unreadable files or a ``client_auth`` that needs a CA
    without one.
    """
    if tls.cert_file is None:
        return None
    if tls.key_file is None:
        raise ValueError("tls.cert_file is set but tls.key_file is not")
    if tls.client_auth != "none" and tls.ca_file is None:
        raise ValueError(f"tls.client_auth={tls.client_auth} needs tls.ca_file to verify client certificates")
    reloader = CertificateReloader(tls.cert_file, tls.key_file, tls.ca_file)
    creds = grpc.dynamic_ssl_server_credentials(
        reloader.initial, reloader.fetch, require_client_authentication=tls.client_auth == "require"
    )
    return creds, reloader


def channel_credentials(tls: Any) -> grpc.ChannelCredentials | None:
    """Credentials for channels to TLS peers; None when the peers speak plaintext.

    Channels use TLS when ``ca_file`` is set (verify the peers with it) or
    ``cert_file`` is (this service itself serves TLS, so its peers are taken
    to as well, verified against the system's roots).
    """
    if tls.ca_file is None and tls.cert_file is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "CA bundle"),
        private_key=_read(tls.key_file, "private key") if tls.cert_file else None,
        certificate_chain=_read(tls.cert_file, "certificate") if tls.cert_file else None,
    )


def channel_tls_options(tls: Any) -> list[tuple[str, Any]]:
    """Channel options that go with :func:`channel_credentials`."""
    if getattr(tls, "server_name", "") and (tls.ca_file is not None or tls.cert_file is not None):
        return [("grpc.ssl_target_name_override", tls.server_name)]
    return []


@dataclass(frozen=True)
class PeerIdentity:
    """Who called, as far as the transport knows."""

    #: The verified client certificate's names (SANs, or the common name); empty without mTLS.
    names: tuple[str, ...] = ()
    #: ``ssl`` or ``insecure``.
    transport: str = "insecure"


def peer_identity(context: Any) -> PeerIdentity:
    """The caller's identity from a servicer ``context`` (its auth context)."""
    try:
        auth = context.auth_context()
    except Exception:
        return PeerIdentity()
    transport = b"".join(auth.get("transport_security_type", [])).decode() or "insecure"
    names = auth.get("x509_subject_alternative_name") or auth.get("x509_common_name") or []
    return PeerIdentity(tuple(n.decode() for n in names), transport)
