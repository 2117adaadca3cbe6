"""Static bearer tokens from a file that holds only their SHA-256.

The file (YAML or JSON) lists entries, at the top level or under ``tokens``::

    tokens:
      - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        subject: ci-bot
        role: client
        tenant: acme
      - sha256: ...
        subject: orchestrator
        role: service

``swarmd auth-token new`` prints a fresh token and its entry; ``swarmd
auth-token hash`` hashes one read from standard input. The file is reread
when its modification time or size changes; a file that no longer parses
keeps the entries read before (with a warning), so a half-written edit does
not lock everyone out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from swarmd.services.auth.identity import ADMIN, CLIENT, SERVICE, Identity

__all__ = ["TokenFile", "generate_token", "hash_token", "parse_token_entries"]

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Roles a static token may carry (subagent tokens are minted, never listed).
_ROLES = (CLIENT, ADMIN, SERVICE)


def hash_token(token: str) -> str:
    """The hex SHA-256 a token file lists for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> str:
    """A new random token (256 bits, URL-safe)."""
    return "swarmd_" + secrets.token_urlsafe(32)


def parse_token_entries(data: Any, where: str) -> dict[str, Identity]:
    """Entries of a token file's parsed content, by hash; ValueError names the bad entry."""
    if isinstance(data, dict):
        data = data.get("tokens", [])
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a list of token entries (or a mapping with 'tokens')")
    out: dict[str, Identity] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: tokens[{i}] is not a mapping")
        digest = str(entry.get("sha256", "")).strip().lower()
        if not _HEX64.match(digest):
            raise ValueError(f"{where}: tokens[{i}].sha256 must be 64 hex digits (the token's SHA-256)")
        role = entry.get("role")
        if role not in _ROLES:
            raise ValueError(f"{where}: tokens[{i}].role must be one of {', '.join(_ROLES)}, not {role!r}")
        subject = str(entry.get("subject") or f"token-{digest[:8]}")
        tenant = str(entry.get("tenant") or "")
        if role == CLIENT and not tenant:
            raise ValueError(f"{where}: tokens[{i}] ({subject}): a client token needs a tenant")
        out[digest] = Identity(subject=subject, role=role, tenant=tenant, source="token")
    return out


def _parse(path: Path) -> dict[str, Identity]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return parse_token_entries(data or [], str(path))


class TokenFile:
    """The entries of one token file, reread when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.reloads = 0
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, Identity] = {}
        self._refresh(strict=True)

    def _refresh(self, *, strict: bool = False) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if strict:
                raise ValueError(f"cannot read the token file {self.path}: {exc.strerror}") from None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            entries = _parse(self.path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            if strict:
                raise ValueError(f"token file {self.path}: {exc}") from None
            log.warning("token file %s not reloaded, keeping the tokens read before: %s", self.path, exc)
            self._stamp = stamp
            return
        if self._stamp is not None:
            self.reloads += 1
            log.info("token file %s reloaded (%d tokens)", self.path, len(entries))
        self._stamp = stamp
        self._entries = entries

    def lookup(self, token: str) -> Identity | None:
        """The identity of ``token``; None when the file does not list it."""
        self._refresh()
        return self._entries.get(hash_token(token))
