"""The fuzzed-message memory profile runs and reports, allocation trace included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_fuzz_rss_prints_rss_and_the_growth_of_each_service(tmp_path: Path) -> None:
    snaps = tmp_path / "snaps"
    run = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.fuzz_rss", "--messages", "60", "--every", "30",
            "--rounds", "2", "--settle", "0.5", "--concurrency", "4", "--tracemalloc", str(snaps),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=170, check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "result-store" in out and "orchestrator" in out and "(after round 2)" in out
    assert "replies: " in out and "swarms planning or running at the end:" in out
    for service in ("result-store", "executor", "orchestrator"):
        assert f"{service}: round 1 -> round 2" in out
        assert (snaps / f"{service}-round1.tracemalloc").exists()
        assert (snaps / f"{service}-round2.tracemalloc").exists()
