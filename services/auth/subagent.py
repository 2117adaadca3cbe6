"""Per-attempt subagent tokens: HMAC-signed, scoped to one swarm and subtask, short-lived.

The orchestrator mints one for each attempt it sends to an executor
(``ExecuteSubTaskRequest.subagent_token``); the sub-agent's runtime presents
it on its calls to the orchestrator and the result store, which verify it
with the same key (``auth.subagent_key_file``). The token reads::

    swarmd-sa.<base64url JSON claims>.<base64url HMAC-SHA256 of what precedes>

with the claims ``swarm``, ``subtask``, ``attempt``, ``tenant`` and ``exp``
(Unix seconds). Nothing else than the key is needed to check one, so the
services keep no state about tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

from swarmd.services.auth.identity import SUBAGENT, Identity

__all__ = ["PREFIX", "SubagentTokens", "read_key"]

PREFIX = "swarmd-sa."
_MIN_KEY_BYTES = 32


def read_key(path: Path) -> bytes:
    """The key in ``path`` (surrounding whitespace removed); ValueError when too short or unreadable."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the subagent key file {path}: {exc.strerror}") from None
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the subagent key in {path} must be at least {_MIN_KEY_BYTES} bytes")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SubagentTokens:
    """Mints and verifies subagent tokens with one key."""

    def __init__(self, key: bytes, ttl_secs: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.ttl_secs = ttl_secs
        self._clock = clock

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def mint(self, swarm_id: str, subtask_id: str, attempt: int, tenant: str = "", ttl_secs: float | None = None) -> str:
        """A token for one attempt of one subtask."""
        claims = {
            "swarm": swarm_id,
            "subtask": subtask_id,
            "attempt": attempt,
            "tenant": tenant,
            "exp": int(self._clock() + (self.ttl_secs if ttl_secs is None else ttl_secs)),
        }
        body = PREFIX + _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> Identity:
        """The identity of a valid token; ValueError saying why one is not."""
        body, _, signature = token.rpartition(".")
        if not body.startswith(PREFIX) or not hmac.compare_digest(self._sign(body), signature):
            raise ValueError("the subagent token's signature does not verify")
        try:
            claims = json.loads(_unb64(body[len(PREFIX) :]))
            swarm, subtask = str(claims["swarm"]), str(claims["subtask"])
            attempt, expires = int(claims["attempt"]), float(claims["exp"])
            tenant = str(claims.get("tenant", ""))
        except (ValueError, KeyError, TypeError):
            raise ValueError("the subagent token's claims do not parse") from None
        if expires <= self._clock():
            raise ValueError("the subagent token has expired")
        return Identity(
            subject=f"subagent:{swarm}/{subtask}#{attempt}",
            role=SUBAGENT,
            tenant=tenant,
            source="subagent",
            swarm_id=swarm,
            subtask_id=subtask,
        )
