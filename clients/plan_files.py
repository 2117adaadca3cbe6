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
from swarmd.v1 import common_pb2

__all__ = ["load_plan", "parse_plan"]

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
}


def _bad(source: str, message: str) -> SwarmdClientError:
    return SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, f"plan file {source}: {message}")


def parse_plan(data: Any, source: str = "<plan>") -> tuple[common_pb2.Plan, str]:
    """Turn parsed YAML/JSON into a Plan and the optional task description."""
    task = ""
    if isinstance(data, dict):
        unknown = set(data) - {"task", "subtasks"}
        if unknown:
            raise _bad(source, f"unknown top-level key(s): {', '.join(sorted(unknown))}")
        task = data.get("task") or ""
        if not isinstance(task, str):
            raise _bad(source, "'task' must be a string")
        data = data.get("subtasks")
    if not isinstance(data, list) or not data:
        raise _bad(source, "expected a non-empty 'subtasks' list")
    plan = common_pb2.Plan()
    for index, item in enumerate(data):
        where = f"subtasks[{index}]"
        if not isinstance(item, dict):
            raise _bad(source, f"{where} must be a mapping, got {type(item).__name__}")
        unknown = set(item) - set(_FIELDS)
        if unknown:
            raise _bad(source, f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
        for key, kind in _FIELDS.items():
            if key in item and item[key] is not None and not isinstance(item[key], kind):
                raise _bad(source, f"{where}.{key} must be {getattr(kind, '__name__', kind)}")
            if kind is int and isinstance(item.get(key), bool):
                raise _bad(source, f"{where}.{key} must be an integer")
        deps = item.get("dependencies") or []
        if not all(isinstance(d, str) for d in deps):
            raise _bad(source, f"{where}.dependencies must be a list of subtask ids")
        labels = item.get("labels") or {}
        subtask = common_pb2.SubTask(
            id=str(item.get("id") or ""),
            name=str(item.get("name") or ""),
            instruction=str(item.get("instruction") or ""),
            specialty=str(item.get("specialty") or ""),
            dependencies=deps,
            priority=int(item.get("priority") or 0),
            read_only=bool(item.get("read_only") or False),
            max_steps=int(item.get("max_steps") or 0),
            labels={str(k): str(v) for k, v in labels.items()},
        )
        plan.subtasks.append(subtask)
    return plan, task


def load_plan(path: str | Path) -> tuple[common_pb2.Plan, str]:
    """Read and parse a plan file; errors are INVALID_ARGUMENT naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _bad(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise _bad(str(path), f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    return parse_plan(data, str(path))
