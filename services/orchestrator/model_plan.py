"""Reading the plan a model wrote, robustly.

The seed aborted the whole swarm when the decomposition did not parse, and
silently dropped dependencies it could not resolve. Here:

* the JSON is looked for in a fenced block, then in the span from the first
  ``{`` to the last ``}`` (or ``[`` to ``]``), then at every ``{`` in turn,
  then in the raw text; trailing commas and ``//`` comments are tolerated;
* the subtasks are validated with pydantic, leniently (``description`` for
  ``instruction``, ``depends_on`` for ``dependencies``, a string for a list,
  ``"high"`` for a priority);
* dependencies are resolved by id, then by name (exact, then ignoring case),
  then by 1-based position;
* anything unusable falls back safely -- the whole task as one subtask, or
  the dependency dropped -- and says exactly why in a :class:`PlanWarning`,
  which the orchestrator turns into a warning event. Nothing is dropped
  silently, and nothing aborts the swarm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from swarmd.services.orchestrator.planning import (
    MAIN_TASK_NAME,
    DraftPlan,
    PlanWarning,
    classify_read_only,
    single_subtask_plan,
    subtask_slug,
)
from swarmd.v1 import common_pb2

__all__ = [
    "DecompositionParseError",
    "RawPlan",
    "RawSubtask",
    "extract_plan_json",
    "plan_from_model_output",
]


class DecompositionParseError(ValueError):
    """The model's answer holds no usable plan; the message says why."""


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n?(.*?)```", re.DOTALL)


def _clean_json(text: str) -> str:
    """Drop ``//`` and ``/* */`` comments and trailing commas outside strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1  # trailing comma: skip it
            else:
                out.append(ch)
                i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _looks_like_plan(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, dict):
        return any(isinstance(value.get(k), list) for k in _PLAN_KEYS)
    return False


_PLAN_KEYS = ("subtasks", "sub_tasks", "subTasks", "tasks", "plan", "steps")


def _candidates(text: str) -> list[tuple[str, str]]:
    """(where, text) pairs to try, in the order the seed tries them, then more."""
    found: list[tuple[str, str]] = []
    fences = list(_FENCE.finditer(text))
    for m in fences:
        if m.group(1).lower() == "json":
            found.append(("the ```json block", m.group(2)))
    for m in fences:
        if m.group(1).lower() != "json":
            found.append(("a fenced block", m.group(2)))
    marker = text.lower().rfind("```json")
    if marker >= 0 and not any(m.start() == marker for m in fences):
        found.append(("the unclosed ```json block", text[marker + 7 :]))
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        found.append(("the span from the first '{' to the last '}'", text[first : last + 1]))
    first, last = text.find("["), text.rfind("]")
    if 0 <= first < last:
        found.append(("the span from the first '[' to the last ']'", text[first : last + 1]))
    found.append(("the whole response", text))
    return found


def extract_plan_json(text: str) -> Any:
    """Find the plan JSON in a model's answer; raise :class:`DecompositionParseError`.

    Returns the first candidate that parses and looks like a plan (an object
    with a ``subtasks`` list, or a non-empty list).
    """
    if not text.strip():
        raise DecompositionParseError("the model returned an empty response")
    first_error = ""
    shape_error = ""
    decoder = json.JSONDecoder()
    for where, candidate in _candidates(text):
        candidate = candidate.strip()
        if not candidate:
            continue
        for attempt in (candidate, _clean_json(candidate)):
            try:
                value = json.loads(attempt)
            except json.JSONDecodeError as exc:
                first_error = (
                    first_error
                    or f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
                )
                continue
            if _looks_like_plan(value):
                return value
            shape_error = shape_error or f'{where} is JSON but holds no "subtasks" list'
            break
    # Last resort: the first '{' (among the first 200) that starts a plan object.
    cleaned = _clean_json(text)
    starts = [m.start() for m in re.finditer(r"\{", cleaned)][:200]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(cleaned, start)
        except json.JSONDecodeError:
            continue
        if _looks_like_plan(value):
            return value
    if shape_error:
        raise DecompositionParseError(shape_error)
    if "{" not in text and "[" not in text:
        raise DecompositionParseError("the response contains no JSON object")
    raise DecompositionParseError(first_error or "no JSON plan was found in the response")


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


class RawSubtask(BaseModel):
    """One subtask as a model wrote it, read leniently."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, validation_alias=AliasChoices("id", "subtask_id", "key"))
    name: str | None = Field(None, validation_alias=AliasChoices("name", "title"))
    instruction: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "instruction", "instructions", "description", "task", "prompt"
        ),
    )
    specialty: str | None = Field(
        None, validation_alias=AliasChoices("specialty", "role", "specialist", "agent")
    )
    dependencies: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices(
            "dependencies", "depends_on", "dependsOn", "deps", "requires", "after"
        ),
    )
    priority: int = 0
    needs_worktree: bool | None = Field(
        None, validation_alias=AliasChoices("needs_worktree", "needsWorktree")
    )

    @field_validator("id", "name", "instruction", "specialty", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return _as_text(value)

    @field_validator("dependencies", mode="before")
    @classmethod
    def _deps(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [part for part in re.split(r"[,;]", str(value)) if part.strip()]
        if not isinstance(value, list):
            return []
        out: list[str] = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("id") or item.get("name")
            text = _as_text(item)
            if text is not None:
                out.append(text)
        return out

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> int:
        if isinstance(value, bool) or value is None:
            return 0
        if isinstance(value, (int, float)):
            return int(value)
        if isinstance(value, str):
            words = {"critical": 3, "high": 2, "medium": 1, "normal": 1, "low": 0}
            if value.strip().lower() in words:
                return words[value.strip().lower()]
            try:
                return int(float(value))
            except ValueError:
                return 0
        return 0

    @field_validator("needs_worktree", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool | None:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
            return False
        return None


class RawPlan(BaseModel):
    """The decomposition document: ``{"subtasks": [...]}`` (or a bare list)."""

    model_config = ConfigDict(extra="ignore")

    subtasks: list[Any] = Field(default_factory=list, validation_alias=AliasChoices(*_PLAN_KEYS))


_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _fallback(task: str, why: str) -> DraftPlan:
    sub = single_subtask_plan(task)
    warning = PlanWarning(
        "decomposition_fallback",
        f"{why}; the whole task runs as a single subtask ({MAIN_TASK_NAME!r}) instead",
        sub.id,
    )
    return DraftPlan([sub], common_pb2.PLAN_SOURCE_SINGLE, [warning])


def _label(index: int, raw: RawSubtask) -> str:
    return f"#{index + 1}" + (f" ({raw.name!r})" if raw.name else "")


def plan_from_model_output(text: str, task: str) -> DraftPlan:
    """Turn a model's decomposition answer into subtasks, never failing.

    Each problem becomes a :class:`PlanWarning`; when nothing usable is left,
    the whole task runs as one subtask with a ``decomposition_fallback``
    warning that says why.
    """
    try:
        value = extract_plan_json(text)
    except DecompositionParseError as exc:
        return _fallback(task, f"the model's decomposition could not be used: {exc}")
    items: Sequence[Any]
    if isinstance(value, list):
        items = value
    else:
        try:
            items = RawPlan.model_validate(value).subtasks
        except ValidationError as exc:  # pragma: no cover - RawPlan accepts any list
            return _fallback(
                task,
                f"the model's decomposition has no usable subtask list ({exc.error_count()} errors)",
            )

    warnings: list[PlanWarning] = []
    raws: list[RawSubtask] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = {"instruction": item}
        if not isinstance(item, dict):
            warnings.append(
                PlanWarning(
                    "subtask_dropped",
                    f"subtask #{index + 1} is a {type(item).__name__}, not an object; it was dropped",
                )
            )
            continue
        try:
            raw = RawSubtask.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            warnings.append(
                PlanWarning(
                    "subtask_dropped",
                    f"subtask #{index + 1} is malformed ({problems}); it was dropped",
                )
            )
            continue
        if raw.instruction is None:
            if raw.name is None:
                warnings.append(
                    PlanWarning(
                        "subtask_dropped",
                        f"subtask #{index + 1} has neither an instruction nor a name; it was dropped",
                    )
                )
                continue
            warnings.append(
                PlanWarning(
                    "instruction_missing",
                    f"subtask {_label(index, raw)} has no instruction; its name is used as the instruction",
                )
            )
            raw = raw.model_copy(update={"instruction": raw.name})
        raws.append(raw)
    if not raws:
        why = (
            "the model's decomposition lists no subtasks"
            if not items
            else "no subtask in the model's decomposition is usable"
        )
        fallback = _fallback(task, why)
        fallback.warnings[:0] = warnings
        return fallback

    # Ids: keep a valid, unused id the model gave; otherwise derive one from
    # the name. Never random: the same plan gets the same ids on every run,
    # so a recorded run replays (cassettes are keyed by subtask id). The ids
    # the model gave are claimed first, so a derived id never takes one.
    given: dict[int, str] = {}
    used: set[str] = set()
    for index, raw in enumerate(raws):
        if raw.id is not None and _ID_RE.match(raw.id) and raw.id not in used:
            given[index] = raw.id
            used.add(raw.id)
    subtasks: list[common_pb2.SubTask] = []
    by_raw_id: dict[str, str] = {}
    for index, raw in enumerate(raws):
        name = raw.name or f"Subtask {index + 1}"
        sub_id = given.get(index)
        if sub_id is None and raw.id is not None and _ID_RE.match(raw.id):
            sub_id = _unique(raw.id, used)
            warnings.append(
                PlanWarning(
                    "duplicate_renamed",
                    f"subtask {_label(index, raw)} reuses id {raw.id!r}; it was renamed to {sub_id!r} "
                    f"(dependencies on {raw.id!r} point at the first subtask with that id)",
                    sub_id,
                )
            )
        if sub_id is None:
            slug = subtask_slug(name, f"subtask-{index + 1}")
            sub_id = slug if slug not in used else _unique(slug, used)
        used.add(sub_id)
        if raw.id is not None:
            by_raw_id.setdefault(raw.id, sub_id)
        instruction = raw.instruction or ""
        specialty = raw.specialty or ""
        subtasks.append(
            common_pb2.SubTask(
                id=sub_id,
                name=name,
                instruction=instruction,
                specialty=specialty,
                priority=raw.priority,
                read_only=classify_read_only(instruction, specialty, raw.needs_worktree),
            )
        )

    # Dependencies: by id, then by name (exact, then case-insensitive), then by position.
    by_name: dict[str, str] = {}
    by_folded: dict[str, str] = {}
    for sub in subtasks:
        by_name.setdefault(sub.name, sub.id)
        by_folded.setdefault(sub.name.strip().casefold(), sub.id)
    ids = {sub.id for sub in subtasks}
    for sub, raw in zip(subtasks, raws, strict=True):
        resolved: list[str] = []
        for ref in raw.dependencies:
            target = (
                by_raw_id.get(ref)
                or (ref if ref in ids else None)
                or by_name.get(ref)
                or by_folded.get(ref.strip().casefold())
            )
            if target is None and ref.strip().isdigit() and 1 <= int(ref) <= len(subtasks):
                target = subtasks[int(ref) - 1].id
            if target is None:
                warnings.append(
                    PlanWarning(
                        "dependency_dropped",
                        f"subtask {sub.name!r} depends on {ref!r}, which matches no subtask id, name or "
                        "position in the plan; that dependency was dropped",
                        sub.id,
                    )
                )
                continue
            if target not in resolved:
                resolved.append(target)
        sub.dependencies.extend(resolved)
    return DraftPlan(subtasks, common_pb2.PLAN_SOURCE_MODEL, warnings)


def _unique(base: str, used: set[str]) -> str:
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: 128 - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        n += 1
