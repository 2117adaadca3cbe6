"""swarmd run with third-party plugins named in SWARMD_PLUGINS, with the
built-in local executor blocked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from swarmd.clients.cli import main

pytestmark = pytest.mark.timeout(120)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


def test_an_embedded_run_on_another_executor_with_local_blocked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, git_repo: Path
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("SWARMD_PLUGINS", "swarmd_example_executor,swarmd_example_provider")
    monkeypatch.setenv("SWARMD_BLOCK_PLUGINS", "local")
    try:
        code = main(["run", "say hello", "--repo", str(git_repo), "--model", "echo/any", "--executor", "quota", "--plain"])
    finally:
        for name in ("swarmd_example_executor", "swarmd_example_provider"):
            sys.modules.pop(name, None)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Status: SUCCESS" in captured.out and "echo: " in captured.out
