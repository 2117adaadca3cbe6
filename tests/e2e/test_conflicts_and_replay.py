"""Merge-back without losing work, and record-then-replay, through the whole swarm.

* Three sub-agents in a real git repository: two change different files, the
  third changes a line another one changed too. The first two merge, the
  third's conflict is reported with the file and its diff, its branch keeps
  every line it wrote, the swarm fails (a conflict is not a success, and
  ``swarmd run`` says so with its exit code), and the user's uncommitted
  edits survive every merge byte for byte.
* A swarm run against an OpenAI-compatible server in record mode, replayed
  offline from its cassette with the server gone, gives the same subtask
  results and the same repository tree.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, agent_responder
from helpers import GIT_ENV, git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

SWARMD = str(Path(sys.executable).with_name("swarmd"))

SHARED = "line 1: shared header\nline 2: original\nline 3: shared footer\n"
LEFT_PY = '"""Written by left."""\n\n\ndef left() -> str:\n    return "left"\n'
RIGHT_LINE = "line 2: right was here"
CLASH = "line 1: shared header\nline 2: clash says hello\nline 3: shared footer\nline 4: only clash wrote this\n"

# clash finishes only once left and right are both merged into main, so it
# is always the one whose merge meets the other's change to shared.txt.
WAIT_FOR_MERGES = (
    "for i in $(seq 1 300); do "
    "n=$(git log main --format=%B | grep -c -e '^Swarmd-Subtask: left$' -e '^Swarmd-Subtask: right$'); "
    '[ "$n" -ge 2 ] && echo "both merged" && exit 0; sleep 0.1; done; echo "gave up waiting"; exit 1'
)


def cassette_line(key: str, step: int, content: str, calls: list[tuple[str, dict[str, Any]]] = ()) -> str:  # type: ignore[assignment]
    obj: dict[str, Any] = {"key": key, "step": step, "content": content}
    if calls:
        obj["tool_calls"] = [{"name": name, "arguments": args} for name, args in calls]
    return json.dumps(obj)


def write_conflict_run(tmp_path: Path) -> tuple[Path, Path]:
    """The plan file and the cassette of the three-agent run."""
    plan = {
        "task": "Three agents on one repository",
        "subtasks": [
            {"id": "left", "instruction": "Add left.py with a left() function."},
            {"id": "right", "instruction": "Change line 2 of shared.txt to say right was here."},
            {"id": "clash", "instruction": "Rewrite shared.txt with your own line 2 and a fourth line."},
        ],
    }
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan))
    lines = [
        cassette_line("left", 1, "Writing left.py.", [("write", {"path": "left.py", "content": LEFT_PY})]),
        cassette_line("left", 2, "Added left.py."),
        cassette_line(
            "right",
            1,
            "Editing shared.txt.",
            [("edit", {"path": "shared.txt", "old_string": "line 2: original", "new_string": RIGHT_LINE})],
        ),
        cassette_line("right", 2, "Changed line 2 of shared.txt."),
        cassette_line("clash", 1, "Waiting for the others first.", [("bash", {"command": WAIT_FOR_MERGES})]),
        cassette_line("clash", 2, "Rewriting shared.txt.", [("write", {"path": "shared.txt", "content": CLASH})]),
        cassette_line("clash", 3, "Rewrote shared.txt."),
    ]
    cassette = tmp_path / "conflict.jsonl"
    cassette.write_text("\n".join(lines) + "\n")
    return plan_path, cassette


def swarmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWARMD, *args], cwd=cwd, capture_output=True, text=True, timeout=90, env={**os.environ, **GIT_ENV}
    )


def test_conflict_is_reported_and_no_work_is_lost(tmp_path: Path, git_repo: Path) -> None:
    repo = git_repo
    (repo / "shared.txt").write_text(SHARED)
    (repo / "config.ini").write_text("[app]\nmode = prod\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shared files")
    start = git(repo, "rev-parse", "HEAD").strip()

    # The user's uncommitted work: an unstaged edit, a staged edit, an untracked file.
    readme = b"# demo\n\nMy unfinished notes about the demo.\n"
    (repo / "README.md").write_bytes(readme)
    config = b"[app]\nmode = dev\n"
    (repo / "config.ini").write_bytes(config)
    git(repo, "add", "config.ini")
    notes = b"scratch: do not lose me\n\x00binary tail\xff\n"
    (repo / "notes.bin").write_bytes(notes)

    plan_path, cassette = write_conflict_run(tmp_path)
    run = swarmd(
        "run", "--plan", str(plan_path), "--model", f"replay/{cassette}", "--repo", str(repo),
        "--request-delay-ms", "0", "--json",
        cwd=tmp_path,
    )
    # A conflict is not a success: the swarm failed and the exit code says so.
    assert run.returncode == 1, run.stderr
    swarm = json.loads(run.stdout)
    assert swarm["state"] == "SWARM_STATE_FAILED"
    states = {s["subtask"]["id"]: s for s in swarm["subtasks"]}
    assert {k: v["status"] for k, v in states.items()} == {
        "left": "SUB_TASK_STATUS_COMPLETED",
        "right": "SUB_TASK_STATUS_COMPLETED",
        "clash": "SUB_TASK_STATUS_FAILED",
    }

    # The first two merged into main, each with its own merge commit.
    for sid in ("left", "right"):
        merge = states[sid]["result"]["merge"]
        assert merge["outcome"] == "MERGE_OUTCOME_MERGED", merge
        assert merge["target_branch"] == "main"
        assert git(repo, "merge-base", "--is-ancestor", merge["merge_commit"], "main") == ""
    assert git(repo, "show", "main:left.py") == LEFT_PY
    assert git(repo, "show", "main:shared.txt") == SHARED.replace("line 2: original", RIGHT_LINE)

    # The conflict is reported with the file name and its diff; it is not retried.
    clash = states["clash"]["result"]
    merge = clash["merge"]
    assert merge["outcome"] == "MERGE_OUTCOME_CONFLICTED"
    assert [c["path"] for c in merge["conflicts"]] == ["shared.txt"]
    diff = merge["conflicts"][0]["diff"]
    assert "<<<<<<<" in diff and ">>>>>>>" in diff
    assert RIGHT_LINE in diff and "line 2: clash says hello" in diff
    assert "shared.txt" in clash["error"] and "conflict" in clash["error"].lower()
    assert clash["failure_kind"] == "FAILURE_KIND_PERMANENT"
    assert states["clash"]["attempt"] == 1 and swarm["stats"].get("retries", 0) == 0
    assert "shared.txt" in swarm["result"]

    # No line of clash's work is lost: its branch keeps it, and main never got it.
    branch = merge["branch"]
    assert branch.startswith("swarmd/") and branch.endswith("/clash")
    assert git(repo, "rev-parse", branch).strip() == merge["commit"]
    assert git(repo, "show", f"{branch}:shared.txt") == CLASH
    assert git(repo, "merge-base", "--is-ancestor", start, branch) == ""
    assert "clash says hello" not in git(repo, "show", "main:shared.txt")
    [patch] = [a for a in clash["artifacts"] if a["artifact_type"] == "patch"]
    patch_text = base64.b64decode(patch["content"]).decode()
    assert "+line 2: clash says hello" in patch_text and "+line 4: only clash wrote this" in patch_text
    worktree = Path(clash["worktree_path"])
    assert (worktree / "shared.txt").read_text() == CLASH, "the conflicted worktree is kept as it was"
    # Nothing conflicted was left in the user's index or checkout.
    assert git(repo, "ls-files", "-u") == ""
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"

    # The user's uncommitted work survived every merge, byte for byte.
    assert (repo / "README.md").read_bytes() == readme
    assert (repo / "config.ini").read_bytes() == config
    assert (repo / "notes.bin").read_bytes() == notes
    assert git(repo, "diff", "--name-only").split() == ["README.md"]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["config.ini"]
    assert "notes.bin" in git(repo, "ls-files", "--others", "--exclude-standard").split()
    assert git(repo, "show", "main:README.md") == "# demo\n"
    assert git(repo, "show", "main:config.ini") == "[app]\nmode = prod\n"
    # The checkout of the merged files matches main.
    assert (repo / "left.py").read_text() == LEFT_PY
    assert (repo / "shared.txt").read_text() == SHARED.replace("line 2: original", RIGHT_LINE)

    # `swarmd status` (from the repository's own store) says the same.
    status = swarmd("status", swarm["id"], "--repo", str(repo), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "Status: FAILED" in status.stdout
    assert "shared.txt" in status.stdout

    # The conflicted branch is listed as holding unmerged work, and prune keeps it.
    listing = swarmd("worktrees", "list", "--repo", str(repo), cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    clash_line = next(line for line in listing.stdout.splitlines() if "/clash" in line)
    assert "has unmerged work" in clash_line
    pruned = swarmd("worktrees", "prune", "--repo", str(repo), cwd=tmp_path)
    assert pruned.returncode == 0 and "kept" in pruned.stdout and "clash" in pruned.stdout


OPS_PY = '"""Arithmetic."""\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n\n\ndef sub(a: int, b: int) -> int:\n    return a - b\n'


def recorded_agent(turn: AgentTurn) -> list[tuple[str, Any]] | None:
    """What the model does for each subtask of the recorded swarm."""
    script: dict[str, list[list[tuple[str, Any]]]] = {
        "ops": [
            [("write", {"path": "src/calc/ops.py", "content": OPS_PY})],
            [("bash", {"command": "PYTHONPATH=src python3 -c 'from calc.ops import add, sub; print(add(2, 3), sub(7, 4))'"})],
        ],
        "docs": [
            [("edit", {"path": "README.md", "old_string": "A tiny calculator.", "new_string": "A tiny calculator.\n\n## Usage\n\n    from calc.ops import add"})],
        ],
        "review": [
            [("read", {"path": "src/calc/ops.py"})],
            [("grep", {"pattern": "^def "})],
        ],
    }
    steps = script.get(turn.subtask_id, [])
    return steps[turn.turn - 1] if turn.turn <= len(steps) else None


def recorded_finish(turn: AgentTurn) -> str:
    """The final answers depend on what the tools returned, so a replay must reproduce them."""
    last = turn.tool_results[-1].strip().splitlines()[0] if turn.tool_results else ""
    if turn.subtask_id == "ops":
        return f"ops.py written; the check printed: {last}"
    if turn.subtask_id == "review":
        found = turn.tool_results[-1] if turn.tool_results else ""
        return f"review: {sum(1 for line in found.splitlines() if 'def ' in line)} functions found"
    return f"{turn.subtask_id}: done"


RECORD_PLAN = common_pb2.Plan(
    subtasks=[
        common_pb2.SubTask(id="ops", instruction="Write src/calc/ops.py with add and sub, and check it."),
        common_pb2.SubTask(id="docs", instruction="Add a usage section to README.md."),
        common_pb2.SubTask(id="review", instruction="Review ops.py.", read_only=True, dependencies=["ops"]),
    ]
)


async def run_swarm(settings: Settings, db: Path, repo: Path, model: str, **options: str) -> common_pb2.Swarm:
    async with EmbeddedSwarmd(settings, db_path=db) as emb, SwarmdClient(emb.orchestrator_address) as client:
        config = common_pb2.SwarmConfig(
            model=model, repo_path=str(repo), request_delay_ms=0, cache_enabled=False, executor_options=options
        )
        reply = await client.submit(task="Build and review the calculator", plan=RECORD_PLAN, config=config)
        async for _ in client.watch(reply.swarm.id):
            pass
        return await client.get(reply.swarm.id)


def outcome(swarm: common_pb2.Swarm) -> dict[str, tuple[Any, ...]]:
    """What must be the same in a replay: per subtask status, answer, steps, tools and merge."""
    return {
        s.subtask.id: (
            s.status,
            s.result.success,
            s.result.result,
            s.result.steps,
            s.result.tool_calls,
            s.result.merge.outcome,
            s.result.merge.files_changed,
            [a.content for a in s.result.artifacts if a.artifact_type == "patch"],
        )
        for s in swarm.subtasks
    }


async def test_record_then_replay_gives_the_same_result(tmp_path: Path, calc_repo: Path) -> None:
    twin = tmp_path / "calc-twin"
    shutil.copytree(calc_repo, twin, symlinks=True)  # the same start, in a second repository
    cassette = calc_repo / ".swarmd" / "recorded.jsonl"  # a swarm records only there

    async with FakeOpenAIServer() as server:
        server.fallback = agent_responder(recorded_agent, recorded_finish)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        recorded = await run_swarm(
            settings, tmp_path / "record.db", calc_repo, "openai/fake-model", record=str(cassette)
        )
    calls_made = server.completions
    assert recorded.state == common_pb2.SWARM_STATE_SUCCEEDED, recorded.error
    assert "ops.py written; the check printed: 5 3" in {s.result.result for s in recorded.subtasks}
    assert "review: 2 functions found" in {s.result.result for s in recorded.subtasks}

    # The cassette holds every model response, one line per (subtask, step).
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert len(lines) == calls_made == 3 + 2 + 3
    assert sorted((d["key"], d["step"]) for d in lines) == sorted(
        [("ops", 1), ("ops", 2), ("ops", 3), ("docs", 1), ("docs", 2), ("review", 1), ("review", 2), ("review", 3)]
    )
    assert all(d["request_digest"].startswith("sha256:") for d in lines)

    # Offline: the server is gone (its URL is still configured, and unused).
    replayed = await run_swarm(settings, tmp_path / "replay.db", twin, f"replay/{cassette}")
    assert server.completions == calls_made
    assert replayed.state == common_pb2.SWARM_STATE_SUCCEEDED, replayed.error

    assert outcome(replayed) == outcome(recorded)
    assert git(twin, "rev-parse", "HEAD^{tree}") == git(calc_repo, "rev-parse", "HEAD^{tree}")
    assert git(twin, "ls-tree", "-r", "HEAD") == git(calc_repo, "ls-tree", "-r", "HEAD")
    assert (twin / "src" / "calc" / "ops.py").read_text() == OPS_PY
    assert "## Usage" in (twin / "README.md").read_text()
    assert git(twin, "status", "--porcelain") == git(calc_repo, "status", "--porcelain") == ""
