"""Plan validation (explicit plans refused) and repair (model plans fixed)."""

from __future__ import annotations

import pytest

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.swarm_config import effective_config
from swarmd.services.orchestrator.validation import (
    assign_stages,
    find_cycle,
    remaining_chain_lengths,
    repair_model_plan,
    validate_explicit_plan,
)
from swarmd.v1 import common_pb2


def st(
    sid: str, *deps: str, name: str = "", instruction: str = "do it", priority: int = 0
) -> common_pb2.SubTask:
    return common_pb2.SubTask(
        id=sid, name=name or sid, instruction=instruction, dependencies=deps, priority=priority
    )


def test_find_cycle_reports_the_path() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_find_cycle_handles_deep_chains() -> None:
    edges = {str(i): [str(i + 1)] for i in range(5000)}
    edges["5000"] = ["0"]
    cycle = find_cycle(edges)
    assert cycle is not None and len(cycle) == 5002


def test_stages_are_longest_path_depth() -> None:
    plan = [st("a"), st("b", "a"), st("c"), st("d", "b", "c"), st("e", "a")]
    assert assign_stages(plan) == 3
    assert {s.id: s.stage for s in plan} == {"a": 0, "b": 1, "c": 0, "d": 2, "e": 1}
    assert remaining_chain_lengths(plan) == {"a": 3, "b": 2, "c": 2, "d": 1, "e": 1}


def test_valid_explicit_plan_is_normalised() -> None:
    plan = common_pb2.Plan(
        subtasks=[common_pb2.SubTask(id="a", instruction="x"), st("b", "a", "a")]
    )
    subtasks, stages = validate_explicit_plan(plan, 100)
    assert stages == 2
    assert subtasks[0].name == "a"  # name defaults to the id
    assert list(subtasks[1].dependencies) == ["a"]  # duplicate entries merged
    assert plan.subtasks[0].name == ""  # the request is not modified


@pytest.mark.parametrize(
    ("subtasks", "needles"),
    [
        ([st("a", "b"), st("b", "c"), st("c", "a")], ["circular dependency: a -> b -> c -> a"]),
        ([st("a", "a")], ["subtask 'a' depends on itself"]),
        ([st("a", "ghost")], ["subtask 'a' depends on unknown subtask 'ghost'"]),
        ([st("a"), st("b", "Build", name="x"), st("c", name="Build")], ["did you mean id 'c'"]),
        ([st("a"), st("a")], ["duplicate subtask id 'a' (subtasks #1 and #2)"]),
        ([st("a", instruction="   ")], ["subtask #1 'a' has an empty instruction"]),
        ([st("")], ["subtask #1 has no id"]),
        ([st("bad id!")], ["'bad id!' has an invalid id"]),
        ([st("x" * 129)], ["has an invalid id"]),
        ([st("a", instruction="x" * 100_001)], ["instruction is 100001 characters (max 100000)"]),
        ([st("a", name="n" * 201)], ["name is 201 characters"]),
        ([st("a"), st("b", *["a"] * 257)], ["has 257 dependencies (max 256)"]),
        (
            [st("a", "ghost"), st("b", "b"), st("c", instruction="")],
            ["unknown subtask 'ghost'", "'b' depends on itself", "empty instruction"],
        ),
    ],
)
def test_explicit_plan_faults_are_refused_naming_the_offender(
    subtasks: list[common_pb2.SubTask], needles: list[str]
) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_explicit_plan(common_pb2.Plan(subtasks=subtasks), 100)
    for needle in needles:
        assert needle in info.value.message


def test_explicit_plan_over_max_subagents_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="3 subtasks, more than max_subagents \\(2\\)"):
        validate_explicit_plan(common_pb2.Plan(subtasks=[st("a"), st("b"), st("c")]), 2)


def test_empty_plan_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="no subtasks"):
        validate_explicit_plan(common_pb2.Plan(), 100)


def test_many_problems_are_listed_and_capped() -> None:
    plan = common_pb2.Plan(subtasks=[st(f"s{i}", "ghost") for i in range(30)])
    with pytest.raises(InvalidArgument) as info:
        validate_explicit_plan(plan, 100)
    assert "and 10 more" in info.value.message


# -- repairs of model plans ---------------------------------------------------------


def test_cycle_is_broken_by_dropping_the_closing_edge() -> None:
    plan = [st("a", "c", name="A"), st("b", "a", name="B"), st("c", "b", name="C")]
    subtasks, stages, warnings = repair_model_plan(plan, 100)
    assert [w.code for w in warnings] == ["cycle_broken"]
    assert "'A' -> 'C' -> 'B' -> 'A'" in warnings[0].message
    assert "dependency of 'B' on 'A' was dropped" in warnings[0].message
    assert find_cycle({s.id: list(s.dependencies) for s in subtasks}) is None
    assert stages == 3


def test_self_and_unknown_edges_are_dropped_and_duplicates_renamed() -> None:
    plan = [st("a", "a"), st("a", "zzz"), st("bad id")]
    subtasks, _, warnings = repair_model_plan(plan, 100)
    assert [s.id for s in subtasks] == ["a", "a-2", "bad-id-2"]
    assert sorted(w.code for w in warnings) == [
        "dependency_dropped",
        "dependency_dropped",
        "duplicate_renamed",
        "duplicate_renamed",
    ]


def test_truncation_keeps_shallow_high_priority_subtasks() -> None:
    plan = [
        st("root"),
        st("low", "root", priority=0),
        st("high", "root", priority=5),
        st("leaf", "low"),
    ]
    subtasks, stages, warnings = repair_model_plan(plan, 2)
    assert [s.id for s in subtasks] == ["root", "high"]
    assert stages == 2
    (warning,) = warnings
    assert warning.code == "plan_truncated"
    assert (
        "planned 4 subtasks" in warning.message
        and "'low'" in warning.message
        and "'leaf'" in warning.message
    )


def test_oversized_instruction_is_cut_with_a_warning() -> None:
    subtasks, _, warnings = repair_model_plan([st("a", instruction="x" * 100_010)], 100)
    assert len(subtasks[0].instruction) == 100_000
    assert [w.code for w in warnings] == ["instruction_truncated"]


# -- effective config ----------------------------------------------------------------


def test_effective_config_fills_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = effective_config(common_pb2.SwarmConfig(), cwd=str(tmp_path))
    assert config.max_subagents == 100
    assert config.max_steps_per_subagent == 100
    assert config.max_total_tool_calls == 1500
    assert config.subagent_timeout_secs == 600
    assert config.subtask_timeout_secs == 3600
    assert config.executor == ""  # the executor service chooses its default
    assert config.max_concurrent == 8
    assert config.request_delay_ms == 250
    assert config.worktree_enabled and config.auto_merge and config.cache_enabled
    assert config.max_retries == 3
    assert (config.base_delay_ms, config.max_delay_ms) == (500, 30000)
    assert config.strategy == common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC
    assert config.dependency_failure_policy == common_pb2.DEPENDENCY_FAILURE_POLICY_SKIP
    assert config.repo_path == str(tmp_path)
    assert config.cache_ttl_secs == 86400


def test_effective_config_keeps_explicit_zeros_of_optional_fields() -> None:
    config = effective_config(
        common_pb2.SwarmConfig(
            request_delay_ms=0, max_retries=0, worktree_enabled=False, repo_path="/tmp"
        )
    )
    assert config.request_delay_ms == 0 and config.max_retries == 0 and not config.worktree_enabled


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("max_concurrent", -1, "config.max_concurrent must not be negative"),
        ("max_subagents", 5000, "config.max_subagents is 5000; the maximum is 1000"),
        ("max_cost_usd", -0.5, "config.max_cost_usd must not be negative"),
        ("model", "open ai/gpt", "must not contain whitespace"),
        ("executor", "no such", "is not a plugin name"),
    ],
)
def test_effective_config_refuses_nonsense(field: str, value: object, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        effective_config(common_pb2.SwarmConfig(**{field: value}))
