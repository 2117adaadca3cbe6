"""`swarmd run --executor kubernetes`: the command line, its sub-agents in pods."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fake_kubelet import FakeKubelet
from helpers import GIT_ENV, git
from test_kubernetes_failures import solo

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(180)]

SWARMD = str(Path(sys.executable).with_name("swarmd"))


async def test_swarmd_run_with_the_kubernetes_executor(
    tmp_path: Path, git_repo: Path, kubelet: FakeKubelet, executor_options: dict[str, str],
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"task": "solo", "subtasks": [{"id": "solo", "instruction": "Add solo.txt"}]}))
    env = {**os.environ, **GIT_ENV, "SWARMD_EXECUTOR__OPTIONS": json.dumps(executor_options)}
    run = await asyncio.to_thread(
        subprocess.run,
        [SWARMD, "run", "--plan", str(plan), "--model", f"replay/{solo(tmp_path)}", "--executor", "kubernetes",
         "--repo", str(git_repo), "--request-delay-ms", "0", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150,
    )
    assert run.returncode == 0, run.stderr
    swarm = json.loads(run.stdout)
    assert swarm["state"] == "SWARM_STATE_SUCCEEDED"
    assert swarm["subtasks"][0]["result"]["merge"]["outcome"] == "MERGE_OUTCOME_MERGED"
    assert git(git_repo, "show", "HEAD:solo.txt") == "solo\n"
    assert len(kubelet.started) == 1
