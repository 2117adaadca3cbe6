"""Which executor options a client may set per swarm.

``SwarmConfig.executor_options`` is client input. Options that decide where
a service connects (``provider.base_url``, ``remote_address``), what it runs
or reads (``provider.cassette_dir``, ``remote_executor``), what it is paid
(``price_*``) or where it writes are operator settings: they belong in the
executor service's ``executor.options``, and a swarm that sets one is refused
with INVALID_ARGUMENT. The operator may allow more names per deployment
(``orchestrator.client_executor_options``).

A swarm may record its model responses (``record``), but only into its
repository's ``.swarmd/`` directory: a relative path is taken relative to
``REPO/.swarmd/`` and made absolute; any path that leaves it (``..``, an
absolute path elsewhere, a symlinked ``.swarmd``) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from swarmd.services.errors import InvalidArgument
from swarmd.v1 import common_pb2

__all__ = ["CLIENT_OPTIONS", "RECORD_OPTIONS", "check_client_options"]

#: Options any client may set: limits and tuning of its own sub-agents.
CLIENT_OPTIONS = frozenset(
    {
        "context_window",
        "max_output_tokens",
        "call_timeout_secs",
        "temperature",
        "tool_output_limit",
        "rpc_timeout_secs",
        "tool_timeout_secs",
        "provider.timeout",
        "provider.max_tokens_param",
        "provider.tool_choice",
        "worktree.commit_ignored",
    }
)
#: The recording options (confined to the repository's ``.swarmd/``).
RECORD_OPTIONS = frozenset({"record", "record_path"})
_MAX_NAME = 200


def _confined_record_path(value: str, repo_path: str) -> str:
    state_dir = Path(repo_path).resolve() / ".swarmd"
    path = Path(value)
    if not path.is_absolute():
        path = state_dir / path
    resolved = path.resolve()
    if not value.strip() or not resolved.is_relative_to(state_dir) or resolved == state_dir:
        raise InvalidArgument(
            f"config.executor_options.record: {value[:200]!r} is outside the repository's "
            f".swarmd/ directory ({state_dir}); a swarm may only record there"
        )
    return str(resolved)


def check_client_options(config: common_pb2.SwarmConfig, allowed: Iterable[str] = ()) -> None:
    """Refuse operator settings among ``config.executor_options`` and confine
    recording paths (rewritten in place as absolute paths)."""
    extra = frozenset(allowed)
    for name in sorted(config.executor_options):
        if name in RECORD_OPTIONS:
            config.executor_options[name] = _confined_record_path(
                config.executor_options[name], config.repo_path
            )
            continue
        if name in CLIENT_OPTIONS or name in extra:
            continue
        raise InvalidArgument(
            f"config.executor_options: {name[:_MAX_NAME]!r} is an operator setting, not a "
            "per-swarm option (set it in the executor service's executor.options, or allow it "
            "in orchestrator.client_executor_options); a swarm may set: "
            + ", ".join(sorted(CLIENT_OPTIONS | extra | RECORD_OPTIONS))
        )
