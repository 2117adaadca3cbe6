"""Decomposition: strategies, the prompt, and reading messy model output."""

from __future__ import annotations

import pytest

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.model_plan import (
    DecompositionParseError,
    extract_plan_json,
    plan_from_model_output,
)
from swarmd.services.orchestrator.planning import (
    MAIN_TASK_ID,
    MAIN_TASK_NAME,
    UnknownStrategyError,
    build_decomposition_prompt,
    classify_read_only,
    decomposition_temperature,
    parse_strategy,
    single_subtask_plan,
    strategy_label,
    subtask_slug,
)
from swarmd.v1 import common_pb2

TASK = "Add type hints to every module"


def names(draft) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.name for s in draft.subtasks]


def deps_by_name(draft) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    by_id = {s.id: s.name for s in draft.subtasks}
    return {s.name: [by_id[d] for d in s.dependencies] for s in draft.subtasks}


def codes(draft) -> list[str]:  # type: ignore[no-untyped-def]
    return [w.code for w in draft.warnings]


# -- strategies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auto", common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC),
        ("AUTOMATIC", common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC),
        ("domain", common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN),
        ("by-domain", common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN),
        ("data", common_pb2.DECOMPOSITION_STRATEGY_BY_DATA),
        ("by_data", common_pb2.DECOMPOSITION_STRATEGY_BY_DATA),
        (" stage ", common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE),
        ("none", common_pb2.DECOMPOSITION_STRATEGY_NONE),
        ("single", common_pb2.DECOMPOSITION_STRATEGY_NONE),
        ("DECOMPOSITION_STRATEGY_BY_STAGE", common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE),
    ],
)
def test_parse_strategy_aliases(text: str, expected: int) -> None:
    assert parse_strategy(text) == expected


def test_unknown_strategy_is_refused_not_silently_auto() -> None:
    with pytest.raises(UnknownStrategyError, match="'fastest'.*auto, domain, data, stage, none"):
        parse_strategy("fastest")
    # Usable as an argparse type (ValueError) and maps to INVALID_ARGUMENT.
    assert issubclass(UnknownStrategyError, ValueError)
    assert issubclass(UnknownStrategyError, InvalidArgument)


def test_strategy_labels_round_trip() -> None:
    for label in ("auto", "domain", "data", "stage", "none"):
        assert strategy_label(parse_strategy(label)) == label


# -- the prompt ----------------------------------------------------------------


def test_prompt_is_the_seed_prompt_with_needs_worktree() -> None:
    prompt = build_decomposition_prompt(TASK, common_pb2.DECOMPOSITION_STRATEGY_BY_DATA, 7)
    assert prompt.startswith(
        "You are a task orchestrator. Your job is to decompose complex tasks into parallelizable subtasks.\n\n"
        f"TASK: {TASK}\n\n"
        "STRATEGY: Decompose the task by data partition (e.g., different files, sections, or datasets).\n\n"
        "CONSTRAINTS:\n- Maximum 7 subtasks\n"
    )
    assert '"dependencies": ["id-of-dependency-1"],' in prompt
    assert '"needs_worktree": true' in prompt
    assert prompt.endswith("Decompose the task now:")


def test_prompt_strategy_sentences() -> None:
    auto = build_decomposition_prompt(TASK, common_pb2.DECOMPOSITION_STRATEGY_UNSPECIFIED, 100)
    assert (
        "STRATEGY: Analyze the task and determine the optimal way to decompose it into parallel subtasks."
        in auto
    )
    domain = build_decomposition_prompt(TASK, common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN, 100)
    assert "by domain expertise (e.g., research, coding, analysis, verification)" in domain
    stage = build_decomposition_prompt(TASK, common_pb2.DECOMPOSITION_STRATEGY_BY_STAGE, 100)
    assert "by workflow stages (e.g., gather, process, synthesize)" in stage
    with pytest.raises(InvalidArgument):
        build_decomposition_prompt(TASK, common_pb2.DECOMPOSITION_STRATEGY_NONE, 100)


@pytest.mark.parametrize(
    ("model", "temperature"),
    [
        ("moonshotai/kimi-k2.5", 1.0),
        ("zai/GLM-5", 1.0),
        ("minimax/MiniMax-M2", 1.0),
        ("openai/gpt-4o", 0.7),
    ],
)
def test_temperature_rule(model: str, temperature: float) -> None:
    assert decomposition_temperature(model) == temperature


# -- JSON extraction -------------------------------------------------------------

CORPUS_OK = {
    "fenced with prose": """Sure! Here is the plan:

```json
{"subtasks": [{"name": "Scan", "instruction": "List modules"},
              {"name": "Annotate", "instruction": "Add hints", "dependencies": ["Scan"]}]}
```
Let me know if you need anything else.""",
    "plain fence": '```\n{"subtasks": [{"name": "Scan", "instruction": "List modules"}]}\n```',
    "prose around raw braces": 'I think {this} is best: {"subtasks": [{"name": "Scan", "instruction": "List modules"}]} done.',
    "trailing commas and comments": """{
  // the plan
  "subtasks": [
    {"name": "Scan", "instruction": "List modules, carefully",},
    {"name": "Annotate", "instruction": "Add hints", "dependencies": ["Scan",],},
  ],
}""",
    "unclosed fence": '```json\n{"subtasks": [{"name": "Scan", "instruction": "List modules"}]}',
    "bare list": '[{"name": "Scan", "instruction": "List modules"}]',
    "other key": '{"tasks": [{"title": "Scan", "description": "List modules"}]}',
}


@pytest.mark.parametrize("case", sorted(CORPUS_OK))
def test_messy_outputs_parse(case: str) -> None:
    draft = plan_from_model_output(CORPUS_OK[case], TASK)
    assert draft.source == common_pb2.PLAN_SOURCE_MODEL, draft.warnings
    assert names(draft)[0] == "Scan"
    assert draft.subtasks[0].instruction.startswith("List modules")
    assert "decomposition_fallback" not in codes(draft)


def test_trailing_commas_inside_strings_are_kept() -> None:
    value = extract_plan_json('{"subtasks": [{"name": "a,]", "instruction": "keep ,} this",},]}')
    assert value["subtasks"][0] == {"name": "a,]", "instruction": "keep ,} this"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty response"),
        ("   \n ", "empty response"),
        ("I cannot help with decomposing this task.", "no JSON object"),
        ('{"subtasks": [{"name": "a", "instruction": ', "not valid JSON"),
        ('{"plan_name": "x", "answer": 42}', 'no "subtasks" list'),
    ],
)
def test_unusable_outputs_raise_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(DecompositionParseError, match=why):
        extract_plan_json(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "total garbage ]]} {{{",
        "No JSON here at all, sorry.",
        '{"subtasks": []}',
        '{"subtasks": [42, null, {"priority": 3}]}',
        '```json\n{"subtasks": [{"name": "x" "instruction": "y"}]}\n```',
    ],
)
def test_garbage_falls_back_to_one_subtask_with_a_warning(text: str) -> None:
    draft = plan_from_model_output(text, TASK)
    assert draft.source == common_pb2.PLAN_SOURCE_SINGLE
    assert names(draft) == [MAIN_TASK_NAME]
    assert draft.subtasks[0].instruction == TASK
    fallback = [w for w in draft.warnings if w.code == "decomposition_fallback"]
    assert len(fallback) == 1
    assert "single subtask" in fallback[0].message
    assert fallback[0].subtask_id == draft.subtasks[0].id


def test_fallback_warning_says_exactly_why() -> None:
    draft = plan_from_model_output('{"subtasks": [{"name": "a", "instruction": "b"', TASK)
    (warning,) = draft.warnings
    assert "not valid JSON" in warning.message and "line 1" in warning.message


# -- fields, names and ids -----------------------------------------------------------


def test_missing_fields_get_defaults_or_are_reported() -> None:
    text = """{"subtasks": [
      {"name": "Only a name"},
      {"instruction": "No name here", "priority": "high", "needs_worktree": "false"},
      {"specialty": "nothing else"},
      "Write the changelog",
      {"name": "Deps as text", "instruction": "x", "depends_on": "Only a name, No name here"}
    ]}"""
    draft = plan_from_model_output(text, TASK)
    assert names(draft) == ["Only a name", "Subtask 2", "Subtask 3", "Deps as text"]
    assert draft.subtasks[0].instruction == "Only a name"
    assert draft.subtasks[1].priority == 2
    assert draft.subtasks[2].instruction == "Write the changelog"
    assert codes(draft).count("instruction_missing") == 1
    assert codes(draft).count("subtask_dropped") == 1  # the specialty-only entry
    assert "#3" in next(w.message for w in draft.warnings if w.code == "subtask_dropped")
    # "No name here" is an instruction, not a name: only the first resolves.
    assert deps_by_name(draft)["Deps as text"] == ["Only a name"]
    assert any(
        w.code == "dependency_dropped" and "'No name here'" in w.message for w in draft.warnings
    )


def test_dependencies_resolve_by_id_name_case_and_position() -> None:
    text = """{"subtasks": [
      {"id": "scan", "name": "Scan the tree", "instruction": "list"},
      {"id": "t2", "name": "Types", "instruction": "hint", "dependencies": ["scan"]},
      {"name": "Tests", "instruction": "test", "dependencies": ["types", "1"]},
      {"name": "Docs", "instruction": "doc", "dependencies": [{"id": "t2"}, "Tests", 3, "Tests"]}
    ]}"""
    draft = plan_from_model_output(text, TASK)
    assert [s.id for s in draft.subtasks][:2] == ["scan", "t2"]
    assert deps_by_name(draft) == {
        "Scan the tree": [],
        "Types": ["Scan the tree"],
        "Tests": ["Types", "Scan the tree"],
        "Docs": ["Types", "Tests"],
    }
    assert draft.warnings == []


def test_unknown_dependency_is_dropped_with_a_warning_naming_it() -> None:
    draft = plan_from_model_output(
        '{"subtasks": [{"name": "A", "instruction": "a", "dependencies": ["id-of-dependency-1"]}]}',
        TASK,
    )
    (warning,) = draft.warnings
    assert warning.code == "dependency_dropped"
    assert "'A'" in warning.message and "'id-of-dependency-1'" in warning.message
    assert warning.subtask_id == draft.subtasks[0].id
    assert list(draft.subtasks[0].dependencies) == []


def test_duplicate_ids_are_renamed() -> None:
    draft = plan_from_model_output(
        '{"subtasks": [{"id": "x", "name": "A", "instruction": "a"}, {"id": "x", "name": "B", "instruction": "b"},'
        ' {"name": "C", "instruction": "c", "dependencies": ["x"]}]}',
        TASK,
    )
    assert [s.id for s in draft.subtasks][:2] == ["x", "x-2"]
    assert codes(draft) == ["duplicate_renamed"]
    assert deps_by_name(draft)["C"] == ["A"]


def test_invalid_model_ids_are_replaced_by_the_slug_of_the_name() -> None:
    draft = plan_from_model_output(
        '{"subtasks": [{"id": "has space/slash", "name": "A", "instruction": "a"}]}', TASK
    )
    assert draft.subtasks[0].id == "a"


MODEL_PLAN = """{"subtasks": [
  {"name": "Write the CLI (v2)", "instruction": "cli"},
  {"name": "Écrire les tests", "instruction": "tests", "dependencies": ["Write the CLI (v2)"]},
  {"name": "write the cli v2", "instruction": "again"},
  {"instruction": "no name"},
  {"name": "???", "instruction": "punctuation only"},
  {"id": "subtask-4", "name": "Claims an id", "instruction": "given"},
  {"name": "A very long subtask name that goes on and on well past any sensible branch length",
   "instruction": "long"}
]}"""


def test_generated_ids_are_readable_unique_and_the_same_on_every_run() -> None:
    first = plan_from_model_output(MODEL_PLAN, TASK)
    again = plan_from_model_output(MODEL_PLAN, TASK)
    ids = [s.id for s in first.subtasks]
    assert ids == [s.id for s in again.subtasks]  # deterministic: a recording replays
    assert ids == [
        "write-the-cli-v2",
        "ecrire-les-tests",
        "write-the-cli-v2-2",
        "subtask-4-2",  # "Subtask 4"'s slug is taken by the id the model gave
        "subtask-5",  # nothing usable in the name
        "subtask-4",
        "a-very-long-subtask-name-that-goes-on-and-on",
    ]
    assert all(len(i) <= 48 for i in ids)
    assert list(first.subtasks[1].dependencies) == ["write-the-cli-v2"]
    assert first.warnings == []


def test_fallback_and_strategy_none_use_a_fixed_id() -> None:
    draft = plan_from_model_output("no plan here", TASK)
    assert [s.id for s in draft.subtasks] == [MAIN_TASK_ID]
    assert single_subtask_plan(TASK).id == MAIN_TASK_ID == "main-task"


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Scan the tree", "scan-the-tree"),
        ("  --Fix: parser.py!  ", "fix-parser-py"),
        ("日本語", "fallback"),
        ("x" * 60, "x" * 48),
    ],
)
def test_subtask_slug(text: str, slug: str) -> None:
    assert subtask_slug(text, "fallback") == slug


# -- read-only classification -----------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "specialty", "hint", "read_only"),
    [
        ("Survey the API surface", "Researcher", None, True),
        (
            "Fix the failing parser test",
            "Researcher",
            False,
            False,
        ),  # keyword overrides specialty and hint
        ("Implement caching", "", False, False),
        ("Look at the logs", "Code Reviewer", True, True),  # read-only specialty beats the hint
        ("Look at the logs", "", False, True),  # model hint
        ("Look at the logs", "", True, False),
        ("Look at the logs", "", None, False),  # default: mutating
        ("Summarise findings", "Analyst", None, True),
    ],
)
def test_read_only_classifier(
    instruction: str, specialty: str, hint: bool | None, read_only: bool
) -> None:
    assert classify_read_only(instruction, specialty, hint) is read_only


def test_model_plan_gets_read_only_flags() -> None:
    draft = plan_from_model_output(
        '{"subtasks": [{"name": "R", "instruction": "Study the code", "specialty": "Researcher",'
        ' "needs_worktree": true}, {"name": "C", "instruction": "Edit main.py", "needs_worktree": false}]}',
        TASK,
    )
    assert [s.read_only for s in draft.subtasks] == [True, False]
