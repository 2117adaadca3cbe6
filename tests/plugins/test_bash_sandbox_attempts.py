"""The sandbox as a whole attempt meets it: through the ``local`` executor with
a replayed model, real tools and a real git worktree."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import swarmd.plugins.executors.local as local_mod
import swarmd.plugins.providers.replay as replay_mod
import swarmd.plugins.tools as tools_mod
from swarmd.plugins import ExecutorContext
from swarmd.plugins.executors.local import LocalExecutor
from swarmd.plugins.manager import Plugins, load_plugins
from swarmd.plugins.sandbox import probe
from swarmd.v1 import common_pb2, executor_pb2

pytestmark = pytest.mark.timeout(60)

BLOCK = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins([replay_mod, tools_mod, local_mod], env=BLOCK)


def model(path: Path, command: str) -> str:
    steps = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
        {"content": "done"},
    ]
    with path.open("w") as f:
        for n, step in enumerate(steps, start=1):
            f.write(json.dumps({"key": "t1", "step": n, **step}) + "\n")
    return f"replay/{path}"


async def run(plugins: Plugins, repo: Path, model_ref: str, **options: str) -> tuple[list[Any], Any]:
    request = executor_pb2.ExecuteSubTaskRequest(
        swarm_id="swarm1",
        subtask=common_pb2.SubTask(id="t1", name="t1", instruction="work"),
        config=common_pb2.SwarmConfig(model=model_ref, executor_options=options),
        attempt=1,
        workspace=executor_pb2.Workspace(repo_path=str(repo), worktree=True, auto_merge=True),
    )
    events, result = [], None
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        async for message in executor.submit(request):
            if message.HasField("event"):
                events.append(message.event)
            else:
                result = message.result
    assert result is not None
    return events, result


def warnings(events: list[Any]) -> list[Any]:
    return [e.warning for e in events if e.WhichOneof("kind") == "warning"]


async def test_unconfined_bash_is_announced(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    ref = model(tmp_path / "c.jsonl", "echo made > made.txt")
    events, result = await run(plugins, git_repo, ref, **{"bash.bwrap": "/nonexistent/bwrap"})
    assert result.status == common_pb2.SUB_TASK_STATUS_COMPLETED, result.error
    (warning,) = warnings(events)
    assert warning.code == "bash_unconfined" and warning.subtask_id == "t1"
    assert "unconfined" in warning.message and "bash.sandbox=on" in warning.message
    # Switched off on purpose: no warning.
    events, result = await run(plugins, git_repo, model(tmp_path / "d.jsonl", "true"), **{"bash.sandbox": "off"})
    assert result.status == common_pb2.SUB_TASK_STATUS_COMPLETED and not warnings(events)


async def test_required_sandbox_that_cannot_run_fails_the_attempt(
    plugins: Plugins, git_repo: Path, tmp_path: Path
) -> None:
    ref = model(tmp_path / "c.jsonl", "echo made > made.txt")
    _, result = await run(plugins, git_repo, ref, **{"bash.sandbox": "on", "bash.bwrap": "/nonexistent/bwrap"})
    assert result.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert "bash.sandbox=on" in result.error and result.tool_calls == 0


async def test_default_attempt_is_confined(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    why = probe()
    if why is not None:
        if os.environ.get("SWARMD_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"the bash sandbox is required here but cannot run: {why}")
        pytest.skip(f"no sandbox here: {why}")
    outside = Path("/var/tmp") / f"swarmd-escape-{os.getpid()}.txt"
    ref = model(tmp_path / "c.jsonl", f"echo made > made.txt; echo pwned > {outside}; true")
    try:
        events, result = await run(plugins, git_repo, ref)
        assert not outside.exists(), "bash wrote outside its worktree"
    finally:
        outside.unlink(missing_ok=True)
    assert result.status == common_pb2.SUB_TASK_STATUS_COMPLETED, result.error
    assert not warnings(events)
    assert result.merge.merge_commit and (git_repo / "made.txt").read_text() == "made\n"
