"""The effective SwarmConfig: defaults filled in, nonsense refused.

``SwarmConfig`` uses 0 (or absence, for ``optional`` fields) to mean "the
default"; the orchestrator fills every default once, at submission, and
hands the filled copy to executors and stores it with the swarm, so no other
component needs to know the defaults. The one field left empty is
``executor``: a swarm that names no executor plugin runs on the executor
service's own ``default_executor``, which only that service knows.
"""

from __future__ import annotations

import math
import os
import re

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.collapse.config import collapse_problems
from swarmd.services.orchestrator.speculation.variants import MAX_VARIANTS
from swarmd.v1 import common_pb2

__all__ = ["DEFAULTS", "LIMITS", "effective_config"]

#: Defaults from the proto comments.
DEFAULTS: dict[str, object] = {
    "max_subagents": 100,
    "max_steps_per_subagent": 100,
    "max_total_tool_calls": 1500,
    "subagent_timeout_secs": 600,
    "subtask_timeout_secs": 3600,
    "max_concurrent": 8,
    "request_delay_ms": 250,
    "worktree_enabled": True,
    "auto_merge": True,
    "cache_enabled": True,
    "max_retries": 3,
    "base_delay_ms": 1000,
    "max_delay_ms": 30_000,
    "cache_ttl_secs": 86_400,
}

#: Upper bounds; beyond them a value is refused as a likely mistake.
LIMITS: dict[str, int] = {
    "max_subagents": 1000,
    "max_steps_per_subagent": 10_000,
    "max_concurrent": 1000,
    "request_delay_ms": 60_000,
    "max_retries": 20,
    "base_delay_ms": 3_600_000,
    "max_delay_ms": 3_600_000,
    "subagent_timeout_secs": 86_400,
    "subtask_timeout_secs": 7 * 86_400,
}

_NON_NEGATIVE = (
    "max_subagents",
    "max_steps_per_subagent",
    "max_total_tool_calls",
    "max_total_tokens",
    "max_cost_usd",
    "max_tokens_per_subtask",
    "max_cost_per_subtask_usd",
    "subagent_timeout_secs",
    "subtask_timeout_secs",
    "max_concurrent",
    "request_delay_ms",
    "max_retries",
    "base_delay_ms",
    "max_delay_ms",
    "cache_ttl_secs",
)

_OPTIONAL = ("request_delay_ms", "worktree_enabled", "auto_merge", "cache_enabled", "max_retries")


def effective_config(
    config: common_pb2.SwarmConfig, *, cwd: str | None = None
) -> common_pb2.SwarmConfig:
    """A copy of ``config`` with every default filled in.

    Raises :class:`InvalidArgument` naming each bad field (negative values,
    values beyond :data:`LIMITS`, a model string with spaces, ...).
    """
    problems: list[str] = []
    for name in ("max_cost_usd", "max_cost_per_subtask_usd"):
        # NaN compares false with everything and infinity never runs out:
        # either would silently switch the budget off.
        if not math.isfinite(getattr(config, name)):
            problems.append(f"config.{name} must be a finite number (got {getattr(config, name)})")
    if config.repo_path and not os.path.isabs(config.repo_path):
        problems.append(
            f"config.repo_path {config.repo_path[:200]!r} must be an absolute path "
            "(it is a path on the executor's host; empty means the orchestrator's working directory)"
        )
    for name in _NON_NEGATIVE:
        if getattr(config, name) < 0:
            problems.append(f"config.{name} must not be negative (got {getattr(config, name)})")
    for name, limit in LIMITS.items():
        if getattr(config, name) > limit:
            problems.append(f"config.{name} is {getattr(config, name)}; the maximum is {limit}")
    if config.model and (
        config.model != config.model.strip() or any(c.isspace() for c in config.model)
    ):
        problems.append(f"config.model {config.model!r} must not contain whitespace")
    if (
        config.executor
        and not config.executor.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        problems.append(f"config.executor {config.executor!r} is not a plugin name")
    if config.strategy not in common_pb2.DecompositionStrategy.values():
        problems.append(f"config.strategy {config.strategy} is not a known strategy")
    if config.dependency_failure_policy not in common_pb2.DependencyFailurePolicy.values():
        problems.append(
            f"config.dependency_failure_policy {config.dependency_failure_policy} is not a known policy"
        )
    if not 0 <= config.speculate <= MAX_VARIANTS:
        problems.append(f"config.speculate must be between 0 and {MAX_VARIANTS} (got {config.speculate})")
    if len(config.speculate_models) > MAX_VARIANTS:
        problems.append(f"config.speculate_models: at most {MAX_VARIANTS} models (got {len(config.speculate_models)})")
    problems.extend(collapse_problems(config.collapse))
    if problems:
        # The field of the first problem goes into BadRequest.
        first = re.match(r"config\.[a-z_]+", problems[0])
        raise InvalidArgument(
            "invalid config: " + "; ".join(problems), field=first.group(0) if first else ""
        )

    out = common_pb2.SwarmConfig()
    out.CopyFrom(config)
    for name, default in DEFAULTS.items():
        if name in _OPTIONAL:
            if not out.HasField(name):
                setattr(out, name, default)
        elif not getattr(out, name):
            setattr(out, name, default)
    if out.strategy == common_pb2.DECOMPOSITION_STRATEGY_UNSPECIFIED:
        out.strategy = common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC
    if out.dependency_failure_policy == common_pb2.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED:
        out.dependency_failure_policy = common_pb2.DEPENDENCY_FAILURE_POLICY_SKIP
    base = cwd or os.getcwd()
    out.repo_path = os.path.abspath(os.path.join(base, out.repo_path or "."))
    return out
