"""Plan files (YAML or JSON) -> ``swarmd.v1.Plan``.

A plan file is a mapping with a ``subtasks`` list (or just the list)::

    task: Add a CLI to the project        # optional description
    subtasks:
      - id: models
        name: Data models
        instruction: Write src/models.py ...
        specialty: Coder
        dependencies: []
        priority: 1
        read_only: false
        max_steps: 30
        speculate: 3                        # optional: race 3 variants (1-8)

``speculate: N`` runs the subtask as N variants, sub-agents on their own
worktrees and branches with the same instruction and different strategy
prompts (minimal change, test first, clean rewrite, careful review). The
first variant whose agent succeeds and whose finished work passes the
health checks below (without checks, the first to succeed) wins and is the
only one merged; dependents see only the winner; the other variants are
cancelled (reason ``speculative_loser``) and their branches kept. Worth it
for a risky subtask whose success the checks can judge; N times the tokens.

The collapse controller (health checks on running branches) is chosen with
``health_check`` (one command, the short form) or ``collapse``::

    health_check: {command: python -m pytest -x -q}
    collapse:                               # the long form; every key optional
      checks: [{command: pytest -x -q}, {name: python-compile}]
      interval_secs: 5
      warmup_secs: 30
      max_consecutive_failures: 3
      check_timeout_secs: 120
      soft_prune: false

Only the syntax and the field types are checked here; the orchestrator
validates the plan itself (ids, cycles, empty instructions) and answers
INVALID_ARGUMENT naming the offenders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import yaml

from swarmd.clients.errors import SwarmdClientError
from swarmd.services.orchestrator.speculation.variants import MAX_VARIANTS
from swarmd.v1 import common_pb2

__all__ = ["REPOSITORY_SETTINGS", "load_plan", "load_repository_collapse", "parse_plan"]

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "name": str,
    "instruction": str,
    "specialty": str,
    "dependencies": list,
    "priority": int,
    "read_only": bool,
    "max_steps": int,
    "labels": dict,
    "speculate": int,
}
#: A repository's own swarmd settings (its default health checks), beside its database.
REPOSITORY_SETTINGS = Path(".swarmd") / "settings.yaml"
#: Largest plan file read (a bigger one, or ``/dev/zero``, is refused).
MAX_PLAN_BYTES = 16 * 1024 * 1024
_INT32 = (-(2**31), 2**31 - 1)
_RANGES = {"priority": _INT32, "max_steps": (0, 2**31 - 1), "speculate": (1, MAX_VARIANTS)}


def _bad(source: str, message: str) -> SwarmdClientError:
    return SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, f"plan file {source}: {message}")


def _keys(source: str, where: str, mapping: dict[Any, Any]) -> None:
    for key in mapping:
        if not isinstance(key, str):
            raise _bad(source, f"{where} has a key that is not a string: {str(key)[:80]!r}")


def _text(source: str, where: str, value: Any) -> str:
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad(source, f"{where} is not valid Unicode text (character {exc.start})") from None
    return text


def _scalar(source: str, where: str, value: Any) -> str:
    if isinstance(value, (dict, list, tuple, set)):
        raise _bad(source, f"{where} must be a string, not a {type(value).__name__}")
    return _text(source, where, value)


_COLLAPSE_SECS = {"interval_secs": "interval_ms", "warmup_secs": "warmup_ms", "check_timeout_secs": "check_timeout_ms"}
_COLLAPSE_KEYS = {*_COLLAPSE_SECS, "checks", "max_consecutive_failures", "soft_prune"}


def _check_spec(source: str, where: str, item: Any) -> common_pb2.HealthCheckSpec:
    """``{command: ...}`` (a command check) or ``{name: ..., options: {...}}``."""
    if not isinstance(item, dict):
        raise _bad(source, f"{where} must be a mapping such as {{command: pytest -x -q}}")
    _keys(source, where, item)
    unknown = set(item) - {"name", "command", "options"}
    if unknown:
        raise _bad(source, f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
    options = item.get("options") or {}
    if not isinstance(options, dict):
        raise _bad(source, f"{where}.options must be a mapping")
    spec = common_pb2.HealthCheckSpec(
        name=_scalar(source, f"{where}.name", item.get("name") or ("command" if "command" in item else "")),
        options={_text(source, f"{where}.options", k): _scalar(source, f"{where}.options.{k}", v) for k, v in options.items()},
    )
    if "command" in item:
        spec.options["command"] = _scalar(source, f"{where}.command", item["command"])
    return spec


def _collapse(source: str, long: Any, short: Any) -> common_pb2.CollapseConfig | None:
    """The ``collapse`` / ``health_check`` keys of a plan file (None when both are absent)."""
    if long is None and short is None:
        return None
    if long is not None and short is not None:
        raise _bad(source, "give either 'collapse' or 'health_check', not both")
    config = common_pb2.CollapseConfig(enabled=True)
    if short is not None:
        config.checks.append(_check_spec(source, "health_check", short))
        return config
    if not isinstance(long, dict):
        raise _bad(source, "'collapse' must be a mapping")
    _keys(source, "collapse", long)
    unknown = set(long) - _COLLAPSE_KEYS
    if unknown:
        raise _bad(source, f"collapse has unknown field(s): {', '.join(sorted(unknown))}")
    checks = long.get("checks") or []
    if not isinstance(checks, list):
        raise _bad(source, "collapse.checks must be a list")
    config.checks.extend(_check_spec(source, f"collapse.checks[{i}]", c) for i, c in enumerate(checks))
    for key, field in _COLLAPSE_SECS.items():
        value = long.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 86_400:
                raise _bad(source, f"collapse.{key} must be a number of seconds between 0 and 86400")
            setattr(config, field, int(value * 1000))
    failures = long.get("max_consecutive_failures")
    if failures is not None:
        if isinstance(failures, bool) or not isinstance(failures, int) or not 1 <= failures <= 1000:
            raise _bad(source, "collapse.max_consecutive_failures must be an integer between 1 and 1000")
        config.max_consecutive_failures = failures
    prune = long.get("soft_prune")
    if prune is not None:
        if not isinstance(prune, bool):
            raise _bad(source, "collapse.soft_prune must be true or false")
        config.soft_prune = prune
    return config


def parse_plan(data: Any, source: str = "<plan>") -> tuple[common_pb2.Plan, str]:
    """Turn parsed YAML/JSON into a Plan and the optional task description."""
    task = ""
    collapse = None
    if isinstance(data, dict):
        _keys(source, "the top level", data)
        unknown = set(data) - {"task", "subtasks", "collapse", "health_check"}
        if unknown:
            raise _bad(source, f"unknown top-level key(s): {', '.join(sorted(unknown))}")
        task = data.get("task") or ""
        if not isinstance(task, str):
            raise _bad(source, "'task' must be a string")
        task = _text(source, "task", task)
        collapse = _collapse(source, data.get("collapse"), data.get("health_check"))
        data = data.get("subtasks")
    if not isinstance(data, list) or not data:
        raise _bad(source, "expected a non-empty 'subtasks' list")
    plan = common_pb2.Plan()
    if collapse is not None:
        plan.collapse.CopyFrom(collapse)
    for index, item in enumerate(data):
        where = f"subtasks[{index}]"
        if not isinstance(item, dict):
            raise _bad(source, f"{where} must be a mapping, got {type(item).__name__}")
        _keys(source, where, item)
        unknown = set(item) - set(_FIELDS)
        if unknown:
            raise _bad(source, f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
        for key, kind in _FIELDS.items():
            if key in item and item[key] is not None and not isinstance(item[key], kind):
                raise _bad(source, f"{where}.{key} must be {getattr(kind, '__name__', kind)}")
            if kind is int and isinstance(item.get(key), bool):
                raise _bad(source, f"{where}.{key} must be an integer")
        for key, (low, high) in _RANGES.items():
            value = item.get(key)
            if value is not None and not low <= value <= high:
                raise _bad(source, f"{where}.{key} must be between {low} and {high}, not {str(value)[:40]}")
        deps = item.get("dependencies") or []
        if not all(isinstance(d, str) for d in deps):
            raise _bad(source, f"{where}.dependencies must be a list of subtask ids")
        labels = item.get("labels") or {}
        _keys(source, f"{where}.labels", labels)
        subtask = common_pb2.SubTask(
            id=_text(source, f"{where}.id", item.get("id") or ""),
            name=_text(source, f"{where}.name", item.get("name") or ""),
            instruction=_text(source, f"{where}.instruction", item.get("instruction") or ""),
            specialty=_text(source, f"{where}.specialty", item.get("specialty") or ""),
            dependencies=[_text(source, f"{where}.dependencies[{i}]", d) for i, d in enumerate(deps)],
            priority=int(item.get("priority") or 0),
            read_only=bool(item.get("read_only") or False),
            max_steps=int(item.get("max_steps") or 0),
            speculate=int(item.get("speculate") or 0),
            labels={
                _text(source, f"{where}.labels", k): _scalar(source, f"{where}.labels.{k}", v)
                for k, v in labels.items()
            },
        )
        plan.subtasks.append(subtask)
    return plan, task


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _bad(
            str(path), f"not UTF-8 text: byte {exc.start} (line {line}, column {column}) is {raw[exc.start:exc.start + 1]!r}"
        ) from None


def load_plan(path: str | Path) -> tuple[common_pb2.Plan, str]:
    """Read and parse a plan file; errors are INVALID_ARGUMENT naming the file
    and the place (line and column, or the subtask and field)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise _bad(str(path), f"cannot read: {exc.strerror}") from exc
    if len(raw) > MAX_PLAN_BYTES:
        raise _bad(str(path), f"larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB")
    text = _decode(path, raw)
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise _bad(str(path), f"not valid {kind}: {exc}") from exc
    except RecursionError:
        raise _bad(str(path), f"not a plan: the {kind} is nested too deeply") from None
    try:
        return parse_plan(data, str(path))
    except RecursionError:
        raise _bad(str(path), "not a plan: nested too deeply") from None


def load_repository_collapse(repo: str | Path) -> common_pb2.CollapseConfig | None:
    """The repository's default collapse settings: the ``health_check`` or
    ``collapse`` key of ``REPO/.swarmd/settings.yaml`` (the plan file's syntax),
    None when the file does not exist. A run's flags and its plan file come first."""
    path = Path(repo) / REPOSITORY_SETTINGS
    if not path.is_file():
        return None
    try:
        return _repository_collapse(path)
    except SwarmdClientError as exc:  # the errors name a plan file; this is a settings file
        raise SwarmdClientError(exc.code, exc.message.replace("plan file ", "settings file ", 1)) from None


def _repository_collapse(path: Path) -> common_pb2.CollapseConfig | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise _bad(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(_decode(path, raw)) or {}
    except yaml.YAMLError as exc:
        raise _bad(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise _bad(str(path), "expected a mapping")
    _keys(str(path), "the top level", data)
    unknown = set(data) - {"collapse", "health_check"}
    if unknown:
        raise _bad(str(path), f"unknown key(s): {', '.join(sorted(unknown))}")
    return _collapse(str(path), data.get("collapse"), data.get("health_check"))
