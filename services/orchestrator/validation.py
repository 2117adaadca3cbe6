"""Plan validation and repair, and the dependency graph helpers.

Two policies over the same checks:

* an **explicit** plan was written by a user, so every fault is refused with
  ``INVALID_ARGUMENT`` and a message that names each offender (all of them,
  not only the first): bad or duplicate ids, empty or oversized
  instructions, unknown dependencies, self-dependencies, cycles (with the
  cycle's path), too many subtasks or dependencies;
* a **model** plan is repaired: a duplicate id is renamed, an edge that
  points nowhere or closes a cycle is dropped, the plan is cut to
  ``max_subagents``; each repair becomes a :class:`PlanWarning`.

Stages are the longest-path depth (roots are 0); they are for reporting
only, dispatch never waits for a stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.planning import PlanWarning
from swarmd.services.orchestrator.speculation.variants import (
    MAX_VARIANTS,
    subtask_of,
    variant_id,
    variants_of,
)
from swarmd.v1 import common_pb2

__all__ = [
    "ID_PATTERN",
    "MAX_DEPENDENCIES",
    "MAX_INSTRUCTION_CHARS",
    "MAX_LABELS",
    "MAX_NAME_CHARS",
    "MAX_TASK_CHARS",
    "assign_stages",
    "check_variant_ids",
    "find_cycle",
    "remaining_chain_lengths",
    "repair_model_plan",
    "validate_explicit_plan",
    "validate_id",
]

ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
MAX_TASK_CHARS = 100_000
MAX_INSTRUCTION_CHARS = 100_000
MAX_NAME_CHARS = 200
MAX_SPECIALTY_CHARS = 200
MAX_DEPENDENCIES = 256
MAX_LABELS = 64
MAX_LABEL_KEY_CHARS = 128
MAX_LABEL_VALUE_CHARS = 1024
#: Problems listed in one INVALID_ARGUMENT message before "... and N more".
_MAX_REPORTED = 20


def validate_id(value: str, what: str) -> None:
    """Raise :class:`InvalidArgument` unless ``value`` is a valid swarmd id."""
    if not ID_PATTERN.match(value):
        raise InvalidArgument(
            f"{what} {value!r} is not a valid id (1-128 characters of [A-Za-z0-9._-])",
            field=what,
        )


# --------------------------------------------------------------------------
# Graph helpers
# --------------------------------------------------------------------------


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path ``[a, b, ..., a]`` (a depends on b ...), or None.

    Iterative DFS (plans can be deep enough to hit Python's recursion limit);
    edges to unknown nodes are ignored. Nodes are visited in mapping order, so
    the cycle reported is deterministic.
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    for root in edges:
        if color[root] != white:
            continue
        path: list[str] = [root]
        iters = [iter(edges[root])]
        color[root] = grey
        while path:
            advanced = False
            for nxt in iters[-1]:
                if nxt not in color:
                    continue
                if color[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if color[nxt] == white:
                    color[nxt] = grey
                    path.append(nxt)
                    iters.append(iter(edges[nxt]))
                    advanced = True
                    break
            if not advanced:
                color[path.pop()] = black
                iters.pop()
    return None


def _topological(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Dependencies before dependents (Kahn); the graph must be acyclic."""
    indegree = {node: 0 for node in edges}
    dependents: dict[str, list[str]] = {node: [] for node in edges}
    for node, deps in edges.items():
        for dep in deps:
            if dep in edges:
                indegree[node] += 1
                dependents[dep].append(node)
    order = [node for node, deg in indegree.items() if deg == 0]
    i = 0
    while i < len(order):
        for nxt in dependents[order[i]]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                order.append(nxt)
        i += 1
    if len(order) != len(edges):
        raise ValueError("dependency graph has a cycle")
    return order


def _edges(subtasks: Iterable[common_pb2.SubTask]) -> dict[str, list[str]]:
    return {s.id: list(s.dependencies) for s in subtasks}


def assign_stages(subtasks: Sequence[common_pb2.SubTask]) -> int:
    """Set each subtask's ``stage`` to its longest-path depth; return the stage count."""
    edges = _edges(subtasks)
    stage: dict[str, int] = {}
    for node in _topological(edges):
        stage[node] = max((stage[d] + 1 for d in edges[node] if d in stage), default=0)
    for sub in subtasks:
        sub.stage = stage[sub.id]
    return (max(stage.values()) + 1) if stage else 0


def remaining_chain_lengths(subtasks: Sequence[common_pb2.SubTask]) -> dict[str, int]:
    """For each subtask, the number of subtasks on the longest chain it starts
    (itself included) towards the end of the plan: the critical-path rank."""
    edges = _edges(subtasks)
    dependents: dict[str, list[str]] = {node: [] for node in edges}
    for node, deps in edges.items():
        for dep in deps:
            if dep in dependents:
                dependents[dep].append(node)
    length: dict[str, int] = {}
    for node in reversed(_topological(edges)):
        length[node] = 1 + max((length[d] for d in dependents[node]), default=0)
    return length


# --------------------------------------------------------------------------
# Explicit plans: refuse
# --------------------------------------------------------------------------


def _check_fields(sub: common_pb2.SubTask, where: str, problems: list[str]) -> None:
    if not sub.instruction.strip():
        problems.append(f"{where} has an empty instruction")
    elif len(sub.instruction) > MAX_INSTRUCTION_CHARS:
        problems.append(
            f"{where} instruction is {len(sub.instruction)} characters (max {MAX_INSTRUCTION_CHARS})"
        )
    if len(sub.name) > MAX_NAME_CHARS:
        problems.append(f"{where} name is {len(sub.name)} characters (max {MAX_NAME_CHARS})")
    if len(sub.specialty) > MAX_SPECIALTY_CHARS:
        problems.append(
            f"{where} specialty is {len(sub.specialty)} characters (max {MAX_SPECIALTY_CHARS})"
        )
    if len(sub.dependencies) > MAX_DEPENDENCIES:
        problems.append(
            f"{where} has {len(sub.dependencies)} dependencies (max {MAX_DEPENDENCIES})"
        )
    if sub.max_steps < 0:
        problems.append(f"{where} max_steps must not be negative (got {sub.max_steps})")
    if subtask_of(sub.id) != sub.id:
        problems.append(f"{where} id {sub.id!r} has the form reserved for speculative variants (<id>.variant-<n>)")
    if not 0 <= sub.speculate <= MAX_VARIANTS:
        problems.append(f"{where} speculate must be between 0 and {MAX_VARIANTS} (got {sub.speculate})")
    elif sub.speculate > 1 and sub.read_only:
        problems.append(f"{where} is read-only: speculative variants need a branch each (speculate {sub.speculate})")
    # A NUL byte cannot go into a commit message or a prompt file: refuse it here.
    for field in ("instruction", "name", "specialty"):
        if "\x00" in getattr(sub, field):
            problems.append(f"{where} {field} contains a NUL byte")
    if len(sub.labels) > MAX_LABELS:
        problems.append(f"{where} has {len(sub.labels)} labels (max {MAX_LABELS})")
    for key, value in sub.labels.items():
        if "\x00" in key or "\x00" in value:
            problems.append(f"{where} label {key[:40]!r} contains a NUL byte")
        if not key or len(key) > MAX_LABEL_KEY_CHARS or len(value) > MAX_LABEL_VALUE_CHARS:
            problems.append(
                f"{where} label {key[:40]!r} is empty or too long (keys up to {MAX_LABEL_KEY_CHARS}, "
                f"values up to {MAX_LABEL_VALUE_CHARS} characters)"
            )


def check_variant_ids(subtasks: Sequence[common_pb2.SubTask], config: common_pb2.SwarmConfig) -> None:
    """Refuse (INVALID_ARGUMENT) a speculative subtask whose variants' ids
    (``<id>.variant-<n>``) would be longer than an id may be."""
    long = [
        sub.id
        for sub in subtasks
        if (count := variants_of(config, sub)) > 1 and not ID_PATTERN.match(variant_id(sub.id, count))
    ]
    if long:
        raise InvalidArgument(
            f"subtask id(s) {', '.join(repr(i[:40]) for i in long)} too long for speculative variants: "
            f"{variant_id('<id>', MAX_VARIANTS)!r} must fit in 128 characters",
            field="plan",
        )


def validate_explicit_plan(
    plan: common_pb2.Plan, max_subagents: int
) -> tuple[list[common_pb2.SubTask], int]:
    """Validate a user's plan strictly; return normalised copies and the stage count.

    Raises :class:`InvalidArgument` listing every offender. Names default to
    ids, duplicate dependency entries are merged, stages are computed.
    """
    problems: list[str] = []
    subtasks = [common_pb2.SubTask() for _ in plan.subtasks]
    for copy, original in zip(subtasks, plan.subtasks, strict=True):
        copy.CopyFrom(original)
    if not subtasks:
        raise InvalidArgument("plan has no subtasks", field="plan.subtasks")
    if len(subtasks) > max_subagents:
        raise InvalidArgument(
            f"plan has {len(subtasks)} subtasks, more than max_subagents ({max_subagents}); "
            "raise config.max_subagents or split the plan",
            field="plan.subtasks",
        )
    seen: dict[str, int] = {}
    for index, sub in enumerate(subtasks):
        where = f"subtask #{index + 1}" + (f" {sub.id!r}" if sub.id else "")
        if not sub.id:
            problems.append(
                f"subtask #{index + 1}{f' ({sub.name!r})' if sub.name else ''} has no id"
            )
        elif not ID_PATTERN.match(sub.id):
            problems.append(f"{where} has an invalid id (1-128 characters of [A-Za-z0-9._-])")
        elif sub.id in seen:
            problems.append(
                f"duplicate subtask id {sub.id!r} (subtasks #{seen[sub.id] + 1} and #{index + 1})"
            )
        else:
            seen[sub.id] = index
        _check_fields(sub, where, problems)
    names = {s.name: s.id for s in subtasks if s.name}
    for sub in subtasks:
        if not sub.id:
            continue
        deduped: list[str] = []
        for dep in sub.dependencies:
            if dep == sub.id:
                problems.append(f"subtask {sub.id!r} depends on itself")
            elif dep not in seen:
                hint = (
                    f" (did you mean id {names[dep]!r}, the subtask named {dep!r}?)"
                    if dep in names
                    else ""
                )
                problems.append(f"subtask {sub.id!r} depends on unknown subtask {dep!r}{hint}")
            if dep not in deduped:
                deduped.append(dep)
        del sub.dependencies[:]
        sub.dependencies.extend(deduped)
        if not sub.name:
            sub.name = sub.id
    if not problems:
        cycle = find_cycle(_edges(subtasks))
        if cycle is not None:
            problems.append(
                "circular dependency: " + " -> ".join(cycle) + " (each depends on the next)"
            )
    if problems:
        shown = problems[:_MAX_REPORTED]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise InvalidArgument("invalid plan: " + "; ".join(shown) + more, reason="INVALID_PLAN", field="plan")
    return subtasks, assign_stages(subtasks)


# --------------------------------------------------------------------------
# Model plans: repair
# --------------------------------------------------------------------------


def repair_model_plan(
    subtasks: list[common_pb2.SubTask], max_subagents: int
) -> tuple[list[common_pb2.SubTask], int, list[PlanWarning]]:
    """Repair a model-written plan in place; return it, its stage count and the warnings.

    Order of repairs: duplicate ids renamed, self-dependencies and edges to
    unknown ids dropped, cycles broken (the edge that closes each cycle is
    dropped), oversized fields cut, then the plan is cut to ``max_subagents``
    keeping the shallowest, highest-priority subtasks (a kept subtask's
    dependencies are always kept, because they are shallower).
    """
    warnings: list[PlanWarning] = []
    used: set[str] = set()
    for sub in subtasks:
        if sub.id in used or not ID_PATTERN.match(sub.id):
            old = sub.id
            n = 2
            base = re.sub(r"[^A-Za-z0-9._-]", "-", old)[:120] or "subtask"
            while f"{base}-{n}" in used:
                n += 1
            sub.id = f"{base}-{n}"
            warnings.append(
                PlanWarning(
                    "duplicate_renamed",
                    f"subtask {sub.name!r} had id {old!r}, already used or invalid; it was renamed to {sub.id!r}",
                    sub.id,
                )
            )
        used.add(sub.id)
        if len(sub.instruction) > MAX_INSTRUCTION_CHARS:
            warnings.append(
                PlanWarning(
                    "instruction_truncated",
                    f"subtask {sub.name!r} instruction was {len(sub.instruction)} characters; cut to {MAX_INSTRUCTION_CHARS}",
                    sub.id,
                )
            )
            sub.instruction = sub.instruction[:MAX_INSTRUCTION_CHARS]
        if len(sub.name) > MAX_NAME_CHARS:
            sub.name = sub.name[:MAX_NAME_CHARS]
        if len(sub.specialty) > MAX_SPECIALTY_CHARS:
            sub.specialty = sub.specialty[:MAX_SPECIALTY_CHARS]
    by_id = {s.id: s for s in subtasks}
    for sub in subtasks:
        kept: list[str] = []
        for dep in sub.dependencies:
            if dep == sub.id:
                warnings.append(
                    PlanWarning(
                        "dependency_dropped",
                        f"subtask {sub.name!r} depended on itself; that edge was dropped",
                        sub.id,
                    )
                )
            elif dep not in by_id:
                warnings.append(
                    PlanWarning(
                        "dependency_dropped",
                        f"subtask {sub.name!r} depended on unknown subtask {dep!r}; that edge was dropped",
                        sub.id,
                    )
                )
            elif dep not in kept:
                kept.append(dep)
        if len(kept) > MAX_DEPENDENCIES:
            warnings.append(
                PlanWarning(
                    "dependency_dropped",
                    f"subtask {sub.name!r} had {len(kept)} dependencies; only the first {MAX_DEPENDENCIES} were kept",
                    sub.id,
                )
            )
            kept = kept[:MAX_DEPENDENCIES]
        del sub.dependencies[:]
        sub.dependencies.extend(kept)
    while True:
        cycle = find_cycle(_edges(subtasks))
        if cycle is None:
            break
        # cycle = [a, b, ..., a]: the last edge (x -> a) closes it.
        closer, target = cycle[-2], cycle[-1]
        sub = by_id[closer]
        sub.dependencies.remove(target)
        names = " -> ".join(repr(by_id[n].name) for n in cycle)
        warnings.append(
            PlanWarning(
                "cycle_broken",
                f"circular dependency {names}; the dependency of {by_id[closer].name!r} on "
                f"{by_id[target].name!r} was dropped to break it",
                closer,
            )
        )
    stage_count = assign_stages(subtasks)
    if len(subtasks) > max_subagents:
        order = sorted(
            range(len(subtasks)), key=lambda i: (subtasks[i].stage, -subtasks[i].priority, i)
        )
        keep = sorted(order[:max_subagents])
        dropped = [subtasks[i] for i in order[max_subagents:]]
        subtasks[:] = [subtasks[i] for i in keep]
        listed = ", ".join(repr(s.name) for s in dropped[:10]) + (
            " ..." if len(dropped) > 10 else ""
        )
        warnings.append(
            PlanWarning(
                "plan_truncated",
                f"the model planned {len(subtasks) + len(dropped)} subtasks, more than max_subagents "
                f"({max_subagents}); the {len(dropped)} deepest, lowest-priority ones were dropped: {listed}",
            )
        )
        stage_count = assign_stages(subtasks)
    return subtasks, stage_count, warnings
