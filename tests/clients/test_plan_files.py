"""Plan files: YAML/JSON syntax and field types are checked before submission."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.plan_files import load_plan


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_plan(tmp_path: Path) -> None:
    plan, task = load_plan(
        write(
            tmp_path,
            "p.yaml",
            "task: build it\nsubtasks:\n  - id: a\n    instruction: do a\n    read_only: true\n"
            "  - id: b\n    instruction: do b\n    dependencies: [a]\n    priority: 2\n    labels: {team: x}\n",
        )
    )
    assert task == "build it"
    assert [s.id for s in plan.subtasks] == ["a", "b"]
    assert plan.subtasks[0].read_only and list(plan.subtasks[1].dependencies) == ["a"]
    assert plan.subtasks[1].priority == 2 and plan.subtasks[1].labels["team"] == "x"


def test_json_list_plan(tmp_path: Path) -> None:
    plan, task = load_plan(write(tmp_path, "p.json", '[{"id": "a", "instruction": "x"}]'))
    assert task == "" and plan.subtasks[0].id == "a"


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("p.yaml", "subtasks: [\n", "not valid YAML"),
        ("p.json", "{", "not valid JSON"),
        ("p.yaml", "subtasks: []\n", "non-empty 'subtasks'"),
        ("p.yaml", "subtasks:\n  - just a string\n", "subtasks[0] must be a mapping"),
        ("p.yaml", "subtasks:\n  - id: a\n    instruction: x\n    depends: [b]\n", "unknown field(s): depends"),
        ("p.yaml", "subtasks:\n  - id: a\n    instruction: x\n    dependencies: b\n", "subtasks[0].dependencies must be list"),
        ("p.yaml", "subtasks:\n  - id: a\n    instruction: x\n    priority: high\n", "subtasks[0].priority must be int"),
        ("p.yaml", "subtasks:\n  - id: a\n    instruction: x\n    priority: true\n", "subtasks[0].priority must be an integer"),
        ("p.yaml", "plan: []\n", "unknown top-level key(s): plan"),
    ],
)
def test_malformed_plan_files(tmp_path: Path, name: str, text: str, needle: str) -> None:
    with pytest.raises(SwarmdClientError) as info:
        load_plan(write(tmp_path, name, text))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.message


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(SwarmdClientError, match="cannot read"):
        load_plan(tmp_path / "none.yaml")
