"""``swarmd run`` refuses a swarm whose model cannot work, before any subtask
runs, in a dry run as in a real one (exit code 2, the problem named)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git

from swarmd.clients.cli import main

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("gpt-4o", "model 'gpt-4o' names no provider"),
        ("openai/", "names no model after the provider 'openai'"),
        ("nosuch/model", "unknown model provider 'nosuch'"),
        ("replay/missing.jsonl", "missing.jsonl does not exist"),
    ],
)
def test_unusable_model_is_refused(
    capsys: pytest.CaptureFixture[str], calc_repo: Path, demo_plan: Path, model: str, needle: str, dry_run: bool
) -> None:
    head = git(calc_repo, "rev-parse", "HEAD")
    args = ["run", "--plan", str(demo_plan), "--model", model, "--repo", str(calc_repo), "--plain"]
    code = main(args + (["--dry-run"] if dry_run else []))
    captured = capsys.readouterr()
    assert code == 2, captured.out
    assert needle in captured.err and "INVALID_ARGUMENT" in captured.err.upper().replace(" ", "_")
    assert "Pre-flight: valid" not in captured.out
    assert git(calc_repo, "rev-parse", "HEAD") == head
    assert not list((calc_repo / ".swarmd").glob("worktrees/*"))
