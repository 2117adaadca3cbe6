"""Opaque page tokens for the orchestrator's listings (ListSwarms, ListSubTasks).

A token is URL-safe base64 of a small JSON object: which listing it belongs
to, a digest of the request that produced it (everything but the page size
and the token itself), and the keyset position to continue after. A token
replayed with a different filter, order or swarm fails the digest check and
is INVALID_ARGUMENT, as is anything that does not decode as a token. Tokens
are not secret: they carry ids and times the caller has already been shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from google.protobuf.message import Message

from swarmd.services.errors import InvalidArgument

__all__ = ["MAX_PAGE", "DEFAULT_PAGE", "decode_token", "encode_token", "page_size", "request_digest"]

DEFAULT_PAGE = 50
MAX_PAGE = 1000
_MAX_TOKEN_CHARS = 1024


def page_size(value: int) -> int:
    """The page size a request asks for: 0 means :data:`DEFAULT_PAGE`."""
    if value < 0 or value > MAX_PAGE:
        raise InvalidArgument(
            f"page_size must be between 0 and {MAX_PAGE} (0 = {DEFAULT_PAGE}), got {value}",
            field="page_size",
        )
    return value or DEFAULT_PAGE


def request_digest(request: Message) -> str:
    """A digest of ``request`` without its page size and token: what a token binds to."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("page_size")
    copy.ClearField("page_token")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:24]


def encode_token(listing: str, digest: str, position: list[Any]) -> str:
    """The token that continues ``listing`` after ``position``."""
    raw = json.dumps({"l": listing, "d": digest, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, listing: str, digest: str) -> list[Any]:
    """The position ``token`` continues after; InvalidArgument when it is not a
    token of ``listing`` or was issued for a different request."""
    bad = InvalidArgument(
        f"page_token {token[:40]!r} is not a page token of {listing}", field="page_token"
    )
    if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise bad
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(decoded, dict) or decoded.get("l") != listing:
        raise bad
    position = decoded.get("p")
    if not isinstance(position, list):
        raise bad
    if decoded.get("d") != digest:
        raise InvalidArgument(
            "page_token was issued for a request with a different filter, order or parent; "
            "repeat the original request's other fields with it, or start without a token",
            field="page_token",
        )
    return position
