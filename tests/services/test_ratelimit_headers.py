"""Rate-limit header parsing: every dialect, and garbage never raises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from swarmd.services.orchestrator.ratelimit_headers import (
    RateLimitSnapshot,
    parse_duration,
    parse_headers,
    parse_retry_after,
)

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("0.5s", 0.5),
        ("1h2m3.5s", 3723.5),
        ("2m59.56s", 179.56),
        ("17ms", 0.017),
        ("1m", 60.0),
        ("3h", 10800.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),  # Go's micro sign
        ("250\u03bcs", 0.00025),  # Greek mu
        ("100ns", 1e-7),
        ("1d", 86400.0),
        ("0s", 0.0),
        ("0", 0.0),
        ("12", 12.0),
        ("7.25", 7.25),
        (" 30s ", 30.0),
        (".5s", 0.5),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", " ", "s", "ms", "-1s", "1x", "1s2", "1 s", "abc", "1s-", "nan", "inf", "1e3", "m5", "5sm"],
)
def test_parse_duration_rejects_garbage(text: str) -> None:
    assert parse_duration(text) is None


def test_parse_duration_rejects_non_strings() -> None:
    assert parse_duration(cast(Any, None)) is None
    assert parse_duration(cast(Any, 12)) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("Wed, 15 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 15 Jan 2025 12:02:00 GMT", 120.0),
        ("Wed, 15 Jan 2025 11:59:00 GMT", 0.0),  # in the past: go now
        ("Wed, 15 Jan 2025 12:00:10 -0000", 10.0),  # no zone: UTC
    ],
)
def test_parse_retry_after(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "soon", "-5", "Wed, 99 Foo 2025", "12s", "1e2"])
def test_parse_retry_after_rejects_garbage(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_naive_now_is_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Wed, 15 Jan 2025 12:00:05 GMT", now=naive) == pytest.approx(5.0)


OPENAI = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}

ANTHROPIC = {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-requests-reset": "2025-01-15T12:00:01Z",
    "anthropic-ratelimit-tokens-limit": "80000",
    "anthropic-ratelimit-tokens-remaining": "79000",
    "anthropic-ratelimit-tokens-reset": "2025-01-15T12:00:45.5+00:00",
    "retry-after": "3",
}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            OPENAI,
            RateLimitSnapshot(60, 59, 1.0, 150000, 149984, 360.0, None),
            id="openai",
        ),
        pytest.param(
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20ms",
                "retry-after-ms": "1500",
                "retry-after": "2",
            },
            RateLimitSnapshot(None, 0, 0.02, None, None, None, 1.5),
            id="openai-retry-after-ms-wins",
        ),
        pytest.param(
            {"X-RateLimit-Remaining-Tokens": "10", "X-RateLimit-Reset-Tokens": "1h2m3.5s"},
            RateLimitSnapshot(None, None, None, None, 10, 3723.5, None),
            id="case-insensitive-names",
        ),
        pytest.param(
            ANTHROPIC,
            RateLimitSnapshot(50, 49, 1.0, 80000, 79000, 45.5, 3.0, True, True),
            id="anthropic",
        ),
        pytest.param(
            {
                "anthropic-ratelimit-input-tokens-limit": "40000",
                "anthropic-ratelimit-input-tokens-remaining": "30000",
                "anthropic-ratelimit-input-tokens-reset": "2025-01-15T12:00:10Z",
                "anthropic-ratelimit-output-tokens-limit": "8000",
                "anthropic-ratelimit-output-tokens-remaining": "400",
                "anthropic-ratelimit-output-tokens-reset": "2025-01-15T12:00:20Z",
            },
            RateLimitSnapshot(None, None, None, 8000, 400, 20.0, None, False, True),
            id="anthropic-input-output-scarcest",
        ),
        pytest.param(
            {
                "anthropic-ratelimit-requests-remaining": "3",
                "anthropic-ratelimit-requests-reset": "2025-01-15T11:00:00Z",
            },
            RateLimitSnapshot(None, 3, 0.0, None, None, None, None, True),
            id="anthropic-reset-in-the-past",
        ),
        pytest.param(
            {"ratelimit-limit": "100", "ratelimit-remaining": "25", "ratelimit-reset": "30"},
            RateLimitSnapshot(100, 25, 30.0, None, None, None, None),
            id="ietf-fields",
        ),
        pytest.param(
            {
                "ratelimit-limit": "100, 100;w=60",
                "ratelimit-remaining": "5",
                "ratelimit-reset": "7",
            },
            RateLimitSnapshot(100, 5, 7.0, None, None, None, None),
            id="ietf-fields-with-policy-list",
        ),
        pytest.param(
            {"ratelimit": '"default";r=50;t=30', "ratelimit-policy": '"default";q=100;w=60'},
            RateLimitSnapshot(100, 50, 30.0, None, None, None, None),
            id="ietf-structured",
        ),
        pytest.param(
            {"RateLimit": "default;r=5;t=2"},
            RateLimitSnapshot(None, 5, 2.0, None, None, None, None),
            id="ietf-structured-token-without-policy",
        ),
        pytest.param(
            {
                "ratelimit": '"burst";r=40;t=1, "daily";r=10;t=3600',
                "ratelimit-policy": '"burst";q=50;w=1, "daily";q=1000;w=86400',
            },
            RateLimitSnapshot(1000, 10, 3600.0, None, None, None, None),
            id="ietf-structured-scarcest-policy",
        ),
        pytest.param(
            {
                "ratelimit": '"rpm";r=9;t=20, "tpm";r=5000;t=40',
                "ratelimit-policy": '"rpm";q=10;w=60, "tpm";q=100000;w=60;qu="tokens"',
            },
            RateLimitSnapshot(10, 9, 20.0, 100000, 5000, 40.0, None),
            id="ietf-structured-tokens-unit",
        ),
        pytest.param(
            {
                "ratelimit": '"bytes";r=9;t=20',
                "ratelimit-policy": '"bytes";q=1000;w=60;qu="content-bytes"',
            },
            RateLimitSnapshot(),
            id="ietf-structured-other-unit-ignored",
        ),
        pytest.param(
            {
                "ratelimit": '"a,b";r=3;t=4',
                "ratelimit-policy": '"a,b";q=9;w=60;pk=:cHJvamVjdDEyMw==:',
            },
            RateLimitSnapshot(9, 3, 4.0, None, None, None, None),
            id="ietf-structured-quoted-comma",
        ),
        pytest.param(
            {"ratelimit": "limit=100, remaining=50, reset=30"},
            RateLimitSnapshot(100, 50, 30.0, None, None, None, None),
            id="ietf-draft-07-dictionary",
        ),
        pytest.param(
            {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "4999",
                "x-ratelimit-reset": "1736942460",
            },
            RateLimitSnapshot(5000, 4999, 60.0, None, None, None, None, True),
            id="generic-epoch-seconds",
        ),
        pytest.param(
            {"x-ratelimit-remaining": "10", "x-ratelimit-reset": "1736942405000"},
            RateLimitSnapshot(None, 10, 5.0, None, None, None, None, True),
            id="generic-epoch-millis",
        ),
        pytest.param(
            {
                "anthropic-ratelimit-requests-remaining": "3",
                "anthropic-ratelimit-requests-reset": "90s",
            },
            RateLimitSnapshot(None, 3, 90.0, None, None, None, None, False),
            id="anthropic-style-with-a-duration",
        ),
        pytest.param(
            {"x-ratelimit-remaining": "10", "x-ratelimit-reset": "42"},
            RateLimitSnapshot(None, 10, 42.0, None, None, None, None),
            id="generic-delta",
        ),
        pytest.param(
            {"retry-after": "Wed, 15 Jan 2025 12:00:30 GMT"},
            RateLimitSnapshot(retry_after_s=30.0),
            id="retry-after-http-date",
        ),
        pytest.param({}, RateLimitSnapshot(), id="none"),
        pytest.param({"content-type": "application/json"}, RateLimitSnapshot(), id="unrelated"),
    ],
)
def test_parse_headers(headers: dict[str, str], expected: RateLimitSnapshot) -> None:
    assert parse_headers(headers, now=NOW) == expected


def test_requests_and_tokens_are_never_mixed() -> None:
    """The seed read whichever x-ratelimit-remaining-* came last; each has its own field."""
    snap = parse_headers(
        {"x-ratelimit-remaining-tokens": "5", "x-ratelimit-remaining-requests": "900"}, now=NOW
    )
    assert (snap.remaining_requests, snap.remaining_tokens) == (900, 5)
    reverse = parse_headers(
        {"x-ratelimit-remaining-requests": "900", "x-ratelimit-remaining-tokens": "5"}, now=NOW
    )
    assert reverse == snap


def test_openai_dialect_wins_whole_over_generic() -> None:
    snap = parse_headers(
        {
            "x-ratelimit-remaining-requests": "7",
            "x-ratelimit-reset-requests": "2s",
            "x-ratelimit-limit": "999",
            "x-ratelimit-remaining": "998",
            "x-ratelimit-reset": "100",
        },
        now=NOW,
    )
    assert (snap.limit_requests, snap.remaining_requests, snap.reset_requests_s) == (None, 7, 2.0)


def test_anthropic_combined_tokens_win_over_input_output() -> None:
    snap = parse_headers(
        {
            "anthropic-ratelimit-tokens-remaining": "5000",
            "anthropic-ratelimit-output-tokens-remaining": "1",
        },
        now=NOW,
    )
    assert snap.remaining_tokens == 5000


GARBAGE = [
    {"x-ratelimit-remaining-requests": "lots", "x-ratelimit-reset-requests": "soon"},
    {"x-ratelimit-limit-tokens": "-5", "x-ratelimit-remaining-tokens": "NaN"},
    {
        "anthropic-ratelimit-requests-reset": "yesterday",
        "anthropic-ratelimit-requests-remaining": "",
    },
    {"retry-after": "tomorrow-ish", "retry-after-ms": "fast"},
    {"ratelimit": '"unterminated;r=5', "ratelimit-policy": ";;;,,,=="},
    {"ratelimit": ";r=;t=", "ratelimit-policy": '"x";q=abc'},
    {"ratelimit": "limit=a, remaining=b, reset=c"},
    {"ratelimit-limit": "∞", "ratelimit-remaining": "1e999", "ratelimit-reset": "-3"},
    {"x-ratelimit-reset": "99999999999999999999999999999999999999"},
    {"retry-after": "Wed, 15 Jan 99999 12:00:00 GMT"},
    {"x-ratelimit-remaining-requests": "\x00\udcff"},
]


@pytest.mark.parametrize("headers", GARBAGE)
def test_garbage_values_are_ignored(headers: dict[str, str]) -> None:
    snap = parse_headers(headers, now=NOW)
    for value in (
        snap.limit_requests,
        snap.remaining_requests,
        snap.limit_tokens,
        snap.remaining_tokens,
    ):
        assert value is None or value >= 0
    for seconds in (snap.reset_requests_s, snap.reset_tokens_s, snap.retry_after_s):
        assert seconds is None or seconds >= 0


def test_garbage_alongside_good_values_keeps_the_good_ones() -> None:
    snap = parse_headers(
        {
            "x-ratelimit-remaining-requests": "12",
            "x-ratelimit-reset-requests": "whenever",
            "retry-after-ms": "fast",
            "retry-after": "4",
        },
        now=NOW,
    )
    assert snap == RateLimitSnapshot(None, 12, None, None, None, None, 4.0)


def test_non_mapping_input_gives_an_empty_snapshot() -> None:
    assert parse_headers(cast(Any, None), now=NOW) == RateLimitSnapshot()
    assert parse_headers(cast(Any, {1: 2}), now=NOW) == RateLimitSnapshot()


def test_snapshot_empty() -> None:
    assert RateLimitSnapshot().empty
    assert not RateLimitSnapshot(retry_after_s=0.0).empty


def test_default_now_is_the_current_time() -> None:
    snap = parse_headers({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert snap.retry_after_s == 0.0


def test_absurd_counts_are_ignored() -> None:
    snap = parse_headers({"x-ratelimit-remaining-requests": "9" * 40}, now=NOW)
    assert snap.remaining_requests is None
