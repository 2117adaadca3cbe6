"""An embedded ``swarmd run`` ended by a signal, a kill or a closed pipe.

Each test runs the real ``swarmd`` command in a child process against a
git repository and the fake model server (its own process), whose replies
take a moment so the run can be interrupted half-way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import git

from benchmarks.fake_model_behaviour import directive
from benchmarks.processes import FakeModelProcess

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

SWARMD = str(Path(sys.executable).with_name("swarmd"))


def env(fake: FakeModelProcess) -> dict[str, str]:
    return {
        **os.environ,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-fake",
        "SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONUNBUFFERED": "1",
    }


def write_plan(path: Path, latency: float, ids: tuple[str, ...] = ("a", "b", "c")) -> Path:
    subtasks = [
        {
            "id": sid,
            "instruction": f"Write the files of {sid}. " + directive(id=sid, steps=3, latency=latency, tool="write"),
        }
        for sid in ids
    ]
    path.write_text(yaml.safe_dump({"subtasks": subtasks}))
    return path


def swarmd(*args: str, repo: Path, fake: FakeModelProcess, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWARMD, *args, "--repo", str(repo)], capture_output=True, text=True, timeout=timeout, env=env(fake)
    )


def start_run(repo: Path, plan: Path, fake: FakeModelProcess, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SWARMD, "run", "--plan", str(plan), "--model", "openai/fake-model", "--repo", str(repo),
         "--request-delay-ms", "0", "--plain", "--no-cache", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(fake),
        start_new_session=True,
    )


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> list[str]:
    """Read stdout lines until one contains ``needle``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no {needle!r} in the output: {seen} {proc.stderr.read() if proc.stderr else ''}")


def swarm_id(lines: list[str]) -> str:
    for line in lines:
        if line.startswith("swarm ") and "submitted" in line:
            return line.split()[1]
    raise AssertionError(lines)


def status(repo: Path, fake: FakeModelProcess, sid: str) -> dict:  # type: ignore[type-arg]
    out = swarmd("status", sid, "--json", repo=repo, fake=fake)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_ends_the_run_like_ctrl_c(
    tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess, sig: signal.Signals, code: int
) -> None:
    plan = write_plan(tmp_path / "plan.yaml", latency=1.0)
    proc = start_run(git_repo, plan, fake_model)
    sid = swarm_id(wait_for_line(proc, "submitted"))
    wait_for_line(proc, ": tool write")
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert signal.Signals(sig).name in err
    swarm = status(git_repo, fake_model, sid)
    # The swarm was cancelled and says why; nothing is left running.
    assert swarm["state"] == "SWARM_STATE_CANCELLED"
    assert all(s["status"] != "SUB_TASK_STATUS_RUNNING" for s in swarm["subtasks"])
    assert git(git_repo, "status", "--porcelain") == ""


def test_a_killed_run_is_interrupted_never_resumed_by_another_command_and_resumed_on_purpose(
    tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess
) -> None:
    plan = write_plan(tmp_path / "plan.yaml", latency=0.6)
    proc = start_run(git_repo, plan, fake_model, "--max-retries", "1")
    sid = swarm_id(wait_for_line(proc, "submitted"))
    wait_for_line(proc, ": tool write")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    # Unrelated commands see it interrupted and leave it so, again and again.
    for _ in range(3):
        watch = swarmd("watch", sid, "--json", repo=git_repo, fake=fake_model)
        assert watch.returncode == 0, watch.stderr
        assert "swarm_resumed" not in watch.stdout
        assert status(git_repo, fake_model, sid)["state"] == "SWARM_STATE_INTERRUPTED"
    listing = swarmd("list", repo=git_repo, fake=fake_model)
    assert "interrupted" in listing.stdout

    resumed = swarmd("resume", sid, "--json", repo=git_repo, fake=fake_model, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    swarm = json.loads(resumed.stdout)
    assert swarm["state"] == "SWARM_STATE_SUCCEEDED"
    # The retry budget (--max-retries 1: two attempts) holds across the crash.
    assert all(s.get("attempt", 0) <= 2 for s in swarm["subtasks"]), swarm["subtasks"]
    tree = git(git_repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    for sub in ("a", "b", "c"):
        assert f"bench/{sub}/step2-0.txt" in tree

    # Resuming a finished swarm is refused, with the reason.
    again = swarmd("resume", sid, repo=git_repo, fake=fake_model)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def test_cancel_ends_an_interrupted_swarm_and_says_so(
    tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess
) -> None:
    plan = write_plan(tmp_path / "plan.yaml", latency=1.0)
    proc = start_run(git_repo, plan, fake_model)
    sid = swarm_id(wait_for_line(proc, "submitted"))
    wait_for_line(proc, ": tool write")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    cancel = swarmd("cancel", sid, repo=git_repo, fake=fake_model)
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip() == f"swarm {sid}: cancelled"
    assert status(git_repo, fake_model, sid)["state"] == "SWARM_STATE_CANCELLED"
    again = swarmd("cancel", sid, repo=git_repo, fake=fake_model)
    assert again.returncode == 0 and "(already finished)" in again.stdout
    resume = swarmd("resume", sid, repo=git_repo, fake=fake_model)
    assert resume.returncode == 2


def test_a_closed_stdout_does_not_stop_the_swarm(tmp_path: Path, git_repo: Path, fake_model: FakeModelProcess) -> None:
    plan = write_plan(tmp_path / "plan.yaml", latency=0.3)
    proc = start_run(git_repo, plan, fake_model)
    sid = swarm_id(wait_for_line(proc, "submitted"))
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head -1` exiting
    _out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert proc.returncode == 0, err
    swarm = status(git_repo, fake_model, sid)
    assert swarm["state"] == "SWARM_STATE_SUCCEEDED"
    assert "bench/c/step2-0.txt" in git(git_repo, "ls-tree", "-r", "--name-only", "HEAD").split()
