"""The benchmark report: targets judged from results, the Markdown table, the chart."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.profiles import QUICK  # noqa: E402
from benchmarks.report import evaluate_targets, write_chart, write_markdown  # noqa: E402
from benchmarks.runner import RunMeasure  # noqa: E402
from benchmarks.scenarios import ScenarioResult  # noqa: E402


def _run(label: str, wall: float, **kwargs: object) -> RunMeasure:
    return RunMeasure(
        label=label, wall=wall, subtasks=100, completed=100, failed=0, model_calls=500, **kwargs
    )  # type: ignore[arg-type]


def _results() -> list[ScenarioResult]:
    mb = 2**20
    wide = ScenarioResult("a", "wide", "100 x 5", bound=5.0, sequential_estimate=500.0)
    wide.runs = [
        _run(
            "swarmd",
            5.2,
            peak_rss={"orchestrator": 70 * mb, "executor": 90 * mb, "result-store": 60 * mb},
        ),
        _run("bare asyncio", 5.0),
        _run(
            "swarmd, large repo",
            6.5,
            extra={
                "isolation_ms_p50": 300.0,
                "isolation_ms_p95": 900.0,
                "worktree_disk_peak_mb": 5000.0,
                "checkout_mb": 100.0,
                "peak_live_worktrees": 100,
            },
        ),
        _run("bare asyncio, large repo", 5.0),
    ]
    wide.runs[0].extra.update({"isolation_ms_p50": 40.0, "isolation_ms_p95": 80.0})
    layered = ScenarioResult("b", "layered DAG", "4 x 25", bound=7.0, stage_bound=16.0)
    layered.runs = [_run("swarmd", 8.0), _run("bare asyncio", 7.5)]
    zero = ScenarioResult("c", "zero latency", "1000 x 1")
    zero.runs = [
        _run("swarmd, chain", 2.0, dispatch_ms=[3.0, 4.0, 5.0]),
        _run("bare asyncio, chain", 1.5, dispatch_ms=[1.0, 2.0, 3.0]),
    ]
    limited = ScenarioResult("d", "rate limit 600/min", "x", bound=10.0)
    limited.runs = [_run("swarmd", 10.2, rate_limited=3, extra={"rate_vs_allowed": 0.97})]
    sweep = ScenarioResult("sweep", "scaling", "wide swarms", bound=2.0)
    sweep.metrics["points"] = [
        {
            "n": n,
            "bound_s": 2.0,
            "swarmd_s": 2.1 + n / 100,
            "bare_s": 2.05,
            "swarmd_ratio": (2.1 + n / 100) / 2,
            "bare_ratio": 1.025,
            "swarmd_failed": 0,
            "services_rss_mb": 200.0,
        }
        for n in (1, 10, 100)
    ]
    return [wide, layered, zero, limited, sweep]


def test_targets_are_judged_from_the_runs() -> None:
    verdicts = {t.goal: (t.measured, t.met) for t in evaluate_targets(_results())}
    small = "(a) wide, mutating with worktrees: swarmd / bare asyncio <= 1.10, small repository"
    large = (
        "(a) wide, mutating with worktrees: swarmd / bare asyncio <= 1.25, 10,240-file repository"
    )
    assert verdicts[small] == ("1.040", True)
    assert verdicts[large] == ("1.300", False)
    dag = "(b) layered DAG with worktrees: wall / critical-path bound <= 1.15"
    assert verdicts[dag] == ("1.143", True)
    iso = "(a) isolation per subtask (create + commit + merge) p50 <= {} ms, {} repository"
    assert verdicts[iso.format(50, "small")] == ("40 ms (p95 80 ms)", True)
    assert verdicts[iso.format(250, "large")][1] is False
    disk = verdicts[
        "(a) peak disk of the live worktrees of the large repository <= 2x its checkout"
    ]
    assert disk == ("5000 MB at 100 live worktrees (checkout 100 MB, 50.0x)", False)
    measured, met = verdicts["dispatch overhead <= 2 ms p50 in (c)"]
    assert met is True and measured.startswith("2.0 ms p50 added")
    assert verdicts["all services <= 250 MB RSS with 100 live mutating sub-agents (a)"][1] is True
    measured, met = verdicts[">= 95 % of the allowed rate, no failed subtask (rate limit 600/min)"]
    assert met is True and "97.0 %" in measured


def test_ratios_speedup_and_baseline_pairing() -> None:
    wide, _layered, zero, *_ = _results()
    swarmd = wide.run("swarmd")
    assert swarmd is not None
    assert wide.ratio_to_bound(swarmd) == pytest.approx(1.04)
    assert wide.speedup(swarmd) == pytest.approx(500 / 5.2)
    chain = zero.run("swarmd, chain")
    assert chain is not None and zero.vs_bare(chain) == pytest.approx(2.0 / 1.5)
    sample = _run("sequential", 10.0, extra={"sample": "2 of 100 subtasks"})
    wide.runs.append(sample)
    assert (
        wide.ratio_to_bound(sample) is None
        and wide.speedup(sample) is None
        and wide.vs_bare(sample) is None
    )


def test_markdown_and_chart_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = _results()
    assert write_chart(tmp_path / "chart.png", results)
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    write_markdown(
        tmp_path / "latest.md",
        results,
        profile=QUICK,
        facts={"CPU": "test"},
        started=dt.datetime(2030, 1, 1),
        duration=12.0,
        extras={},
        chart="chart.png",
    )
    text = (tmp_path / "latest.md").read_text()
    assert "| (a) wide | swarmd | 5.20 | 5.00 | 1.040 | 1.040 |" in text
    assert "![wall time and ratio to the bound" in text and "| CPU | test |" in text
