"""The bearer token a client presents to swarmd's services.

Sources, first found wins: an explicit token (``--token``), a token file
(``--token-file``), ``$SWARMD_TOKEN``, ``$SWARMD_TOKEN_FILE``, then the
``client.token_file`` entry of the configuration file (``--config`` or
``$SWARMD_CONFIG``). A file holds the token on its first line. Without any
the client sends no credentials, which is what services without
authentication (and the embedded ones) expect.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from swarmd.services.auth.outgoing import read_token_file

__all__ = ["TOKEN_ENV", "TOKEN_FILE_ENV", "bearer_metadata", "resolve_token"]

TOKEN_ENV = "SWARMD_TOKEN"
TOKEN_FILE_ENV = "SWARMD_TOKEN_FILE"


def resolve_token(
    token: str | None = None,
    token_file: str | Path | None = None,
    *,
    config_token_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The token to present ('' for none); ValueError for an unreadable or empty file."""
    env = os.environ if env is None else env
    if token:
        return token.strip()
    if token_file:
        return read_token_file(Path(token_file))
    if env.get(TOKEN_ENV, "").strip():
        return env[TOKEN_ENV].strip()
    if env.get(TOKEN_FILE_ENV, "").strip():
        return read_token_file(Path(env[TOKEN_FILE_ENV].strip()))
    if config_token_file:
        return read_token_file(Path(config_token_file))
    return ""


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token`` (nothing for '')."""
    return (("authorization", f"Bearer {token}"),) if token else ()
