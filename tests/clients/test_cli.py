"""The swarmd command line against embedded services on a real repository."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from helpers import git

from swarmd.clients.cli import main

pytestmark = pytest.mark.timeout(120)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_status_list_watch_cancel(
    capsys: pytest.CaptureFixture[str], calc_repo: Path, demo_plan: Path, demo_model: str
) -> None:
    code, out, err = run_cli(
        capsys, "run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo),
        "--plain", "--request-delay-ms", "0",
    )
    assert code == 0, err
    assert "Status: SUCCESS" in out and "Critical Path:" in out and "=== Subtask" in out
    assert "subtask Command-line interface: running" in out  # plain progress lines
    swarm_id = out.split("swarm ", 1)[1].split()[0]
    # The embedded orchestrator journaled in the repository, and left nothing unconfirmed.
    with sqlite3.connect(calc_repo / ".swarmd" / "orchestrator-journal.db") as db:
        assert db.execute("SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM states)").fetchone() == (0,)

    code, out, _ = run_cli(capsys, "list", "--repo", str(calc_repo))
    assert code == 0 and swarm_id in out and "succeeded" in out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out)  # created_at, RFC 3339
    for flags, listed in (
        (["--state", "succeeded", "--oldest-first"], True),
        (["--state", "failed", "--state", "cancelled"], False),
        (["--since", "1h"], True),
        (["--until", "2000-01-01"], False),
        (["--label", "team=nobody"], False),
    ):
        code, out, err = run_cli(capsys, "list", *flags, "--repo", str(calc_repo))
        assert code == 0, err
        assert (swarm_id in out) is listed and (listed or "no swarms" in out), (flags, out)
    with pytest.raises(SystemExit):
        run_cli(capsys, "list", "--state", "bogus", "--repo", str(calc_repo))
    assert "not a swarm state" in capsys.readouterr().err

    code, out, err = run_cli(capsys, "status", swarm_id, "ops", "--repo", str(calc_repo))
    assert code == 0, err
    assert "Status: completed" in out and "Commit: " in out and "--- diff ---" in out and "+++ b/" in out
    code, out, _ = run_cli(capsys, "status", swarm_id, "ops", "--json", "--repo", str(calc_repo))
    assert json.loads(out)["subtask"]["subtask"]["id"] == "ops"
    code, _, err = run_cli(capsys, "status", swarm_id, "ghost", "--repo", str(calc_repo))
    assert code == 2 and "NOT_FOUND" in err

    code, out, _ = run_cli(capsys, "status", swarm_id, "--repo", str(calc_repo))
    assert code == 0 and "SUCCESS" in out and "docs" in out

    code, out, _ = run_cli(capsys, "watch", swarm_id, "--repo", str(calc_repo))
    assert code == 0 and "swarm succeeded" in out

    code, out, _ = run_cli(capsys, "cancel", swarm_id, "--repo", str(calc_repo))
    assert code == 0 and "already finished" in out

    code, out, _ = run_cli(capsys, "cache", "stats", "--repo", str(calc_repo))
    assert code == 0 and "entries 5" in out

    code, out, _ = run_cli(capsys, "worktrees", "list", "--repo", str(calc_repo))
    assert code == 0 and "no swarmd worktrees" in out  # merged, clean worktrees are removed

    code, out, _ = run_cli(capsys, "status", "no-such-swarm", "--repo", str(calc_repo))
    assert code == 2


def test_cache_stats_count_the_hits_of_earlier_embedded_runs(
    capsys: pytest.CaptureFixture[str], calc_repo: Path, demo_plan: Path, demo_model: str
) -> None:
    start = git(calc_repo, "rev-parse", "HEAD").strip()
    run = ("run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo), "--plain",
           "--request-delay-ms", "0")
    code, _, err = run_cli(capsys, *run)
    assert code == 0, err
    git(calc_repo, "reset", "-q", "--hard", start)
    code, out, err = run_cli(capsys, *run)
    assert code == 0, err
    assert "Cache: 5 hits, 0 misses" in out

    # Each run's services have ended; the counters are read from the repository's database.
    code, out, _ = run_cli(capsys, "cache", "stats", "--repo", str(calc_repo))
    assert code == 0 and "entries 5," in out and "hits 5, misses 5," in out and "hit rate 50%" in out


def test_dry_run_prints_plan_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], calc_repo: Path, demo_plan: Path, demo_model: str
) -> None:
    head = git(calc_repo, "rev-parse", "HEAD")
    code, out, err = run_cli(
        capsys, "run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo), "--dry-run"
    )
    assert code == 0, err
    assert "stage 0:" in out and "stage 2:" in out and "Pre-flight: valid" in out
    assert "Plan (dry run): 5 subtasks" in out
    assert "cli" in out and "<- ops, parser" in out
    assert git(calc_repo, "rev-parse", "HEAD") == head
    assert git(calc_repo, "status", "--porcelain") == ""


def test_json_output_and_failure_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, calc_repo: Path
) -> None:
    cassette = tmp_path / "short.jsonl"
    cassette.write_text('{"key": "a", "step": 1, "content": "done"}\n')  # nothing for subtask b
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "subtasks:\n  - id: a\n    instruction: say done\n    read_only: true\n"
        "  - id: b\n    instruction: say more\n    read_only: true\n"
    )
    code, out, err = run_cli(
        capsys, "run", "--plan", str(plan), "--model", f"replay/{cassette}", "--repo", str(calc_repo),
        "--json", "--request-delay-ms", "0", "--max-retries", "0",
    )
    assert code == 1, err  # the swarm failed, so the CLI exits non-zero
    swarm = json.loads(out)
    states = {s["subtask"]["id"]: s["status"] for s in swarm["subtasks"]}
    assert states == {"a": "SUB_TASK_STATUS_COMPLETED", "b": "SUB_TASK_STATUS_FAILED"}
    assert swarm["state"] == "SWARM_STATE_FAILED"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--plan", "p.yaml"], "no model"),
        (["run", "task", "--plan", "p.yaml", "-m", "a/b"], "either a TASK or --plan"),
        (["run", "--plan", "missing.yaml", "-m", "a/b"], "cannot read"),
        (["run", "--plan", "p.yaml", "-m", "a/b", "--option", "novalue"], "KEY=VALUE"),
    ],
)
def test_bad_cli_input_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWARMD_DEFAULT_MODEL", raising=False)
    (tmp_path / "p.yaml").write_text("subtasks:\n  - id: a\n    instruction: x\n")
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and needle in err


def test_plugins_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plugins", "--json")
    assert code == 0
    listing = json.loads(out)
    assert {"local", "remote"} <= {e["name"] for e in listing["executors"]}
    assert {"openai", "replay"} <= {p["name"] for p in listing["providers"]}
    assert {"read", "write", "edit", "bash", "swarm_share"} <= {t["name"] for t in listing["tools"]}
    assert all(e["distribution"].startswith("swarmd ") for e in listing["executors"])


def test_the_pidfd_child_watcher_is_put_back_after_a_command() -> None:
    """Commands reap git and tools through pidfds; a later event loop in the same process still runs subprocesses."""
    import asyncio
    import sys

    from swarmd.clients.cli.guard import run_guarded

    async def child() -> int:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(3)")
        return await proc.wait()

    assert run_guarded(child()) == 3
    assert asyncio.run(child()) == 3  # the watcher of the ended loop is not left behind
    assert run_guarded(child()) == 3
