"""A swarm that names no executor runs on the executor service's default.

The default is set three ways: ``SWARMD_EXECUTOR__DEFAULT_EXECUTOR``, the
``executor.default_executor`` field of a config file, and
``swarmd serve executor --default-executor``. Each test sets it to the
built-in ``remote`` executor without a ``remote_address`` option, so a
subtask that really runs on the default fails with the remote executor's
own error, and one that ran on ``local`` instead would succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_separate_processes import SWARMD, start, stop

from swarmd.clients.cli import main

pytestmark = pytest.mark.timeout(120)

REMOTE_ERROR = "remote executor has no remote_address option"


@pytest.fixture
def one_step(tmp_path: Path) -> tuple[Path, str]:
    """A read-only one-subtask plan and its cassette."""
    plan = tmp_path / "plan.yaml"
    plan.write_text("subtasks:\n  - id: a\n    instruction: say done\n    read_only: true\n")
    cassette = tmp_path / "one.jsonl"
    cassette.write_text('{"key": "a", "step": 1, "content": "done"}\n')
    return plan, f"replay/{cassette}"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    main(["run", *args, "--json", "--request-delay-ms", "0", "--max-retries", "0"])
    out = capsys.readouterr().out
    return json.loads(out)  # type: ignore[no-any-return]


def subtask_error(swarm: dict) -> str:  # type: ignore[type-arg]
    (state,) = swarm["subtasks"]
    return str(state["result"].get("error", ""))


def test_environment_variable_sets_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, calc_repo: Path, one_step: tuple[Path, str]
) -> None:
    plan, model = one_step
    monkeypatch.setenv("SWARMD_EXECUTOR__DEFAULT_EXECUTOR", "remote")
    swarm = run_json(capsys, "--plan", str(plan), "--model", model, "--repo", str(calc_repo))
    assert swarm["state"] == "SWARM_STATE_FAILED"
    assert REMOTE_ERROR in subtask_error(swarm)
    # A swarm that names its executor still gets it.
    swarm = run_json(capsys, "--plan", str(plan), "--model", model, "--repo", str(calc_repo), "--executor", "local")
    assert swarm["state"] == "SWARM_STATE_SUCCEEDED", subtask_error(swarm)


def test_config_file_sets_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calc_repo: Path,
    one_step: tuple[Path, str],
) -> None:
    plan, model = one_step
    monkeypatch.delenv("SWARMD_EXECUTOR__DEFAULT_EXECUTOR", raising=False)
    settings = tmp_path / "swarmd.yaml"
    settings.write_text("executor:\n  default_executor: remote\n")
    swarm = run_json(capsys, "--plan", str(plan), "--model", model, "--repo", str(calc_repo), "--config", str(settings))
    assert swarm["state"] == "SWARM_STATE_FAILED"
    assert REMOTE_ERROR in subtask_error(swarm)


def test_serve_executor_flag_sets_the_default(tmp_path: Path, calc_repo: Path, one_step: tuple[Path, str]) -> None:
    plan, model = one_step
    procs = []
    try:
        store, store_addr = start("result-store", "--db", str(tmp_path / "store.db"), cwd=tmp_path)
        procs.append(store)
        executor, executor_addr = start("executor", "--default-executor", "remote", cwd=tmp_path)
        procs.append(executor)
        orch, orch_addr = start("orchestrator", "--result-store", store_addr, "--executor", executor_addr, cwd=tmp_path)
        procs.append(orch)
        run = subprocess.run(
            [SWARMD, "run", "--plan", str(plan), "--model", model, "--repo", str(calc_repo),
             "--orchestrator", orch_addr, "--request-delay-ms", "0", "--max-retries", "0", "--json"],
            capture_output=True, text=True, timeout=90, env={**os.environ},
        )
        swarm = json.loads(run.stdout)
        assert run.returncode == 1 and swarm["state"] == "SWARM_STATE_FAILED", run.stderr
        assert REMOTE_ERROR in subtask_error(swarm)
    finally:
        for proc in reversed(procs):
            stop(proc)
