"""Speculative variants asked for in a plan file (`speculate`), on the command
line (`--speculate`) and checked at submission."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from swarmd.clients.cli import main
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.plan_files import load_plan, parse_plan
from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.queries import event_filter
from swarmd.services.orchestrator.speculation import MAX_VARIANTS, variants_of
from swarmd.services.orchestrator.swarm_config import effective_config
from swarmd.services.orchestrator.validation import validate_explicit_plan
from swarmd.v1 import common_pb2, orchestrator_pb2

pytestmark = pytest.mark.timeout(60)


def test_speculate_reaches_the_subtask(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "subtasks:\n"
        "  - {id: risky, instruction: Rewrite the parser., speculate: 3}\n"
        "  - {id: plain, instruction: Update the docs., dependencies: [risky]}\n"
    )
    plan, _ = load_plan(path)
    assert [s.speculate for s in plan.subtasks] == [3, 0]
    one, _ = parse_plan([{"id": "a", "instruction": "x", "speculate": 1}])
    assert one.subtasks[0].speculate == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, f"subtasks[0].speculate must be between 1 and {MAX_VARIANTS}, not 0"),
        (-2, f"subtasks[0].speculate must be between 1 and {MAX_VARIANTS}, not -2"),
        (10**12, f"subtasks[0].speculate must be between 1 and {MAX_VARIANTS}, not 1000000000000"),
        (MAX_VARIANTS + 1, f"must be between 1 and {MAX_VARIANTS}, not {MAX_VARIANTS + 1}"),
        ("three", "subtasks[0].speculate must be int"),
        (2.5, "subtasks[0].speculate must be int"),
        (True, "subtasks[0].speculate must be an integer"),
        ([3], "subtasks[0].speculate must be int"),
    ],
)
def test_bad_speculate_values_are_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(SwarmdClientError) as info:
        parse_plan([{"id": "a", "instruction": "x", "speculate": value}], "plan.yaml")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.message
    assert info.value.message.startswith("plan file plan.yaml:")


@pytest.mark.parametrize(
    ("sub", "needle"),
    [
        (common_pb2.SubTask(id="a", instruction="x", speculate=MAX_VARIANTS + 1), "speculate must be between 0 and 8 (got 9)"),
        (common_pb2.SubTask(id="a", instruction="x", speculate=-1), "speculate must be between 0 and 8 (got -1)"),
        (common_pb2.SubTask(id="a", instruction="x", speculate=2, read_only=True), "is read-only"),
        (common_pb2.SubTask(id="a.variant-2", instruction="x"), "reserved for speculative variants"),
    ],
)
def test_submission_refuses_bad_speculate(sub: common_pb2.SubTask, needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_explicit_plan(common_pb2.Plan(subtasks=[sub]), 100)
    assert needle in info.value.message


def test_the_swarms_speculate_is_checked_and_applies_to_mutating_subtasks_left_unset() -> None:
    for bad in (-1, MAX_VARIANTS + 1):
        with pytest.raises(InvalidArgument) as info:
            effective_config(common_pb2.SwarmConfig(speculate=bad))
        assert "config.speculate must be between 0 and 8" in info.value.message
    config = effective_config(common_pb2.SwarmConfig(speculate=3))
    assert variants_of(config, common_pb2.SubTask(id="a")) == 3
    assert variants_of(config, common_pb2.SubTask(id="a", speculate=2)) == 2
    assert variants_of(config, common_pb2.SubTask(id="a", speculate=1)) == 1
    assert variants_of(config, common_pb2.SubTask(id="a", read_only=True)) == 1
    config.worktree_enabled = False
    assert variants_of(config, common_pb2.SubTask(id="a", speculate=3)) == 1


def test_the_speculate_flag_reaches_the_swarms_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, calc_repo: Path, demo_model: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("subtasks:\n  - id: a\n    instruction: Write a.py.\n")
    base = ["run", "--plan", str(plan), "--model", demo_model, "--repo", str(calc_repo), "--dry-run", "--json"]
    assert main([*base, "--speculate", "3", "--speculate-model", demo_model]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert (config["speculate"], config["speculate_models"]) == (3, [demo_model])
    # Each variant model is checked by the executor service like --model.
    assert main([*base, "--speculate", "3", "--speculate-model", demo_model, "--speculate-model", "nosuch/model"]) != 0
    err = capsys.readouterr().err
    assert "config.speculate_models[1]" in err and "unknown model provider 'nosuch'" in err
    for bad in ("0", "9", "x"):
        with pytest.raises(SystemExit) as info:
            main([*base, "--speculate", bad])
        assert info.value.code == 2
        assert "--speculate" in capsys.readouterr().err


def test_a_watch_of_a_speculative_subtask_gets_its_variants_events() -> None:
    keep = event_filter(orchestrator_pb2.WatchSwarmRequest(swarm_id="s", subtask_ids=["feature"]))
    assert keep is not None

    def step(sid: str) -> common_pb2.SwarmEvent:
        return common_pb2.SwarmEvent(agent_step=common_pb2.AgentStep(subtask_id=sid))

    assert keep(step("feature")) and keep(step("feature.variant-2"))
    assert not keep(step("other")) and not keep(step("other.variant-1")) and not keep(step("feature.variant-x"))
