"""Reading rate-limit response headers into one provider-neutral snapshot.

Model providers announce their limits in several dialects; the rate governor
only wants to know, separately for **requests** and for **tokens**: the limit,
what remains, and in how many seconds the budget is restored, plus how long
the server asked us to back off. :func:`parse_headers` reads all of these:

=====================================================  ===================================
header                                                 meaning
=====================================================  ===================================
``retry-after-ms``                                     back-off in milliseconds (wins)
``retry-after``                                        back-off: delta seconds or HTTP date
``x-ratelimit-{limit,remaining}-{requests,tokens}``    OpenAI (and Groq, Together, ...)
``x-ratelimit-reset-{requests,tokens}``                OpenAI: Go durations ``6m0s``, ``20ms``
``anthropic-ratelimit-requests-{limit,remaining}``     Anthropic
``anthropic-ratelimit-requests-reset``                 Anthropic: RFC 3339 timestamp
``anthropic-ratelimit-{,input-,output-}tokens-*``      Anthropic tokens: the scarcest wins
``ratelimit-{limit,remaining,reset}``                  IETF draft (up to -06): delta seconds
``ratelimit`` + ``ratelimit-policy``                   IETF structured fields (-07 and later)
``x-ratelimit-{limit,remaining,reset}``                de-facto generic form (requests)
=====================================================  ===================================

When several dialects describe the same dimension, the first in the table
wins as a whole (limit, remaining and reset are never mixed across dialects,
which is how the seed ended up reading a token figure as a request figure).

Parsing never raises: a value that does not parse is ignored, so one odd
header from a proxy cannot break a model call. Header names are compared
case-insensitively.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "RateLimitSnapshot",
    "parse_duration",
    "parse_headers",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

# Generic reset values above these are absolute Unix times, not deltas
# (GitHub sends epoch seconds, OpenRouter epoch milliseconds).
_EPOCH_SECONDS_FLOOR = 1_000_000_000
_EPOCH_MILLIS_FLOOR = 1_000_000_000_000
# Counts beyond this are nonsense (and would not fit the int64 statistics).
_MAX_COUNT = 2**62

_DURATION_UNITS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    # Go prints microseconds with the micro sign, some servers with Greek mu.
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ns": 1e-9,
    "d": 86400.0,
}
# "ms" and the micro forms must be tried before "m" and "s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|\u00b5s|\u03bcs|ns|h|m|s|d)")
_PLAIN_NUMBER = re.compile(r"[+]?(\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """What one response said about the limits; ``None`` means "not said".

    Resets are in seconds from ``now`` (the moment the response was read)
    until the budget is restored. Most servers send them as deltas measured
    when they *counted* the call, which for a slow response was long before
    it was read; ``reset_*_absolute`` is True when the server sent a
    timestamp instead, so the figure is exact as of ``now``.
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None
    reset_requests_absolute: bool = False
    reset_tokens_absolute: bool = False

    @property
    def empty(self) -> bool:
        """True when no rate-limit information was found at all."""
        return all(
            value is None
            for value in (
                self.limit_requests,
                self.remaining_requests,
                self.reset_requests_s,
                self.limit_tokens,
                self.remaining_tokens,
                self.reset_tokens_s,
                self.retry_after_s,
            )
        )


@dataclass(frozen=True, slots=True)
class _Dimension:
    """Limit, remaining and reset of one budget, as one dialect stated them."""

    limit: int | None = None
    remaining: int | None = None
    reset_s: float | None = None
    reset_absolute: bool = False

    @property
    def known(self) -> bool:
        return self.limit is not None or self.remaining is not None

    def scarcity(self) -> float:
        """Smaller is scarcer: the remaining fraction, or the count when no limit."""
        if self.remaining is None:
            return math.inf
        if self.limit:
            return self.remaining / self.limit
        return float(self.remaining)


# --------------------------------------------------------------------------- values


def _number(text: str) -> float | None:
    """A finite, non-negative decimal number, or None."""
    match = _PLAIN_NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) else None


def _count(text: str | None) -> int | None:
    """A non-negative integer count ("100", "100.0"); None when it is not one."""
    if text is None:
        return None
    # Some servers list several policies ("100, 1000;w=3600"): the first counts.
    head = text.split(",", 1)[0].split(";", 1)[0]
    value = _number(head)
    if value is None or value > _MAX_COUNT:
        return None
    return int(value)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1h2m3.5s``, ``20ms``, ``0.5s``).

    A bare number is taken as seconds. Returns None for anything else,
    including negative durations; never raises.
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text:
        return None
    plain = _number(text)
    if plain is not None:
        return plain
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0 or not math.isfinite(total):
        return None
    return total


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _seconds_until(moment: datetime, now: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta seconds or an HTTP date.

    A date in the past gives 0. ``now`` (default: the current UTC time) is the
    moment the response was read. Returns None when the value is neither.
    """
    if not isinstance(value, str):
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:  # older Pythons returned None instead of raising
        return None
    return _seconds_until(moment, _now(now))


def _rfc3339_reset(value: str | None, now: datetime) -> tuple[float | None, bool]:
    """(seconds from ``now``, absolute?) of an RFC 3339 timestamp (Anthropic resets)."""
    if value is None:
        return None, False
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        # Not a timestamp; some compatible servers send a duration instead.
        return parse_duration(value), False
    return _seconds_until(moment, now), True


def _generic_reset(value: str | None, now: datetime) -> tuple[float | None, bool]:
    """A generic ``x-ratelimit-reset``: delta seconds, epoch seconds or epoch ms."""
    if value is None:
        return None, False
    number = _number(value)
    if number is None:
        return parse_duration(value), False
    try:
        if number >= _EPOCH_MILLIS_FLOOR:
            return max(0.0, number / 1000.0 - now.timestamp()), True
        if number >= _EPOCH_SECONDS_FLOOR:
            return max(0.0, number - now.timestamp()), True
    except OverflowError:  # pragma: no cover - floats this large are inf, filtered above
        return None, False
    return number, False


# --------------------------------------------------------------------------- dialects


def _openai(h: Mapping[str, str], unit: str) -> _Dimension:
    reset = h.get(f"x-ratelimit-reset-{unit}")
    return _Dimension(
        limit=_count(h.get(f"x-ratelimit-limit-{unit}")),
        remaining=_count(h.get(f"x-ratelimit-remaining-{unit}")),
        reset_s=parse_duration(reset) if reset is not None else None,
    )


def _anthropic(h: Mapping[str, str], prefix: str, now: datetime) -> _Dimension:
    reset_s, absolute = _rfc3339_reset(h.get(f"{prefix}-reset"), now)
    return _Dimension(
        limit=_count(h.get(f"{prefix}-limit")),
        remaining=_count(h.get(f"{prefix}-remaining")),
        reset_s=reset_s,
        reset_absolute=absolute,
    )


def _anthropic_tokens(h: Mapping[str, str], now: datetime) -> _Dimension:
    # "tokens-*" is already the most restrictive limit in effect; the
    # input/output pairs are only consulted when it is missing.
    combined = _anthropic(h, "anthropic-ratelimit-tokens", now)
    if combined.known:
        return combined
    candidates = [
        _anthropic(h, f"anthropic-ratelimit-{kind}-tokens", now) for kind in ("input", "output")
    ]
    known = [dim for dim in candidates if dim.known]
    return min(known, key=_Dimension.scarcity) if known else _Dimension()


def _ietf_fields(h: Mapping[str, str]) -> _Dimension:
    return _Dimension(
        limit=_count(h.get("ratelimit-limit")),
        remaining=_count(h.get("ratelimit-remaining")),
        reset_s=_number(h["ratelimit-reset"]) if "ratelimit-reset" in h else None,
    )


def _generic_x(h: Mapping[str, str], now: datetime) -> _Dimension:
    reset_s, absolute = _generic_reset(h.get("x-ratelimit-reset"), now)
    return _Dimension(
        limit=_count(h.get("x-ratelimit-limit")),
        remaining=_count(h.get("x-ratelimit-remaining")),
        reset_s=reset_s,
        reset_absolute=absolute,
    )


# ------------------------------------------------------ IETF structured fields


def _split_outside_quotes(text: str, sep: str) -> Iterator[str]:
    """Split on ``sep`` except inside double-quoted strings (with backslash escapes)."""
    start = 0
    quoted = False
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _sf_list(value: str) -> list[tuple[str, dict[str, str]]]:
    """A structured-field List of Items as (bare item, parameters) pairs, leniently."""
    items: list[tuple[str, dict[str, str]]] = []
    for member in _split_outside_quotes(value, ","):
        if not member.strip():
            continue
        parts = list(_split_outside_quotes(member, ";"))
        params: dict[str, str] = {}
        for param in parts[1:]:
            name, _, raw = param.partition("=")
            name = name.strip().lower()
            if name:
                params[name] = _unquote(raw) if raw else "?1"
        items.append((_unquote(parts[0]), params))
    return items


def _structured(h: Mapping[str, str]) -> tuple[_Dimension, _Dimension]:
    """``RateLimit`` with ``RateLimit-Policy`` -> (requests, tokens).

    Accepts the current form (``"default";r=50;t=30`` with
    ``"default";q=100;w=60``) and draft 07's dictionary form
    (``limit=100, remaining=50, reset=30``). Policies whose quota unit
    (``qu``) is neither requests nor tokens are ignored; several policies on
    one dimension resolve to the scarcest.
    """
    current = h.get("ratelimit")
    if current is None:
        return _Dimension(), _Dimension()
    items = _sf_list(current)

    # Draft 07: one dictionary "limit=.., remaining=.., reset=..".
    legacy = {
        name.strip().lower(): raw for name, _, raw in (m.partition("=") for m in current.split(","))
    }
    if "remaining" in legacy and not any("r" in params for _, params in items):
        dim = _Dimension(
            limit=_count(legacy.get("limit")),
            remaining=_count(legacy.get("remaining")),
            reset_s=_number(legacy["reset"]) if "reset" in legacy else None,
        )
        return dim, _Dimension()

    policies: dict[str, dict[str, str]] = {}
    for name, params in _sf_list(h.get("ratelimit-policy", "")):
        policies[name] = params

    found: dict[str, list[_Dimension]] = {"requests": [], "tokens": []}
    for name, params in items:
        if "r" not in params:
            continue
        policy = policies.get(name, {})
        unit = (policy.get("qu") or params.get("qu") or "requests").lower()
        if unit not in found:
            continue
        found[unit].append(
            _Dimension(
                limit=_count(policy.get("q")),
                remaining=_count(params.get("r")),
                reset_s=_number(params["t"]) if "t" in params else None,
            )
        )
    requests = min(found["requests"], key=_Dimension.scarcity, default=_Dimension())
    tokens = min(found["tokens"], key=_Dimension.scarcity, default=_Dimension())
    return requests, tokens


# ------------------------------------------------------------------ entry point


def _first_known(*dims: _Dimension) -> _Dimension:
    return next((dim for dim in dims if dim.known), _Dimension())


def parse_headers(headers: Mapping[str, str], now: datetime | None = None) -> RateLimitSnapshot:
    """Read every supported rate-limit header into a :class:`RateLimitSnapshot`.

    ``now`` is the wall-clock moment the response was read (default: now,
    UTC); it turns absolute resets (HTTP dates, RFC 3339, epoch seconds)
    into seconds from that moment.
    """
    try:
        h = {str(k).strip().lower(): str(v).strip() for k, v in headers.items()}
    except (AttributeError, TypeError, ValueError):
        return RateLimitSnapshot()
    try:
        return _parse(h, _now(now))
    except Exception:  # pragma: no cover - a parser bug must not fail a model call
        log.warning("cannot read rate-limit headers %r", h, exc_info=True)
        return RateLimitSnapshot()


def _parse(h: Mapping[str, str], moment: datetime) -> RateLimitSnapshot:
    ietf_requests, ietf_tokens = _structured(h)
    requests = _first_known(
        _openai(h, "requests"),
        _anthropic(h, "anthropic-ratelimit-requests", moment),
        _ietf_fields(h),
        ietf_requests,
        _generic_x(h, moment),
    )
    tokens = _first_known(
        _openai(h, "tokens"),
        _anthropic_tokens(h, moment),
        ietf_tokens,
    )

    retry_after: float | None = None
    if "retry-after-ms" in h:
        millis = _number(h["retry-after-ms"])
        retry_after = None if millis is None else millis / 1000.0
    if retry_after is None and "retry-after" in h:
        retry_after = parse_retry_after(h["retry-after"], moment)

    return RateLimitSnapshot(
        limit_requests=requests.limit,
        remaining_requests=requests.remaining,
        reset_requests_s=requests.reset_s,
        reset_requests_absolute=requests.reset_absolute,
        limit_tokens=tokens.limit,
        remaining_tokens=tokens.remaining,
        reset_tokens_s=tokens.reset_s,
        reset_tokens_absolute=tokens.reset_absolute,
        retry_after_s=retry_after,
    )
