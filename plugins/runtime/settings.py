"""Executor options as a sub-agent attempt uses them.

Executor options (the executor service's ``executor.options``, overridden per
swarm by ``config.executor_options``):

``provider.<name>``
    an option for the model provider, e.g. ``provider.base_url``,
    ``provider.timeout``, ``provider.cassette_dir``. A swarm may not set
    ``provider.api_key``/``provider.api_key_env``, and a swarm that sets its
    own ``provider.base_url`` does not get the service's API key.
``record`` (alias ``record_path``)
    record every model response into this cassette (record mode; what
    ``swarmd run --record`` sets).
``context_window`` (128000), ``max_output_tokens`` (unset: none is sent, the
server's own default applies), ``call_timeout_secs``
(120), ``temperature`` (provider default), ``tool_output_limit`` (6000),
``price_prompt_per_mtok``/``price_completion_per_mtok`` (0: cost unknown; the
orchestrator prices calls from its own table), ``rpc_timeout_secs`` (30),
``tool_timeout_secs`` (120: how long one tool call may run unless its own
arguments allow more, as bash's ``timeout`` does).
``bash.sandbox`` (``auto``: confine bash commands in a bubblewrap sandbox when
bwrap works here, else run them unconfined with a warning event; ``on``: refuse
to run unconfined; ``off``), ``bash.network`` (false), ``bash.cpu_secs``,
``bash.memory_mb``, ``bash.file_size_mb``, ``bash.max_processes`` (0: no limit)
``bash.hide`` (comma-separated absolute paths to hide) and ``bash.bwrap`` (the
bwrap program, default ``bwrap`` on PATH): see
:mod:`swarmd.plugins.sandbox`. They are operator settings; an operator who
lets swarms choose their network access adds ``bash.network`` to
``orchestrator.client_executor_options``.
``worktree.<name>``
    how new worktrees are checked out: ``worktree.checkout`` (``auto``,
    ``full`` or ``lazy``) and ``worktree.lazy_threshold`` (2000 files); see
    :mod:`swarmd.plugins.runtime.worktree.lazy`.
    ``worktree.commit_ignored`` (false): when a sub-agent changed no tracked
    file but wrote files git ignores, commit those (``git add -f``) and merge
    them; when false they are kept in the sub-agent's worktree and the result
    warns about them.
    ``worktree.git_engine`` (``auto``): ``cli`` runs every git step through
    git's command line instead of libgit2 in process; see
    :mod:`swarmd.plugins.runtime.worktree.libgit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swarmd.plugins.sandbox import SandboxPolicy

__all__ = ["DEFAULT_TOOL_TIMEOUT_SECS", "SWARM_FORBIDDEN", "RuntimeSettings", "SettingsError"]

#: How long one tool call may run unless its arguments say otherwise.
DEFAULT_TOOL_TIMEOUT_SECS = 120.0

SWARM_FORBIDDEN = ("provider.api_key", "provider.api_key_env", "provider.use_env_key")


_NUMBERS: tuple[tuple[str, type[int] | type[float]], ...] = (
    ("context_window", int),
    ("max_output_tokens", int),
    ("call_timeout_secs", float),
    ("temperature", float),
    ("tool_output_limit", int),
    ("price_prompt_per_mtok", float),
    ("price_completion_per_mtok", float),
    ("rpc_timeout_secs", float),
    ("tool_timeout_secs", float),
)
_ZERO_OK = frozenset({"max_output_tokens", "temperature", "price_prompt_per_mtok", "price_completion_per_mtok"})

_FLAGS = {"": False, "false": False, "0": False, "no": False, "true": True, "1": True, "yes": True}


class SettingsError(ValueError):
    """An executor option has a bad value."""


@dataclass
class RuntimeSettings:
    """Executor options as the runtime uses them (see the module docstring)."""

    provider_options: dict[str, str] = field(default_factory=dict)
    #: The ``worktree.*`` options, names kept whole (``worktree.checkout``...).
    worktree_options: dict[str, str] = field(default_factory=dict)
    record_path: str | None = None
    context_window: int = 128_000
    max_output_tokens: int = 0  # 0: unset
    call_timeout_secs: float = 120.0
    temperature: float | None = None
    tool_output_limit: int = 6000
    price_prompt_per_mtok: float = 0.0
    price_completion_per_mtok: float = 0.0
    rpc_timeout_secs: float = 30.0
    tool_timeout_secs: float = DEFAULT_TOOL_TIMEOUT_SECS
    sandbox: SandboxPolicy = field(default_factory=SandboxPolicy)
    commit_ignored: bool = False

    @classmethod
    def resolve(cls, service: Mapping[str, str], swarm: Mapping[str, str] | None = None) -> RuntimeSettings:
        """Merge service-level and per-swarm options; raises :class:`SettingsError`."""
        swarm = swarm or {}
        for name in swarm:
            if name in SWARM_FORBIDDEN:
                raise SettingsError(f"executor option {name} may only be set in the executor service's settings")
        merged = {**service, **swarm}
        out = cls()
        out.provider_options = {k[len("provider.") :]: v for k, v in merged.items() if k.startswith("provider.")}
        out.worktree_options = {k: v for k, v in merged.items() if k.startswith("worktree.")}
        swarm_url = swarm.get("provider.base_url")
        if swarm_url and swarm_url != service.get("provider.base_url"):
            out.provider_options["use_env_key"] = "false"
        out.record_path = merged.get("record") or merged.get("record_path") or None
        flag = merged.get("worktree.commit_ignored", "").strip().lower()
        if flag not in _FLAGS:
            raise SettingsError(f"executor option worktree.commit_ignored={flag!r} is not true or false")
        out.commit_ignored = _FLAGS[flag]
        for name, kind in _NUMBERS:
            raw = merged.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"executor option {name}={raw!r} is not a valid {kind.__name__}") from None
            if value < 0 or (value == 0 and name not in _ZERO_OK):
                raise SettingsError(f"executor option {name}={raw!r} must be positive")
            setattr(out, name, value)
        try:
            out.sandbox = SandboxPolicy.from_options(merged)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        return out
