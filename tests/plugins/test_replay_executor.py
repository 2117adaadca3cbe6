"""Record a whole sub-agent attempt against the OpenAI-compatible server,
then replay it in another repository: same outcome, no model needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fakes.fake_openai_server import FakeOpenAIServer, reply_text, reply_tool_calls
from helpers import git

import swarmd.plugins.executors.local as local_mod
import swarmd.plugins.providers.openai as openai_mod
import swarmd.plugins.providers.replay as replay_mod
import swarmd.plugins.tools as tools_mod
from swarmd.plugins import ExecutorContext
from swarmd.plugins.executors.local import LocalExecutor
from swarmd.plugins.manager import load_plugins
from swarmd.v1 import common_pb2, executor_pb2

BLOCK = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}

def new_repo(path: Path) -> Path:
    path.mkdir()
    (path / "README.md").write_text("# demo\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        git(path, *args)
    return path


def request(model: str, repo: Path) -> executor_pb2.ExecuteSubTaskRequest:
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id="rec",
        subtask=common_pb2.SubTask(id="s1", name="greeter", instruction="add a greeting"),
        config=common_pb2.SwarmConfig(model=model),
        attempt=1,
        workspace=executor_pb2.Workspace(repo_path=str(repo), worktree=True, auto_merge=True),
    )


async def run(options: dict[str, str], model: str, repo: Path) -> Any:
    plugins = load_plugins([openai_mod, replay_mod, tools_mod, local_mod], env=BLOCK)
    async with LocalExecutor(ExecutorContext(plugins=plugins, options=options)) as executor:
        result = None
        async for message in executor.submit(request(model, repo)):
            if message.HasField("result"):
                result = message.result
        return result


async def test_record_then_replay_in_another_repository(tmp_path: Path) -> None:
    cassette = tmp_path / "cassettes" / "run.jsonl"
    first_repo = new_repo(tmp_path / "first")
    async with FakeOpenAIServer() as server:
        server.push(
            reply_tool_calls(
                [("write", {"path": "hello.py", "content": "print('hello')\n"}), ("bash", {"command": "python3 hello.py"})],
                content="Writing and running it.",
                usage=(300, 40),
            ),
            reply_text("Added hello.py; it prints hello.", usage=(400, 12)),
        )
        recorded = await run(
            {"provider.base_url": server.base_url, "record_path": str(cassette)}, "openai/fake-model", first_repo
        )
        # The worktree path is in the prompt the model saw.
        assert str(first_repo) in server.requests[0].json["messages"][0]["content"]
    assert recorded.success and recorded.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert [(line["key"], line["step"]) for line in lines] == [("s1", 1), ("s1", 2)]

    second_repo = new_repo(tmp_path / "second")
    replayed = await run({}, f"replay/{cassette}", second_repo)
    assert replayed.success, replayed.error
    for field in ("result", "steps", "tool_calls", "usage", "status"):
        assert getattr(replayed, field) == getattr(recorded, field), field
    assert replayed.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
    assert (second_repo / "hello.py").read_text() == (first_repo / "hello.py").read_text()
