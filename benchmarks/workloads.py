"""Benchmark workloads: the subtask graphs, and the bounds no scheduler can beat.

A :class:`Workload` is a list of :class:`SubtaskSpec` (id, model calls,
latency per call, dependencies). Each becomes a swarmd plan whose
instructions carry a :func:`~benchmarks.fake_model_server.directive`, so the
fake model server plays exactly that many steps at that latency.

Bounds, for a model that answers in ``latency`` seconds per call:

* :meth:`Workload.critical_path_bound` — the longest dependency chain,
  weighting each subtask by ``steps * latency``: no scheduler finishes sooner;
* :meth:`Workload.stage_barrier_bound` — the sum over stages (longest-path
  depth) of the slowest subtask of the stage: what a scheduler that waits
  for whole stages needs at best;
* :meth:`Workload.sequential_bound` — everything one after the other;
* :func:`rate_bound` — the time a request-rate limit alone imposes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from benchmarks.fake_model_behaviour import directive
from swarmd.v1 import common_pb2

__all__ = [
    "SubtaskSpec",
    "Workload",
    "chain",
    "layered",
    "rate_bound",
    "read_only_variant",
    "wide",
]


@dataclass(frozen=True)
class SubtaskSpec:
    id: str
    steps: int
    latency: float
    dependencies: tuple[str, ...] = ()
    tool: str = "list"
    read_only: bool = True

    @property
    def weight(self) -> float:
        """Seconds of model time this subtask needs at the least."""
        return self.steps * self.latency

    def instruction(self) -> str:
        marker = directive(id=self.id, steps=self.steps, latency=self.latency, tool=self.tool)
        return f"Benchmark subtask {self.id}: follow the script. {marker}"


@dataclass
class Workload:
    name: str
    subtasks: list[SubtaskSpec]

    def __post_init__(self) -> None:
        ids = [s.id for s in self.subtasks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"workload {self.name}: duplicate subtask ids")
        seen: set[str] = set()
        for spec in self.subtasks:
            missing = [d for d in spec.dependencies if d not in seen]
            if missing:
                raise ValueError(
                    f"workload {self.name}: {spec.id} depends on {missing} not listed before it"
                )
            seen.add(spec.id)

    def __len__(self) -> int:
        return len(self.subtasks)

    @property
    def total_calls(self) -> int:
        return sum(s.steps for s in self.subtasks)

    def by_id(self) -> dict[str, SubtaskSpec]:
        return {s.id: s for s in self.subtasks}

    def stages(self) -> dict[str, int]:
        """Longest-path depth of each subtask (roots are 0), as swarmd reports stages."""
        depth: dict[str, int] = {}
        for spec in self.subtasks:  # listed in topological order
            depth[spec.id] = 1 + max((depth[d] for d in spec.dependencies), default=-1)
        return depth

    def critical_path(self, per_subtask: float = 0.0) -> tuple[float, list[str]]:
        """(seconds, ids root first) of the heaviest chain; ``per_subtask`` is added to each weight."""
        finish: dict[str, float] = {}
        parent: dict[str, str | None] = {}
        for spec in self.subtasks:
            best = max(spec.dependencies, key=lambda d: finish[d], default=None)
            start = finish[best] if best is not None else 0.0
            finish[spec.id] = start + spec.weight + per_subtask
            parent[spec.id] = best
        if not finish:
            return 0.0, []
        end = max(finish, key=lambda k: finish[k])
        chain: list[str] = []
        node: str | None = end
        while node is not None:
            chain.append(node)
            node = parent[node]
        return finish[end], chain[::-1]

    def critical_path_bound(self) -> float:
        return self.critical_path()[0]

    def stage_barrier_bound(self) -> float:
        slowest: dict[int, float] = {}
        for sid, stage in self.stages().items():
            slowest[stage] = max(slowest.get(stage, 0.0), self.by_id()[sid].weight)
        return sum(slowest.values())

    def sequential_bound(self) -> float:
        return sum(s.weight for s in self.subtasks)

    def chains_through(self, marked: Iterable[str]) -> int:
        """The most ``marked`` subtasks any single dependency chain passes through."""
        marked_set = set(marked)
        best: dict[str, int] = {}
        for spec in self.subtasks:
            here = int(spec.id in marked_set)
            best[spec.id] = here + max((best[d] for d in spec.dependencies), default=0)
        return max(best.values(), default=0)

    def plan(self) -> common_pb2.Plan:
        return common_pb2.Plan(
            subtasks=[
                common_pb2.SubTask(
                    id=s.id,
                    name=s.id,
                    instruction=s.instruction(),
                    dependencies=list(s.dependencies),
                    read_only=s.read_only,
                    max_steps=s.steps + 2,
                )
                for s in self.subtasks
            ]
        )


def wide(
    n: int,
    steps: int,
    latency: float,
    *,
    tool: str = "write",
    read_only: bool = False,
    prefix: str = "w",
) -> Workload:
    """``n`` independent subtasks of ``steps`` model calls each."""
    return Workload(
        f"wide-{n}x{steps}",
        [
            SubtaskSpec(f"{prefix}{i:04d}", steps, latency, tool=tool, read_only=read_only)
            for i in range(n)
        ],
    )


def chain(
    n: int, steps: int, latency: float, *, tool: str = "write", prefix: str = "k"
) -> Workload:
    """``n`` subtasks, each depending on the one before: every dispatch waits for a finish."""
    specs = [
        SubtaskSpec(
            f"{prefix}{i:04d}",
            steps,
            latency,
            (f"{prefix}{i - 1:04d}",) if i else (),
            tool=tool,
            read_only=tool not in ("write", "bash"),
        )
        for i in range(n)
    ]
    return Workload(f"chain-{n}", specs)


def _long_positions(
    layers: int, width: int, parents: Sequence[Sequence[tuple[int, ...]]]
) -> list[int]:
    """One long subtask per layer, none a descendant of an earlier one.

    Greedy: each layer takes the free position whose descendants overlap the
    earlier longs' descendants the most, so later layers keep room.
    """

    def reach_from(layer: int, index: int) -> list[set[int]]:
        reach = [set() for _ in range(layers)]
        reach[layer] = {index}
        for below in range(layer + 1, layers):
            reach[below] = {
                i for i in range(width) if any(p in reach[below - 1] for p in parents[below][i])
            }
        return reach

    taken: list[set[int]] = [set() for _ in range(layers)]
    positions: list[int] = []
    for layer in range(layers):
        free = [i for i in range(width) if i not in taken[layer]]
        if not free:
            raise ValueError(
                f"cannot place a long subtask in layer {layer} off every earlier long chain"
            )

        def growth(index: int, layer: int = layer) -> int:
            reach = reach_from(layer, index)
            return sum(len(reach[b] - taken[b]) for b in range(layer + 1, layers))

        choice = min(free, key=lambda i: (growth(i), abs(i - width // 2)))
        positions.append(choice)
        for below, reach in enumerate(reach_from(layer, choice)):
            taken[below] |= reach
    return positions


def layered(
    layers: int,
    width: int,
    *,
    short_steps: int,
    long_steps: int,
    latency: float,
    fan_in: int = 2,
    tool: str = "write",
    read_only: bool = False,
) -> tuple[Workload, list[str]]:
    """A layered DAG: subtask (k, i) depends on (k-1, i), (k-1, i+1)... (``fan_in`` of them).

    Each layer has one long subtask, placed so that no dependency chain meets
    two of them: the critical path is ``long + (layers-1) * short`` steps while
    a stage-barrier scheduler needs ``layers * long``. Returns the workload and
    the ids of the long subtasks.
    """
    parents = [
        [tuple(sorted({(i + j) % width for j in range(fan_in)})) if k else () for i in range(width)]
        for k in range(layers)
    ]
    longs = _long_positions(layers, width, parents)
    specs: list[SubtaskSpec] = []
    long_ids: list[str] = []
    for k in range(layers):
        for i in range(width):
            sid = f"l{k}s{i:02d}"
            is_long = i == longs[k]
            if is_long:
                long_ids.append(sid)
            deps = tuple(f"l{k - 1}s{p:02d}" for p in parents[k][i])
            steps = long_steps if is_long else short_steps
            specs.append(SubtaskSpec(sid, steps, latency, deps, tool=tool, read_only=read_only))
    return Workload(f"layered-{layers}x{width}", specs), long_ids


def rate_bound(total_calls: int, requests_per_minute: float, burst: float = 1.0) -> float:
    """Seconds a token-bucket limit needs to let ``total_calls`` through (it starts full)."""
    if requests_per_minute <= 0:
        return 0.0
    return max(0.0, total_calls - max(1.0, burst)) * 60.0 / requests_per_minute


def read_only_variant(workload: Workload) -> Workload:
    """The same graph with read-only subtasks that list files instead of writing one."""
    return Workload(
        workload.name + "-ro",
        [
            SubtaskSpec(s.id, s.steps, s.latency, s.dependencies, tool="list", read_only=True)
            for s in workload.subtasks
        ],
    )
