"""Checking a swarm's ``CollapseConfig`` at submission.

Zero values mean the defaults (:class:`~.policy.CollapseSettings`); what is
checked here is what cannot be right: negative durations, a check without a
name, a ``command`` check without a command, more checks than make sense.
Whether a check name is registered is known only to the executor service
that runs it: its ``SampleBranch`` answers INVALID_ARGUMENT for an unknown
name, which the controller reports once as a warning event.
"""

from __future__ import annotations

from swarmd.services.errors import InvalidArgument
from swarmd.v1 import common_pb2

__all__ = ["MAX_CHECKS", "choose_collapse", "collapse_problems"]

MAX_CHECKS = 16
#: Upper bound of each duration field, in ms (a day).
MAX_MS = 86_400_000


def collapse_problems(config: common_pb2.CollapseConfig) -> list[str]:
    """What is wrong with ``config`` (empty when nothing is)."""
    problems: list[str] = []
    for name in ("interval_ms", "warmup_ms", "check_timeout_ms"):
        value = getattr(config, name)
        if not 0 <= value <= MAX_MS:
            problems.append(f"config.collapse.{name} must be between 0 and {MAX_MS} (got {value})")
    if config.max_consecutive_failures < 0:
        problems.append(
            f"config.collapse.max_consecutive_failures must not be negative (got {config.max_consecutive_failures})"
        )
    if len(config.checks) > MAX_CHECKS:
        problems.append(f"config.collapse.checks: at most {MAX_CHECKS} checks (got {len(config.checks)})")
    for i, check in enumerate(config.checks):
        if not check.name.strip():
            problems.append(f"config.collapse.checks[{i}].name must not be empty")
        elif check.name == "command" and not check.options.get("command", "").strip():
            problems.append(f"config.collapse.checks[{i}]: the command check needs a `command` option")
    return problems


def choose_collapse(config: common_pb2.SwarmConfig, plan: common_pb2.Plan) -> None:
    """The plan file's collapse settings apply when the config enables none
    (INVALID_ARGUMENT when they are wrong)."""
    if config.collapse.enabled or not plan.collapse.enabled:
        return
    problems = collapse_problems(plan.collapse)
    if problems:
        raise InvalidArgument("invalid plan: " + "; ".join(p.replace("config.", "plan.", 1) for p in problems))
    config.collapse.CopyFrom(plan.collapse)
