"""A2A messages as swarm submissions.

A ``message/send`` or ``message/stream`` request starts one swarm:

* the text parts, joined, are the task for the model to decompose;
* a data part holding a plan (``{"subtasks": [...]}``, optionally with
  ``task``, or the same under a ``plan`` key) is an explicit plan, validated
  as strictly as a plan file;
* the other keys of a data part, then the message's and the request's
  metadata, carry the run's settings, with the seed's A2A worker keys, looked
  up at the top level first, then in the nested ``routing``, ``swarm`` and
  ``forage`` objects:

  ==================  ==========================================================  ===========
  setting             keys                                                        default
  ==================  ==========================================================  ===========
  strategy            decomposition_strategy, swarm_strategy, strategy,           auto
                      swarm_decomposition
  max sub-agents      swarm_max_subagents, max_subagents, subagents               10 (1..100)
  max steps           swarm_max_steps_per_subagent, max_steps_per_subagent,       50 (1..200)
                      max_steps
  timeout (s)         swarm_timeout_secs, timeout_secs, timeout                   600 (30..3600)
  parallel            swarm_parallel_enabled, parallel_enabled (false: one        true
                      sub-agent at a time)
  model               model                                                       the gateway's
  repository          repository, repo                                            (required)
  ==================  ==========================================================  ===========

Numbers outside a range are clamped as the seed clamps them. Unlike the seed,
an unknown strategy name is refused (as everywhere in swarmd) instead of
running as ``auto``. The message id is the submission's idempotency key, so
a retried send returns the same task; the context id and the repository are
kept as the swarm's labels, so a task read back after a gateway restart is
the same task.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format

from swarmd.clients.plan_files import parse_plan
from swarmd.services.orchestrator.planning import UnknownStrategyError, parse_strategy
from swarmd.v1 import common_pb2

__all__ = ["CONTEXT_LABEL", "REPOSITORY_LABEL", "RequestError", "Submission", "parse_send"]

CONTEXT_LABEL = "a2a.context_id"
REPOSITORY_LABEL = "a2a.repository"
#: Where the seed looks for a key that is not at the top level, in order.
_NESTED = ("routing", "swarm", "forage")
_STRATEGY = ("decomposition_strategy", "swarm_strategy", "strategy", "swarm_decomposition")
_MAX_SUBAGENTS = (("swarm_max_subagents", "max_subagents", "subagents"), 10, 1, 100)
_MAX_STEPS = (("swarm_max_steps_per_subagent", "max_steps_per_subagent", "max_steps"), 50, 1, 200)
_TIMEOUT = (("swarm_timeout_secs", "timeout_secs", "timeout"), 600, 30, 3600)
_PARALLEL = ("swarm_parallel_enabled", "parallel_enabled")
_REPOSITORY = ("repository", "repo")
_PLAN_KEYS = frozenset({"subtasks", "task"})


class RequestError(ValueError):
    """A message that cannot start a swarm; the text says why."""


@dataclass
class Submission:
    """What one A2A message asks swarmd to run."""

    task: str
    plan: common_pb2.Plan | None
    config: common_pb2.SwarmConfig
    repository: str
    request_id: str
    context_id: str
    labels: dict[str, str] = field(default_factory=dict)


def _lookup(sources: list[dict[str, Any]], keys: tuple[str, ...]) -> Any:
    for source in sources:
        for key in keys:
            if key in source and source[key] is not None:
                return source[key]
    for nested in _NESTED:
        for source in sources:
            inner = source.get(nested)
            if isinstance(inner, dict):
                for key in keys:
                    if key in inner and inner[key] is not None:
                        return inner[key]
    return None


def _clamped(sources: list[dict[str, Any]], spec: tuple[tuple[str, ...], int, int, int]) -> int:
    keys, default, low, high = spec
    value = _lookup(sources, keys)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(f"{keys[-1]} must be a number, not {str(value)[:40]!r}")
    try:
        number = int(float(value))
    except ValueError:
        raise RequestError(f"{keys[-1]} must be a number, not {str(value)[:40]!r}") from None
    return max(low, min(high, number))


def _flag(sources: list[dict[str, Any]], keys: tuple[str, ...], default: bool) -> bool:
    value = _lookup(sources, keys)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise RequestError(f"{keys[-1]} must be true or false, not {str(value)[:40]!r}")


def _text_setting(sources: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    value = _lookup(sources, keys)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequestError(f"{keys[-1]} must be a string, not {str(value)[:40]!r}")
    return value.strip()


def _struct(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message) if message.ListFields() else {}


def parse_send(request: a2a_pb2.SendMessageRequest, default_model: str = "") -> Submission:
    """Turn a send request into a :class:`Submission`, or raise :class:`RequestError`."""
    message = request.message
    if message.task_id:
        raise RequestError(
            "a swarmd task takes no follow-up message: send a new message without task_id "
            "(read a task with tasks/get, follow it with tasks/resubscribe)"
        )
    texts: list[str] = []
    plan_data: Any = None
    settings: dict[str, Any] = {}
    for index, part in enumerate(message.parts):
        kind = part.WhichOneof("content")
        if kind == "text":
            if part.text.strip():
                texts.append(part.text)
        elif kind == "data":
            data = json_format.MessageToDict(part.data)
            if not isinstance(data, dict):
                raise RequestError(f"parts[{index}]: a data part must be a JSON object (a plan or settings)")
            if "plan" in data:
                plan_data = data.pop("plan")
            elif "subtasks" in data:
                plan_data = {k: data.pop(k) for k in list(data) if k in _PLAN_KEYS}
            settings.update(data)
        else:
            raise RequestError(
                f"parts[{index}]: a {kind or 'empty'} part is not accepted "
                "(input modes: text/plain for the task, application/json for a plan or settings)"
            )
    sources = [settings, _struct(message.metadata), _struct(request.metadata)]
    task = "\n\n".join(texts).strip()
    plan = None
    if plan_data is not None:
        try:
            plan, plan_task = parse_plan(plan_data, source="the plan data part")
        except Exception as exc:  # SwarmdClientError: the plan's own validation message
            raise RequestError(getattr(exc, "message", str(exc))) from None
        task = task or plan_task
    if not task and plan is None:
        raise RequestError("the message has no task: send a text part (the task) or a data part with a plan")
    strategy_name = _text_setting(sources, _STRATEGY)
    try:
        strategy = parse_strategy(strategy_name) if strategy_name else common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC
    except UnknownStrategyError as exc:
        raise RequestError(str(exc)) from None
    config = common_pb2.SwarmConfig(
        model=_text_setting(sources, ("model",)) or default_model,
        strategy=strategy,
        max_subagents=_clamped(sources, _MAX_SUBAGENTS),
        max_steps_per_subagent=_clamped(sources, _MAX_STEPS),
        subagent_timeout_secs=_clamped(sources, _TIMEOUT),
    )
    if not _flag(sources, _PARALLEL, True):
        config.max_concurrent = 1
    context_id = message.context_id or str(uuid.uuid4())
    repository = _text_setting(sources, _REPOSITORY)
    return Submission(
        task=task,
        plan=plan,
        config=config,
        repository=repository,
        request_id=f"a2a:{message.message_id}" if message.message_id else "",
        context_id=context_id,
        labels={CONTEXT_LABEL: context_id, REPOSITORY_LABEL: repository},
    )
