"""The collapse controller chosen in a plan file (`health_check`, `collapse`) and
checked at submission."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarmd.clients.cli import main
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.plan_files import parse_plan
from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.collapse.config import choose_collapse, collapse_problems
from swarmd.services.orchestrator.swarm_config import effective_config
from swarmd.v1 import common_pb2

SUBTASKS = [{"id": "a", "instruction": "Do a."}]


def test_health_check_short_form_enables_one_command_check() -> None:
    plan, _ = parse_plan({"health_check": {"command": "python -m pytest -x -q"}, "subtasks": SUBTASKS})
    assert plan.collapse.enabled
    assert [(c.name, dict(c.options)) for c in plan.collapse.checks] == [
        ("command", {"command": "python -m pytest -x -q"})
    ]


def test_collapse_long_form() -> None:
    plan, _ = parse_plan(
        {
            "collapse": {
                "checks": [{"command": "make"}, {"name": "python-compile"}],
                "interval_secs": 0.5,
                "warmup_secs": 2,
                "max_consecutive_failures": 4,
                "check_timeout_secs": 60,
                "soft_prune": True,
            },
            "subtasks": SUBTASKS,
        }
    )
    c = plan.collapse
    assert [x.name for x in c.checks] == ["command", "python-compile"]
    assert (c.interval_ms, c.warmup_ms, c.max_consecutive_failures, c.check_timeout_ms, c.soft_prune) == (
        500, 2000, 4, 60_000, True,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"collapse": {"checks": "pytest"}}, "collapse.checks must be a list"),
        ({"collapse": {"interval": 5}}, "unknown field(s): interval"),
        ({"collapse": {"warmup_secs": -1}}, "warmup_secs must be a number"),
        ({"collapse": {"max_consecutive_failures": 0}}, "between 1 and 1000"),
        ({"health_check": "pytest"}, "health_check must be a mapping"),
        ({"health_check": {"cmd": "x"}}, "unknown field(s): cmd"),
        ({"health_check": {"command": "x"}, "collapse": {}}, "not both"),
    ],
)
def test_bad_collapse_settings_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(SwarmdClientError) as err:
        parse_plan({**data, "subtasks": SUBTASKS}, "plan.yaml")
    assert message in str(err.value) and "plan.yaml" in str(err.value)


def test_submission_refuses_nonsense_and_takes_the_plans_choice() -> None:
    bad = common_pb2.CollapseConfig(enabled=True, interval_ms=-1, checks=[common_pb2.HealthCheckSpec(name="command")])
    problems = collapse_problems(bad)
    assert any("interval_ms" in p for p in problems) and any("needs a `command` option" in p for p in problems)
    with pytest.raises(InvalidArgument, match="collapse.interval_ms"):
        effective_config(common_pb2.SwarmConfig(collapse=bad))

    plan = common_pb2.Plan(collapse=common_pb2.CollapseConfig(enabled=True, checks=[common_pb2.HealthCheckSpec(name="none")]))
    config = effective_config(common_pb2.SwarmConfig())
    choose_collapse(config, plan)
    assert config.collapse.enabled and config.collapse.checks[0].name == "none"
    # A swarm whose config enables the controller keeps its own settings.
    own = effective_config(common_pb2.SwarmConfig(collapse=common_pb2.CollapseConfig(enabled=True)))
    choose_collapse(own, plan)
    assert not own.collapse.checks
    with pytest.raises(InvalidArgument, match="plan.collapse"):
        choose_collapse(effective_config(common_pb2.SwarmConfig()), common_pb2.Plan(collapse=bad))


def test_cli_flags_and_the_plan_file_reach_the_swarms_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, calc_repo: Path, demo_model: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "health_check: {command: python -m pytest -x -q}\nsubtasks:\n  - id: a\n    instruction: Write a.py.\n"
    )
    base = ["run", "--plan", str(plan), "--model", demo_model, "--repo", str(calc_repo), "--dry-run", "--json"]

    def collapse_of(*extra: str) -> dict[str, object]:
        code = main([*base, *extra])
        out = capsys.readouterr().out
        assert code == 0, out
        return json.loads(out)["config"]["collapse"]  # type: ignore[no-any-return]

    assert collapse_of() == {"enabled": True, "checks": [{"name": "command", "options": {"command": "python -m pytest -x -q"}}]}
    flags = collapse_of("--health-check", "make test", "--collapse-check", "python-compile")
    assert [c["name"] for c in flags["checks"]] == ["command", "python-compile"]  # type: ignore[index]


def test_the_repository_default_applies_after_flags_and_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, calc_repo: Path, demo_model: str
) -> None:
    (calc_repo / ".swarmd").mkdir(exist_ok=True)
    (calc_repo / ".swarmd" / "settings.yaml").write_text("collapse: {checks: [{name: python-compile}], warmup_secs: 10}\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text("subtasks:\n  - id: a\n    instruction: Write a.py.\n")
    chosen = tmp_path / "chosen.yaml"
    chosen.write_text("health_check: {command: make}\nsubtasks:\n  - id: a\n    instruction: Write a.py.\n")

    def collapse_of(plan: Path, *extra: str) -> dict[str, object]:
        code = main(["run", "--plan", str(plan), "--model", demo_model, "--repo", str(calc_repo), "--dry-run", "--json", *extra])
        out = capsys.readouterr().out
        assert code == 0, out
        return json.loads(out)["config"]["collapse"]  # type: ignore[no-any-return]

    assert collapse_of(plain)["checks"] == [{"name": "python-compile"}]
    assert collapse_of(plain)["warmup_ms"] in ("10000", 10000)
    assert collapse_of(chosen)["checks"] == [{"name": "command", "options": {"command": "make"}}]
    assert collapse_of(plain, "--collapse-check", "none")["checks"] == [{"name": "none"}]

    (calc_repo / ".swarmd" / "settings.yaml").write_text("colapse: {}\n")
    assert main(["run", "--plan", str(plain), "--model", demo_model, "--repo", str(calc_repo), "--dry-run"]) != 0
    err = capsys.readouterr().err
    assert "settings file" in err and "unknown key(s): colapse" in err
