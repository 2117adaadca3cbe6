"""Input checks shared by every part of the store.

Each check raises :class:`~swarmd.services.errors.InvalidArgument` with a
message that starts with the offending field's name, so a client reading the
INVALID_ARGUMENT status knows exactly what to fix without reading our code.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.message import Message

from swarmd.services.errors import InvalidArgument

__all__ = [
    "MAX_KEY_CHARS",
    "MAX_SCOPE_CHARS",
    "MAX_TTL_SECS",
    "MAX_VALUE_BYTES",
    "check_id",
    "check_key",
    "check_limit",
    "check_non_negative",
    "check_scope",
    "check_text",
    "check_timestamp",
    "check_times",
    "check_ttl",
    "preview",
]

MAX_KEY_CHARS = 512
MAX_SCOPE_CHARS = 128
MAX_ID_CHARS = 128
MAX_VALUE_BYTES = 1024 * 1024
# A century: far beyond any sensible TTL, and well inside int64 microseconds.
MAX_TTL_SECS = 100 * 365 * 24 * 3600

_ID = re.compile(r"[A-Za-z0-9._-]+")


def preview(text: str, limit: int = 40) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters, for error messages."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text)} characters)"


def check_text(field: str, value: str, *, max_chars: int, required: bool) -> str:
    """A free-text field: present when ``required``, at most ``max_chars`` long."""
    if required and not value:
        raise InvalidArgument(f"{field}: must not be empty")
    if len(value) > max_chars:
        raise InvalidArgument(f"{field}: at most {max_chars} characters allowed, got {len(value)}")
    return value


def check_key(value: str, field: str = "key") -> str:
    """A shared-result key: 1 to 512 characters."""
    return check_text(field, value, max_chars=MAX_KEY_CHARS, required=True)


def check_scope(value: str, field: str = "scope") -> str:
    """A scope: empty (global) or at most 128 characters."""
    return check_text(field, value, max_chars=MAX_SCOPE_CHARS, required=False)


def check_id(field: str, value: str) -> str:
    """An identifier as defined in common.proto: 1-128 of ``[A-Za-z0-9._-]``."""
    if not value:
        raise InvalidArgument(f"{field}: must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(
            f"{field}: at most {MAX_ID_CHARS} characters allowed, got {len(value)}"
        )
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            f"{field}: only letters, digits, '.', '_' and '-' allowed, got {preview(value)}"
        )
    return value


def check_limit(field: str, value: int, *, default: int, maximum: int) -> int:
    """A page size: 0 means ``default``; negative or above ``maximum`` is refused."""
    if value < 0 or value > maximum:
        raise InvalidArgument(
            f"{field}: must be between 0 and {maximum} (0 = {default}), got {value}"
        )
    return value or default


def check_non_negative(field: str, value: int) -> int:
    if value < 0:
        raise InvalidArgument(f"{field}: must not be negative, got {value}")
    return value


def check_ttl(field: str, value: int) -> int:
    """A time to live in seconds: 0 (field-specific default) up to a century."""
    if value < 0 or value > MAX_TTL_SECS:
        raise InvalidArgument(f"{field}: must be between 0 and {MAX_TTL_SECS} seconds, got {value}")
    return value


#: The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECS = -62_135_596_800
MAX_TIMESTAMP_SECS = 253_402_300_799


def check_timestamp(field: str, ts: Any) -> None:
    """A Timestamp within the range the type defines (years 1 to 9999)."""
    if not MIN_TIMESTAMP_SECS <= ts.seconds <= MAX_TIMESTAMP_SECS or not 0 <= ts.nanos <= 999_999_999:
        raise InvalidArgument(
            f"{field}: seconds={ts.seconds} nanos={ts.nanos} is outside the range of a "
            "Timestamp (years 1 to 9999, nanos 0 to 999999999)"
        )


def check_times(field: str, message: Message) -> None:
    """Every Timestamp set anywhere in ``message`` is within range (an
    out-of-range one cannot be converted and is refused, not stored)."""
    for desc, value in message.ListFields():
        if desc.type != desc.TYPE_MESSAGE:
            continue
        name = f"{field}.{desc.name}"
        if desc.message_type.GetOptions().map_entry:
            if desc.message_type.fields_by_name["value"].type == desc.TYPE_MESSAGE:
                for key, item in value.items():
                    check_times(f"{name}[{key!r}]", item)
            continue
        items = value if desc.is_repeated else [value]
        for i, item in enumerate(items):
            where = f"{name}[{i}]" if desc.is_repeated else name
            if desc.message_type.full_name == "google.protobuf.Timestamp":
                check_timestamp(where, item)
            else:
                check_times(where, item)
