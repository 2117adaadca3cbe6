"""docs/plugin-reference.md is generated from the docstrings and up to date,
and everything it documents has a docstring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_plugin_reference.py"


def test_the_reference_is_up_to_date() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_a_stale_reference_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "plugin-reference.md"
    stale.write_text("# out of date\n")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(stale)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and "is stale" in run.stderr


def test_every_documented_object_has_a_docstring() -> None:
    text = (ROOT / "docs" / "plugin-reference.md").read_text()
    assert "*(undocumented)*" not in text
    for hook in ("swarmd_register_executors", "swarmd_register_providers", "swarmd_register_tools", "swarmd_register_health_checks"):
        assert f"### hook `{hook}(registry" in text
    assert "### tool `bash`" in text and "### tool `swarm_share`" in text
