"""The environment sub-agent processes get: the service's, minus its secrets.

A sub-agent's ``bash`` runs commands the model wrote, so it must not see the
credentials of the service running it. Dropped: every variable whose name
contains ``KEY``, ``TOKEN``, ``SECRET``, ``PASSWORD``, ``PASSWD`` or
``CREDENTIAL`` (case-insensitive), and every ``OPENAI_*``, ``ANTHROPIC_*`` and
``SWARMD_*`` variable. ``HOME``, ``PATH`` and the rest stay. A few variables
keep tools non-interactive (no pager, no git credential prompt).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SECRET_MARKERS", "SECRET_PREFIXES", "scrub_environment"]

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
SECRET_PREFIXES = ("OPENAI_", "ANTHROPIC_", "SWARMD_")
NON_INTERACTIVE = {"GIT_TERMINAL_PROMPT": "0", "PAGER": "cat", "GIT_PAGER": "cat"}


def is_secret(name: str) -> bool:
    upper = name.upper()
    return any(m in upper for m in SECRET_MARKERS) or upper.startswith(SECRET_PREFIXES)


def scrub_environment(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` without secrets, plus the non-interactive settings."""
    clean = {k: v for k, v in env.items() if not is_secret(k)}
    clean.update(NON_INTERACTIVE)
    return clean
