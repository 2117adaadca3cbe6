"""Benchmark workloads, their bounds, and the measures computed from a run."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.fake_model_behaviour import parse_directive  # noqa: E402
from benchmarks.measures import overheads, percentile, server_view  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    SubtaskSpec,
    Workload,
    layered,
    rate_bound,
    read_only_variant,
    wide,
)


def test_wide_bounds() -> None:
    workload = wide(100, 10, 1.0)
    assert len(workload) == 100 and workload.total_calls == 1000
    assert workload.critical_path_bound() == 10.0
    assert workload.stage_barrier_bound() == 10.0
    assert workload.sequential_bound() == 1000.0


@pytest.mark.parametrize(("layers", "width"), [(4, 25), (3, 8), (6, 12)])
def test_layered_dag_keeps_every_long_subtask_off_the_others_chains(
    layers: int, width: int
) -> None:
    workload, longs = layered(layers, width, short_steps=2, long_steps=8, latency=0.5)
    assert len(longs) == layers
    assert {workload.stages()[sid] for sid in longs} == set(range(layers))  # one per layer
    assert workload.chains_through(longs) == 1
    bound, chain = workload.critical_path()
    assert bound == pytest.approx((8 + (layers - 1) * 2) * 0.5)
    assert workload.stage_barrier_bound() == pytest.approx(layers * 8 * 0.5)
    assert bound < workload.stage_barrier_bound()
    assert len(chain) == layers and sum(sid in longs for sid in chain) == 1
    spec = workload.by_id()
    for parent, child in itertools.pairwise(chain):
        assert parent in spec[child].dependencies


def test_critical_path_follows_the_heaviest_chain() -> None:
    workload = Workload(
        "diamond",
        [
            SubtaskSpec("a", 1, 1.0),
            SubtaskSpec("b", 5, 1.0, ("a",)),
            SubtaskSpec("c", 2, 1.0, ("a",)),
            SubtaskSpec("d", 1, 1.0, ("b", "c")),
        ],
    )
    assert workload.critical_path() == (7.0, ["a", "b", "d"])
    assert workload.critical_path(per_subtask=0.5) == (8.5, ["a", "b", "d"])
    assert workload.stage_barrier_bound() == 7.0  # stages {a}, {b, c}, {d}


def test_workloads_refuse_bad_graphs() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Workload("x", [SubtaskSpec("a", 1, 0.0), SubtaskSpec("a", 1, 0.0)])
    with pytest.raises(ValueError, match="not listed before"):
        Workload("x", [SubtaskSpec("b", 1, 0.0, ("a",)), SubtaskSpec("a", 1, 0.0)])


def test_plan_carries_the_script_for_the_fake_model() -> None:
    workload, _ = layered(2, 3, short_steps=2, long_steps=5, latency=0.25)
    plan = workload.plan()
    assert [s.id for s in plan.subtasks] == [s.id for s in workload.subtasks]
    for sub, spec in zip(plan.subtasks, workload.subtasks, strict=True):
        script = parse_directive(sub.instruction)
        assert script["id"] == spec.id and int(script["steps"]) == spec.steps
        assert float(script["latency"]) == 0.25
        assert list(sub.dependencies) == list(spec.dependencies)
        assert not sub.read_only and script["tool"] == "write" and sub.max_steps > spec.steps
    readonly = read_only_variant(workload).plan()
    assert all(s.read_only and "tool=list" in s.instruction for s in readonly.subtasks)


def test_rate_bound() -> None:
    assert rate_bound(61, 60) == pytest.approx(60.0)
    assert rate_bound(600, 600, burst=1) == pytest.approx(59.9)
    assert rate_bound(10, 0) == 0.0


def test_percentile_interpolates() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


def test_overheads_measure_from_readiness_to_first_call_and_from_last_answer_to_done() -> None:
    workload = Workload("chain", [SubtaskSpec("a", 2, 1.0), SubtaskSpec("b", 1, 1.0, ("a",))])
    log = [
        (100.010, 101.010, "a", 1, 200),
        (101.020, 101.020, "a", 2, 429),
        (101.030, 102.030, "a", 2, 200),
        (102.100, 103.100, "b", 1, 200),
    ]
    first, last, ok, limited, rate = server_view(log)
    assert (ok, limited) == (3, 1)
    assert first == {"a": 100.010, "b": 102.100}
    assert last == {"a": 102.030, "b": 103.100}
    assert rate == pytest.approx(2 / 2.09)
    dispatch, finish = overheads(workload, 100.0, {"a": 102.050, "b": 103.105}, first, last)
    assert dispatch == pytest.approx([10.0, 50.0])
    assert finish == pytest.approx([20.0, 5.0])
