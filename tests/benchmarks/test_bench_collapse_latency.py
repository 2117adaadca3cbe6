"""benchmarks.collapse_latency runs end to end and prints its table."""

from __future__ import annotations

import pytest

from benchmarks.collapse_latency import main

pytestmark = pytest.mark.timeout(120)


def test_it_prints_the_latency_of_both_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--agents", "1", "--steps", "12", "--latency", "0.05", "--check", "0.3"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"no controller", "slow checks"}, out
    control, slow = rows["no controller"], rows["slow checks"]
    # Same swarm both times: the same progress events; only the second ran checks.
    assert control[2] == slow[2] and int(slow[2]) > 0
    assert control[3] == "0" and int(slow[3]) > 0
