"""TLS settings of a client: which CA to trust, and a certificate for mutual TLS.

Flags (``--tls-ca``, ``--tls-cert``, ``--tls-key``, ``--tls-server-name``)
or the environment (``SWARMD_TLS_CA``, ``SWARMD_TLS_CERT``, ``SWARMD_TLS_KEY``,
``SWARMD_TLS_SERVER_NAME``) set them; with none of them a client dials in
plaintext, as it does the embedded services on loopback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from swarmd.services.tls import channel_credentials, channel_tls_options

__all__ = ["ClientTls"]


@dataclass(frozen=True)
class ClientTls:
    """What a client needs to dial a TLS (or mutual TLS) server."""

    #: PEM CA bundle the server's certificate is verified against (None: the system's roots).
    ca_file: Path | None = None
    #: PEM client certificate chain and key, for servers that require mutual TLS.
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Name expected in the server's certificate when it differs from the host dialled.
    server_name: str = ""
    #: Use TLS with the system's roots even though no file is named.
    enabled: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientTls:
        env = os.environ if env is None else env

        def path(name: str) -> Path | None:
            value = env.get(name, "").strip()
            return Path(value) if value else None

        return cls(
            ca_file=path("SWARMD_TLS_CA"),
            cert_file=path("SWARMD_TLS_CERT"),
            key_file=path("SWARMD_TLS_KEY"),
            server_name=env.get("SWARMD_TLS_SERVER_NAME", "").strip(),
            enabled=env.get("SWARMD_TLS", "").strip().lower() in ("1", "true", "yes"),
        )

    @property
    def active(self) -> bool:
        return self.enabled or self.ca_file is not None or self.cert_file is not None

    def channel(self, target: str, options: list[tuple[str, object]] | None = None) -> grpc.aio.Channel:
        """An async channel to ``target``: TLS when :attr:`active`, else plaintext."""
        options = list(options or [])
        if not self.active:
            return grpc.aio.insecure_channel(target, options=options)
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both --tls-cert and --tls-key")
        creds = channel_credentials(self) if (self.ca_file or self.cert_file) else grpc.ssl_channel_credentials()
        assert creds is not None
        return grpc.aio.secure_channel(target, creds, options=options + channel_tls_options(self))
