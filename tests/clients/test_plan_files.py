"""Plan files: YAML/JSON syntax and field types are checked before submission."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmd.clients.cli import main
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


# -- hostile and fuzzed plan files ---------------------------------------------



def refused_with_place(path: Path, needle: str = "") -> str:
    with pytest.raises(SwarmdClientError) as info:
        load_plan(path)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message.startswith(f"plan file {path}: ")
    assert needle in info.value.message
    return info.value.message


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.yaml", b"subtasks:\n  - id: a\n    instruction: \xff\xfe\n", "line 3, column 18"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("deep.yaml", b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
        ("keys.yaml", b"subtasks:\n  - 1: x\n    id: a\n", "subtasks[0] has a key that is not a string"),
        ("top.yaml", b"1: x\nsubtasks: []\n", "the top level has a key"),
        ("labels.yaml", b"- id: a\n  instruction: x\n  labels: {2: y}\n", "subtasks[0].labels has a key"),
        ("nested.yaml", b"- id: a\n  instruction: x\n  labels: {k: [1, 2]}\n", "subtasks[0].labels.k must be a string"),
        ("prio.yaml", b"- id: a\n  instruction: x\n  priority: 99999999999\n", "subtasks[0].priority must be between"),
        ("steps.yaml", b"- id: a\n  instruction: x\n  max_steps: -1\n", "subtasks[0].max_steps must be between"),
        ("surrogate.json", b'[{"id": "a", "instruction": "\\ud800"}]', "subtasks[0].instruction is not valid Unicode"),
        ("date.yaml", b"- id: 2020-01-01\n  instruction: x\n", "subtasks[0].id must be str"),
    ],
)
def test_hostile_plan_files_name_the_file_and_the_place(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    refused_with_place(path, needle)


def test_an_endless_plan_file_is_refused_by_its_size(capsys: pytest.CaptureFixture[str]) -> None:
    refused_with_place(Path("/dev/zero"), "larger than 16 MiB")
    code = main(["run", "--plan", "/dev/zero", "--model", "replay/x.jsonl"])
    err = capsys.readouterr().err
    assert code == 2 and "plan file /dev/zero: larger than" in err and "Traceback" not in err


_FIELD_NAMES = ("id", "name", "instruction", "specialty", "dependencies", "priority", "read_only", "max_steps", "labels", "task", "subtasks")
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.sampled_from(list(_FIELD_NAMES))), inner, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_values, as_json=st.booleans())
def test_fuzzed_plan_structures_load_or_name_the_file(tmp_path: Path, data: object, as_json: bool) -> None:
    import json

    import yaml

    path = tmp_path / ("fuzz.json" if as_json else "fuzz.yaml")
    path.write_text(json.dumps(data) if as_json else yaml.safe_dump(data), encoding="utf-8")
    try:
        load_plan(path)
    except SwarmdClientError as exc:
        assert exc.message.startswith(f"plan file {path}: ")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), suffix=st.sampled_from([".json", ".yaml"]))
def test_fuzzed_plan_bytes_load_or_name_the_file(tmp_path: Path, raw: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(raw)
    try:
        load_plan(path)
    except SwarmdClientError as exc:
        assert exc.message.startswith(f"plan file {path}: ")
