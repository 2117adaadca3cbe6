"""Decomposition policy: strategies, the prompt, read-only classification.

The prompt and the strategy sentences are the seed's (§2.2), with one
addition from its later tags (§15.1): a ``needs_worktree`` flag per subtask,
which :func:`classify_read_only` combines with a deterministic keyword
classifier. :func:`parse_strategy` is what the CLI uses to read
``--strategy``. Reading the model's answer lives in
:mod:`swarmd.services.orchestrator.model_plan`; graph checks and repairs in
:mod:`swarmd.services.orchestrator.validation`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TypeAlias

from swarmd.services.errors import InvalidArgument
from swarmd.v1 import common_pb2

__all__ = [
    "MAIN_TASK_ID",
    "MAIN_TASK_NAME",
    "STRATEGY_ALIASES",
    "STRATEGY_INSTRUCTIONS",
    "DraftPlan",
    "PlanWarning",
    "UnknownStrategyError",
    "build_decomposition_prompt",
    "classify_read_only",
    "decomposition_temperature",
    "parse_strategy",
    "single_subtask_plan",
    "strategy_label",
    "subtask_slug",
]

Strategy: TypeAlias = common_pb2.DecompositionStrategy

MAIN_TASK_NAME = "Main Task"
#: Id of the single subtask (strategy none, or the fallback): the slug of its name.
MAIN_TASK_ID = "main-task"

#: Strategy names a user may type (case-insensitive; ``-`` and ``_`` alike).
STRATEGY_ALIASES: dict[str, Strategy] = {
    "auto": common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC,
    "automatic": common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC,
    "domain": common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN,
    "by_domain": common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN,
    "data": common_pb2.DECOMPOSITION_STRATEGY_BY_DATA,
    "by_data": common_pb2.DECOMPOSITION_STRATEGY_BY_DATA,
    "stage": common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE,
    "by_stage": common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE,
    "none": common_pb2.DECOMPOSITION_STRATEGY_NONE,
    "single": common_pb2.DECOMPOSITION_STRATEGY_NONE,
}

_LABELS: dict[Strategy, str] = {
    common_pb2.DECOMPOSITION_STRATEGY_UNSPECIFIED: "auto",
    common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC: "auto",
    common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN: "domain",
    common_pb2.DECOMPOSITION_STRATEGY_BY_DATA: "data",
    common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE: "stage",
    common_pb2.DECOMPOSITION_STRATEGY_NONE: "none",
}

#: The seed's strategy sentences (§2.2).
STRATEGY_INSTRUCTIONS: dict[Strategy, str] = {
    common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC: (
        "Analyze the task and determine the optimal way to decompose it into parallel subtasks."
    ),
    common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN: (
        "Decompose the task by domain expertise (e.g., research, coding, analysis, verification)."
    ),
    common_pb2.DECOMPOSITION_STRATEGY_BY_DATA: (
        "Decompose the task by data partition (e.g., different files, sections, or datasets)."
    ),
    common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE: (
        "Decompose the task by workflow stages (e.g., gather, process, synthesize)."
    ),
}


class UnknownStrategyError(InvalidArgument, ValueError):
    """A strategy name that is not one of the aliases (a ValueError, for argparse)."""


def parse_strategy(text: str) -> Strategy:
    """Parse a strategy as a user types it: ``auto``, ``domain``, ``data``,
    ``stage``, ``none`` (also ``automatic``, ``by_domain``, ``by-data``,
    ``single`` and the proto enum names), case-insensitively.

    Unlike the seed, which ran an unknown value as ``auto``, an unknown name
    raises :class:`UnknownStrategyError` listing the accepted ones.
    """
    key = text.strip().lower().replace("-", "_")
    if key.startswith("decomposition_strategy_"):
        key = key.removeprefix("decomposition_strategy_")
    if key in STRATEGY_ALIASES:
        return STRATEGY_ALIASES[key]
    raise UnknownStrategyError(
        f"unknown decomposition strategy {text!r} (use one of: auto, domain, data, stage, none)"
    )


def strategy_label(strategy: Strategy) -> str:
    """The CLI alias of a strategy (``auto`` for unspecified)."""
    return _LABELS.get(strategy, "auto")


_PROMPT = """You are a task orchestrator. Your job is to decompose complex tasks into parallelizable subtasks.

TASK: {task}

STRATEGY: {strategy_instruction}

CONSTRAINTS:
- Maximum {max_subagents} subtasks
- Each subtask should be independently executable
- Identify dependencies between subtasks (which must complete before others can start)
- Assign a specialty/role to each subtask

OUTPUT FORMAT (JSON):
```json
{{
  "subtasks": [
    {{
      "name": "Subtask Name",
      "instruction": "Detailed instruction for this subtask",
      "specialty": "Role/specialty (e.g., Researcher, Coder, Analyst)",
      "dependencies": ["id-of-dependency-1"],
      "priority": 1,
      "needs_worktree": true
    }}
  ]
}}
```

Set "needs_worktree" to true only for subtasks that create, edit or delete files; subtasks that only read, research, review or analyze set it to false.

Decompose the task now:"""


def build_decomposition_prompt(task: str, strategy: Strategy, max_subagents: int) -> str:
    """The seed's decomposition prompt with ``needs_worktree`` added."""
    if strategy == common_pb2.DECOMPOSITION_STRATEGY_UNSPECIFIED:
        strategy = common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC
    instruction = STRATEGY_INSTRUCTIONS.get(strategy)
    if instruction is None:
        raise InvalidArgument(f"strategy {strategy_label(strategy)!r} does not call the model")
    return _PROMPT.format(task=task, strategy_instruction=instruction, max_subagents=max_subagents)


def decomposition_temperature(model: str) -> float:
    """Seed rule: 1.0 for models that require it (Kimi K2, GLM, MiniMax), else 0.7."""
    lowered = model.lower()
    return 1.0 if any(marker in lowered for marker in ("kimi-k2", "glm-", "minimax")) else 0.7


@dataclass(frozen=True)
class PlanWarning:
    """Something was repaired, dropped or fell back; becomes a SwarmWarning event."""

    code: str
    message: str
    subtask_id: str = ""

    def to_proto(self) -> common_pb2.SwarmWarning:
        return common_pb2.SwarmWarning(
            code=self.code, message=self.message, subtask_id=self.subtask_id
        )


# --------------------------------------------------------------------------
# Read-only vs mutating (seed §15.1)
# --------------------------------------------------------------------------

_MUTATING = re.compile(
    r"\b(write|edit|create|fix|implement|refactor|apply|commit|patch|scaffold|build|delete|remove|"
    r"rename|move|mkdir|install|deploy)",
    re.IGNORECASE,
)
_READ_ONLY_SPECIALTY = re.compile(
    r"(research|review|analy|audit|plan|fact|summari|explore|docs|read-only|readonly|search|investigate)",
    re.IGNORECASE,
)


def classify_read_only(instruction: str, specialty: str, needs_worktree: bool | None) -> bool:
    """True when a model-planned subtask only inspects (no worktree).

    The deterministic classifier overrides the model's hint: an instruction
    that says it changes something (write, fix, implement, ...) is mutating;
    otherwise a read-only specialty (research, review, analysis, ...) is
    read-only; otherwise the model's ``needs_worktree`` decides; with no hint
    the subtask is mutating, the safe default (it gets an isolated worktree).
    """
    if _MUTATING.search(instruction):
        return False
    if specialty and _READ_ONLY_SPECIALTY.search(specialty):
        return True
    if needs_worktree is not None:
        return not needs_worktree
    return False


@dataclass
class DraftPlan:
    """Subtasks read from the model, before graph repairs."""

    subtasks: list[common_pb2.SubTask]
    source: common_pb2.PlanSource
    warnings: list[PlanWarning] = field(default_factory=list)


def single_subtask_plan(task: str, *, read_only: bool = False) -> common_pb2.SubTask:
    """The whole task as one subtask (strategy none, or the safe fallback).

    Its id is always :data:`MAIN_TASK_ID`, so a recorded run replays (the
    cassette is keyed by subtask id) and its branch name is readable.
    """
    return common_pb2.SubTask(
        id=MAIN_TASK_ID, name=MAIN_TASK_NAME, instruction=task, read_only=read_only
    )


#: Longest slug :func:`subtask_slug` makes (ids may be 128 characters; a
#: short one keeps branch names and critical-path output readable).
SLUG_MAX_CHARS = 48
_SLUG_DROP = re.compile(r"[^a-z0-9]+")


def subtask_slug(text: str, fallback: str) -> str:
    """A readable, deterministic subtask id made from ``text`` (a name).

    Lower case ASCII letters and digits joined by single hyphens, at most
    :data:`SLUG_MAX_CHARS` characters, cut at a word boundary when one is
    near: ``"Write the CLI (v2)"`` -> ``"write-the-cli-v2"``. Text with no
    usable character gives ``fallback``. Ids derived this way are the same
    on every run of the same plan, which is what lets a recorded task-text
    run replay: cassettes are keyed by subtask id.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_DROP.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > SLUG_MAX_CHARS:
        cut = slug[:SLUG_MAX_CHARS]
        boundary = cut.rfind("-")
        slug = cut[:boundary] if boundary >= SLUG_MAX_CHARS // 2 else cut
        slug = slug.strip("-")
    return slug or fallback
