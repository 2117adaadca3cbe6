"""Whole swarms (orchestrator, executor, result store in one process, real gRPC)
against llama-cpp-python's server: the sub-agents' tool calls go through the
function-calling chat format, usage is the server's, and a request the server
can never take fails once, permanently.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from realmodel.llama_process import LlamaServer
from realmodel.test_llama_provider import wait_for_answers

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2

# A sub-agent's prompt (system prompt and eight tool schemas) is some 2,500 tokens: a
# few seconds per call on an idle machine, minutes on a busy one.
pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(900)]


def settings_for(server: LlamaServer) -> Settings:
    settings = Settings()
    settings.executor.options = {
        "provider.base_url": server.base_url,
        "temperature": "0",
        "context_window": "4096",
        "max_output_tokens": "96",
        # Slowness is not under test: a call may queue behind another on a loaded machine.
        "call_timeout_secs": "600",
    }
    return settings


def config_for(repo: Path, **fields: object) -> common_pb2.SwarmConfig:
    return common_pb2.SwarmConfig(
        model="openai/smollm2",
        repo_path=str(repo),
        request_delay_ms=0,
        cache_enabled=False,
        **fields,  # type: ignore[arg-type]
    )


async def run_swarm(
    server: LlamaServer, tmp_path: Path, plan: common_pb2.Plan, config: common_pb2.SwarmConfig
) -> tuple[common_pb2.Swarm, list[common_pb2.SwarmEvent]]:
    async with EmbeddedSwarmd(settings_for(server), db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
        emb.orchestrator_address
    ) as client:
        reply = await client.submit(task="Look at the repository", plan=plan, config=config)
        events = [e async for e in client.watch(reply.swarm.id)]
        swarm = await client.get(reply.swarm.id)
    return swarm, events


async def test_sub_agents_make_real_tool_calls(llama_server: LlamaServer, tmp_path: Path, git_repo: Path) -> None:
    plan = common_pb2.Plan(
        subtasks=[
            # Two steps: a tool call, then a turn carrying its result back to the server.
            common_pb2.SubTask(
                id="list-files", instruction="List the files of the repository.", read_only=True, max_steps=2
            ),
            common_pb2.SubTask(id="read-readme", instruction="Read the file README.md.", read_only=True, max_steps=1),
        ]
    )
    answered = llama_server.requests_answered(200)
    # The prompts hold temporary paths, so even at temperature 0 a 135M model's choice
    # between a tool call and text could change from run to run: force the function (the
    # grammar of chatml-function-calling then makes the call). "auto" is checked with a
    # fixed prompt in test_llama_provider. One subtask at a time: the server answers one
    # request at a time anyway.
    config = config_for(git_repo, max_concurrent=1, executor_options={"provider.tool_choice": "function:list"})
    swarm, events = await run_swarm(llama_server, tmp_path, plan, config)

    by_kind: dict[str, list[common_pb2.SwarmEvent]] = {}
    for event in events:
        by_kind.setdefault(str(event.WhichOneof("kind")), []).append(event)
    called = {(e.agent_tool_call.subtask_id, e.agent_tool_call.tool_name) for e in by_kind.get("agent_tool_call", [])}
    assert called == {("list-files", "list"), ("read-readme", "list")}, [s.result.error for s in swarm.subtasks]
    # The tools ran and their results went back to the server in later turns.
    details = by_kind.get("agent_tool_call_detail", [])
    assert details and all(d.agent_tool_call_detail.tool_name for d in details)
    for state in swarm.subtasks:
        # A forced tool call every step runs into the step limit: that, and never a protocol
        # error from the server, ends each sub-agent.
        assert state.result.failure_kind == common_pb2.FAILURE_KIND_MAX_STEPS, state.result.error
        assert state.result.tool_calls == state.subtask.max_steps == state.result.steps
        assert state.result.retry_count == 0

    # Usage is the server's own count, summed per step, per subtask and per swarm.
    steps = [e.agent_step for e in by_kind.get("agent_step", [])]
    assert len(steps) == swarm.stats.total_steps - swarm.stats.orchestrator_steps
    assert wait_for_answers(llama_server, answered + len(steps), 200) == answered + len(steps)
    prompt = sum(s.usage.prompt_tokens for s in steps)
    completion = sum(s.usage.completion_tokens for s in steps)
    assert prompt > 100 * len(steps) and completion > 0
    assert sum(s.result.usage.prompt_tokens for s in swarm.subtasks) == prompt
    assert (swarm.stats.usage.prompt_tokens, swarm.stats.usage.completion_tokens) == (prompt, completion)


async def test_a_context_overflow_fails_its_subtask_once(
    llama_server: LlamaServer, tmp_path: Path, git_repo: Path
) -> None:
    plan = common_pb2.Plan(
        subtasks=[
            common_pb2.SubTask(
                id="too-long", instruction="Summarise: " + "lorem ipsum dolor sit amet " * 1500, read_only=True
            )
        ]
    )
    before_400 = llama_server.requests_answered(400)
    # The executor thinks the model's window is large, so swarmd sends it all; the server refuses.
    settings_window = config_for(git_repo, executor_options={"context_window": "1000000"})
    swarm, _events = await run_swarm(llama_server, tmp_path, plan, settings_window)
    [state] = swarm.subtasks
    assert state.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert state.result.failure_kind == common_pb2.FAILURE_KIND_PERMANENT
    assert "HTTP 400" in state.result.error and "context" in state.result.error
    assert state.result.retry_count == 0 and swarm.stats.retries == 0
    assert wait_for_answers(llama_server, before_400 + 1, 400) == before_400 + 1
