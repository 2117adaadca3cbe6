"""Transport identities: the verified mTLS client certificate, or a mesh header.

With mutual TLS the server knows the caller's certificate names (SANs, else
the common name; :func:`swarmd.services.tls.peer_identity`). Behind a
service mesh the sidecar terminates mTLS and forwards the call in plaintext
over loopback, naming the caller in a header: Envoy's
``x-forwarded-client-cert`` (``By=…;Hash=…;Subject="CN=…";URI=spiffe://…;DNS=…``,
the last element being the one the sidecar next to us added) or a header
holding a name alone. The header is believed only from a loopback peer:
anyone else could write it. Either way the names are looked up in
``auth.identities``; the first name listed there wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from swarmd.services.auth.identity import Identity
from swarmd.services.auth.settings import IdentityEntry

__all__ = ["IdentityMap", "is_loopback_peer", "mesh_names"]

_CN = re.compile(r"(?:^|[,/])\s*CN=([^,/]+)")


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def mesh_names(value: str) -> list[str]:
    """The caller's names in a mesh header value (XFCC, or a bare name)."""
    value = value.strip()
    if "=" not in value:
        return [value] if value else []
    element = _split(value, ",")[-1]
    names: list[str] = []
    for pair in _split(element, ";"):
        key, _, raw = pair.partition("=")
        raw = raw.strip().strip('"')
        key = key.strip().lower()
        if key in ("uri", "dns") and raw:
            names.append(raw)
        elif key == "subject":
            match = _CN.search(raw)
            if match:
                names.append(match.group(1).strip())
    return names


def is_loopback_peer(peer: str) -> bool:
    """Whether a gRPC peer string (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``, ``unix:…``) is local."""
    if peer.startswith("unix:"):
        return True
    if peer.startswith("ipv4:"):
        return peer[5:].startswith("127.")
    if peer.startswith("ipv6:"):
        host = peer[5:].rsplit(":", 1)[0].strip("[]")
        return host in ("::1", "0:0:0:0:0:0:0:1") or host.startswith("::ffff:127.")
    return False


class IdentityMap:
    """``auth.identities`` by name."""

    def __init__(self, entries: Sequence[IdentityEntry]) -> None:
        self._by_name = {e.name: e for e in entries}

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def lookup(self, names: Iterable[str], source: str) -> Identity | None:
        for name in names:
            entry = self._by_name.get(name)
            if entry is not None:
                return Identity(subject=entry.subject or name, role=entry.role, tenant=entry.tenant, source=source)
        return None
