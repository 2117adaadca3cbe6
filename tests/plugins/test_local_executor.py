"""The ``local`` executor: whole attempts with replayed models, real tools and
real git worktrees; cancellation, capacity and shutdown."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import command_running

import swarmd.plugins.executors.local as local_mod
import swarmd.plugins.providers.openai as openai_mod
import swarmd.plugins.providers.replay as replay_mod
import swarmd.plugins.tools as tools_mod
from swarmd.plugins import ExecutorContext
from swarmd.plugins.executors.local import LocalExecutor
from swarmd.plugins.manager import Plugins, load_plugins
from swarmd.v1 import common_pb2, executor_pb2

BLOCK = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins([openai_mod, replay_mod, tools_mod, local_mod], env=BLOCK)


def cassette(path: Path, key: str, *steps: dict[str, Any]) -> str:
    with path.open("a") as f:
        for n, step in enumerate(steps, start=1):
            f.write(json.dumps({"key": key, "step": n, **step}) + "\n")
    return f"replay/{path}"


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def make_request(
    model: str,
    repo: Path,
    *,
    subtask_id: str = "t1",
    name: str = "writer",
    read_only: bool = False,
    worktree: bool = False,
    base_commit: str = "",
    dependencies: list[executor_pb2.DependencyResult] | None = None,
    **config: Any,
) -> executor_pb2.ExecuteSubTaskRequest:
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id="swarm1",
        subtask=common_pb2.SubTask(
            id=subtask_id, name=name, instruction=f"do the {name} job", specialty="Coder", read_only=read_only
        ),
        config=common_pb2.SwarmConfig(model=model, **config),
        attempt=1,
        dependencies=dependencies or [],
        workspace=executor_pb2.Workspace(
            repo_path=str(repo), base_commit=base_commit, worktree=worktree, auto_merge=True
        ),
    )


async def collect(executor: LocalExecutor, request: executor_pb2.ExecuteSubTaskRequest) -> tuple[list[Any], Any]:
    events, result = [], None
    async for message in executor.submit(request):
        assert result is None, "nothing may follow the result"
        if message.HasField("event"):
            events.append(message.event)
        else:
            result = message.result
    assert result is not None
    return events, result


def kinds(events: list[common_pb2.SwarmEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


async def test_read_only_subtask(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "data.txt").write_text("the answer is 42\n")
    (repo / "AGENTS.md").write_text("Always be brief.\n")
    model = cassette(
        tmp_path / "c.jsonl",
        "reader",
        {"tool_calls": [call("grep", pattern="answer"), call("write", path="x.txt", content="no")]},
        {"content": "The answer is 42.", "usage": {"prompt_tokens": 50, "completion_tokens": 6}},
    )
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        events, result = await collect(executor, make_request(model, repo, name="reader", read_only=True))
    assert result.success and result.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert result.result == "The answer is 42."
    assert (result.steps, result.tool_calls) == (2, 2)
    assert result.subagent_id == "agent-t1" and result.usage.prompt_tokens == 50
    assert result.merge.outcome == common_pb2.MERGE_OUTCOME_NOT_APPLICABLE and result.worktree_path == ""
    assert not (repo / "x.txt").exists()  # write is not even offered
    details = [e.agent_tool_call_detail for e in events if e.HasField("agent_tool_call_detail")]
    assert details[0].success and "data.txt:1" in details[0].output_preview
    assert not details[1].success and "unknown tool 'write'" in details[1].output_preview
    assert kinds(events)[0] == "agent_started" and kinds(events)[-2:] == ["agent_output", "agent_complete"]
    started = events[0].agent_started
    assert (started.agent_name, started.specialty, started.attempt, started.executor) == ("agent-t1", "Coder", 1, "local")
    assert events[-1].agent_complete.success and events[-1].agent_complete.steps == 2


async def test_prompts_carry_dependencies_and_agents_md(plugins: Plugins, tmp_path: Path) -> None:
    from fakes.fake_openai_server import FakeOpenAIServer, reply_text

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "AGENTS.md").write_text("Use tabs.\n")
    deps = [
        executor_pb2.DependencyResult(subtask_id="d1", name="schema", result="Table users(id)", success=True),
        executor_pb2.DependencyResult(subtask_id="d2", name="api", result="", success=False, error="boom"),
    ]
    async with FakeOpenAIServer() as server:
        server.push(reply_text("ok"))
        context = ExecutorContext(plugins=plugins, options={"provider.base_url": server.base_url})
        async with LocalExecutor(context) as executor:
            _, result = await collect(
                executor, make_request("openai/m", repo, read_only=True, dependencies=deps, max_steps_per_subagent=5)
            )
        body = server.requests[0].json
    assert result.success
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert "READ-ONLY TASK" in system and "(ID: t1)" in system and "Coder specialist" in system
    assert system.endswith("PROJECT INSTRUCTIONS (from AGENTS.md):\nUse tabs.\n")
    assert "- read:" in system and "- write:" not in system and "swarm_share" not in system
    assert user.startswith("Complete this task:\n\ndo the writer job\n\nContext from prior work:\n")
    assert "--- Result from dependency schema ---\nTable users(id)" in user
    assert "--- Result from dependency api (FAILED: boom) ---\n(no output)" in user
    assert sorted(t["function"]["name"] for t in body["tools"]) == ["glob", "grep", "list", "read"]


async def test_worktree_disabled_works_in_the_repository(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    model = cassette(
        tmp_path / "c.jsonl",
        "writer",
        {"tool_calls": [call("write", path="out/result.txt", content="hello\n")]},
        {"content": "Wrote out/result.txt"},
    )
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(executor, make_request(model, repo))
    assert result.success and (repo / "out/result.txt").read_text() == "hello\n"
    assert result.merge.outcome == common_pb2.MERGE_OUTCOME_NOT_APPLICABLE


async def test_mutating_subtask_in_a_worktree_is_merged(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    base = git(git_repo, "rev-parse", "HEAD")
    model = cassette(
        tmp_path / "c.jsonl",
        "t1",
        {"tool_calls": [call("write", path="src/feature.py", content="VALUE = 1\n"), call("bash", command="git status --short")]},
        {"content": "Added src/feature.py"},
    )
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        events, result = await collect(executor, make_request(model, git_repo, worktree=True, base_commit=base))
    assert result.success, result.error
    assert result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
    assert result.merge.files_changed == 1 and result.merge.target_branch == "main"
    assert (git_repo / "src/feature.py").read_text() == "VALUE = 1\n"
    assert git(git_repo, "rev-parse", "HEAD") == result.merge.merge_commit
    assert result.worktree_path == ""  # removed after the clean merge
    patch = [a for a in result.artifacts if a.artifact_type == "patch"]
    assert patch and b"+VALUE = 1" in patch[0].content
    started = events[0].agent_started
    assert started.worktree_path and ".swarmd/worktrees/swarm1/t1" in started.worktree_path
    assert "merge_completed" in kinds(events)
    assert events[kinds(events).index("merge_completed")].merge_completed.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED


async def test_conflicting_merge_fails_and_keeps_the_work(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    base = git(git_repo, "rev-parse", "HEAD")
    # The user changes the same line after the swarm started.
    (git_repo / "README.md").write_text("# user's title\n")
    git(git_repo, "commit", "-qam", "user edit")
    model = cassette(
        tmp_path / "c.jsonl",
        "t1",
        {"tool_calls": [call("edit", path="README.md", old_string="# demo", new_string="# agent's title")]},
        {"content": "Retitled"},
    )
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(executor, make_request(model, git_repo, worktree=True, base_commit=base))
    assert not result.success
    assert result.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert result.merge.outcome == common_pb2.MERGE_OUTCOME_CONFLICTED
    assert [c.path for c in result.merge.conflicts] == ["README.md"]
    assert "Merge conflicted in README.md" in result.error
    assert (git_repo / "README.md").read_text() == "# user's title\n"
    assert result.worktree_path and (Path(result.worktree_path) / "README.md").read_text() == "# agent's title\n"
    assert git(git_repo, "rev-parse", result.merge.branch) == result.merge.commit


async def test_failed_attempt_keeps_its_worktree_work(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    model = cassette(
        tmp_path / "c.jsonl",
        "t1",
        {"tool_calls": [call("write", path="partial.txt", content="half done")]},
        {"tool_calls": [call("list")]},
    )
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(
            executor, make_request(model, git_repo, worktree=True, max_steps_per_subagent=2)
        )
    assert not result.success and result.failure_kind == common_pb2.FAILURE_KIND_MAX_STEPS
    assert result.error == "Sub-agent hit max steps (2)"
    assert (Path(result.worktree_path) / "partial.txt").read_text() == "half done"
    assert not (git_repo / "partial.txt").exists()


async def test_cancel_kills_the_running_tool_and_keeps_the_worktree(
    plugins: Plugins, git_repo: Path, tmp_path: Path
) -> None:
    model = cassette(
        tmp_path / "c.jsonl",
        "t1",
        {"tool_calls": [call("write", path="wip.txt", content="wip")]},
        {"tool_calls": [call("bash", command="sleep 60.25 & echo $! > bg.pid; wait")]},
    )
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        collecting = asyncio.create_task(collect(executor, make_request(model, git_repo, worktree=True)))
        pid_file = None
        for _ in range(200):
            await asyncio.sleep(0.05)
            found = list((git_repo / ".swarmd").rglob("bg.pid"))
            if found and found[0].read_text().strip():
                pid_file = found[0]
                break
        assert pid_file is not None
        assert executor.in_flight == 1
        assert await executor.cancel("swarm1", "t1", "user asked")
        assert await executor.cancel("swarm1", "t1", "again")  # idempotent
        events, result = await asyncio.wait_for(collecting, 10)
        assert not await executor.cancel("swarm1", "t1")
    assert result.status == common_pb2.SUB_TASK_STATUS_CANCELLED
    assert result.failure_kind == common_pb2.FAILURE_KIND_CANCELLED and not result.success
    assert "user asked" in result.error and result.steps == 2 and result.tool_calls == 2
    assert (Path(result.worktree_path) / "wip.txt").read_text() == "wip"
    # The tool returns once its process group is gone; the killed child may
    # still be a zombie waiting for PID 1 to reap it, which runs nothing.
    assert not command_running("sleep 60.25"), "the tool's child process survived the cancel"
    assert kinds(events)[-2:] == ["agent_output", "agent_complete"]
    assert events[-3].agent_error.failure_kind == common_pb2.FAILURE_KIND_CANCELLED


async def test_capacity_makes_submissions_wait(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    path = tmp_path / "c.jsonl"
    for key in ("a", "b"):
        cassette(path, key, {"tool_calls": [call("bash", command="sleep 0.5")]}, {"content": f"{key} done"})
    async with LocalExecutor(ExecutorContext(plugins=plugins, options={"capacity": "1"})) as executor:
        assert executor.capacity == 1
        started = time.monotonic()
        first = asyncio.create_task(collect(executor, make_request(f"replay/{path}", repo, subtask_id="a", name="a")))
        second = asyncio.create_task(collect(executor, make_request(f"replay/{path}", repo, subtask_id="b", name="b")))
        await asyncio.sleep(0.2)
        assert executor.in_flight == 1
        results = await asyncio.gather(first, second)
        assert time.monotonic() - started >= 1.0
    assert [r.result for _, r in results] == ["a done", "b done"]
    with pytest.raises(ValueError, match="capacity"):
        LocalExecutor(ExecutorContext(plugins=plugins, options={"capacity": "many"}))


async def test_aclose_stops_everything(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    model = cassette(tmp_path / "c.jsonl", "writer", {"tool_calls": [call("bash", command="sleep 30")]})
    executor = LocalExecutor(ExecutorContext(plugins=plugins))
    collecting = asyncio.create_task(collect(executor, make_request(model, repo)))
    for _ in range(100):
        if executor.in_flight:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    await executor.aclose()
    await executor.aclose()
    _, result = await asyncio.wait_for(collecting, 5)
    assert result.status == common_pb2.SUB_TASK_STATUS_CANCELLED and "shutting down" in result.error
    _, late = await collect(executor, make_request(model, repo))
    assert late.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT and "shutting down" in late.error


async def test_closing_the_stream_stops_the_agent(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    model = cassette(tmp_path / "c.jsonl", "writer", {"tool_calls": [call("bash", command="sleep 30")]})
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        stream = executor.submit(make_request(model, repo))
        first = await stream.__anext__()
        assert first.event.HasField("agent_started")
        assert executor.in_flight == 1
        started = time.monotonic()
        await stream.aclose()
        assert time.monotonic() - started < 5
        assert executor.in_flight == 0


@pytest.mark.parametrize(
    "model,workspace,error",
    [
        ("claude/x", True, "unknown model provider 'claude'"),
        ("replay//no/such/cassette.jsonl", True, "does not exist"),
        ("replay/x", False, "is not a directory on this executor's host"),
    ],
)
async def test_bad_requests_are_permanent_failures(
    plugins: Plugins, tmp_path: Path, model: str, workspace: bool, error: str
) -> None:
    repo = tmp_path / "repo"
    if workspace:
        repo.mkdir()
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        events, result = await collect(executor, make_request(model, repo))
    assert not result.success and result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert error in result.error
    assert kinds(events) == ["agent_started", "agent_error", "agent_output", "agent_complete"]


async def test_worktree_failure_for_a_mutating_subtask(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "plain"
    repo.mkdir()
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(executor, make_request("replay/x", repo, worktree=True))
    assert result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert result.error.startswith("Failed to create required worktree for mutating subtask:")


async def test_swarm_options_cannot_take_the_key(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    request = make_request("openai/m", repo, executor_options={"provider.api_key_env": "HOME"})
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(executor, request)
    assert "may only be set in the executor service's settings" in result.error


async def test_duplicate_submission_is_refused(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    model = cassette(tmp_path / "c.jsonl", "writer", {"tool_calls": [call("bash", command="sleep 30")]})
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        stream = executor.submit(make_request(model, repo))
        await stream.__anext__()
        _, dup = await collect(executor, make_request(model, repo))
        assert "already running" in dup.error
        await stream.aclose()


def test_registered_as_local(plugins: Plugins) -> None:
    assert plugins.executors.get("local") is LocalExecutor
    assert "replay" in plugins.providers and "openai" in plugins.providers
    assert {"read", "bash", "swarm_share"} <= set(plugins.tools.names())


def test_runtime_settings() -> None:
    from swarmd.plugins.runtime.attempt import RuntimeSettings, SettingsError

    s = RuntimeSettings.resolve(
        {"provider.base_url": "http://svc/v1", "context_window": "32000", "capacity": "2", "temperature": "0"},
        {"provider.timeout": "30", "record_path": "/tmp/r.jsonl", "max_output_tokens": "1024"},
    )
    assert s.provider_options == {"base_url": "http://svc/v1", "timeout": "30"}
    assert (s.context_window, s.max_output_tokens, s.temperature, s.record_path) == (32000, 1024, 0.0, "/tmp/r.jsonl")
    # A swarm that picks its own endpoint does not get the service's key.
    mine = RuntimeSettings.resolve({"provider.base_url": "http://svc/v1"}, {"provider.base_url": "http://evil/v1"})
    assert mine.provider_options == {"base_url": "http://evil/v1", "use_env_key": "false"}
    for bad, message in [
        ({"context_window": "lots"}, "not a valid int"),
        ({"call_timeout_secs": "0"}, "must be positive"),
        ({"provider.use_env_key": "true"}, "may only be set"),
    ]:
        with pytest.raises(SettingsError, match=message):
            RuntimeSettings.resolve({}, bad)


async def test_swarm_chosen_endpoint_gets_no_key(
    plugins: Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.fake_openai_server import FakeOpenAIServer, reply_text

    monkeypatch.setenv("OPENAI_API_KEY", "sk-service")
    repo = tmp_path / "repo"
    repo.mkdir()
    async with FakeOpenAIServer() as server:
        server.push(reply_text("a"), reply_text("b"))
        async with LocalExecutor(ExecutorContext(plugins=plugins, options={"provider.base_url": server.base_url})) as ex:
            _, ok = await collect(ex, make_request("openai/m", repo, read_only=True))
        async with LocalExecutor(ExecutorContext(plugins=plugins)) as ex:
            request = make_request(
                "openai/m", repo, read_only=True, executor_options={"provider.base_url": server.base_url}
            )
            _, also_ok = await collect(ex, request)
    assert ok.success and also_ok.success
    assert server.requests[0].headers["authorization"] == "Bearer sk-service"
    assert "authorization" not in server.requests[1].headers


async def test_cancel_while_waiting_for_a_slot(plugins: Plugins, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    path = tmp_path / "c.jsonl"
    cassette(path, "a", {"tool_calls": [call("bash", command="sleep 30")]})
    async with LocalExecutor(ExecutorContext(plugins=plugins, options={"capacity": "1"})) as executor:
        first = executor.submit(make_request(f"replay/{path}", repo, subtask_id="a", name="a"))
        await first.__anext__()
        queued = asyncio.create_task(collect(executor, make_request(f"replay/{path}", repo, subtask_id="b", name="b")))
        await asyncio.sleep(0.1)
        assert executor.in_flight == 1 and not queued.done()
        assert await executor.cancel("swarm1", "b", "not needed")
        events, result = await asyncio.wait_for(queued, 5)
        assert events == [] and result.status == common_pb2.SUB_TASK_STATUS_CANCELLED
        assert "before it started: not needed" in result.error
        await first.aclose()
