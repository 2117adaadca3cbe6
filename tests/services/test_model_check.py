"""A swarm certain to fail is refused at submission: the model string, and
the provider as the executor service's sub-agents would create it
(ExecutorService.CheckModel, over real gRPC)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask

from swarmd.plugins import model_spec_problem
from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings
from swarmd.services.executor import build_executor
from swarmd.v1 import executor_pb2, executor_pb2_grpc


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "no model given"),
        ("  ", "no model given"),
        ("gpt-4o", "'gpt-4o' names no provider"),
        ("/gpt-4o", "'/gpt-4o' names no provider"),
        ("openai/", "'openai/' names no model after the provider 'openai'"),
        ("openai/gpt-4o", ""),
        ("openrouter/openai/gpt-5", ""),
    ],
)
def test_model_spec_problem(spec: str, needle: str) -> None:
    problem = model_spec_problem(spec)
    assert (needle in problem) if needle else problem == ""


@pytest.fixture
async def executor_stub(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An executor service with the built-in providers and no openai one."""
    plugins = load_plugins(
        env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": "builtin-tools,kubernetes,remote,openai"}
    )
    settings = ExecutorSettings(grace_period_secs=0, options={"provider.cassette_dir": str(tmp_path)})
    host = ServiceHost("executor", settings)
    await build_executor(host, settings, plugins)
    await host.start()
    async with grpc.aio.insecure_channel(host.address) as channel:
        yield executor_pb2_grpc.ExecutorServiceStub(channel)
    await host.stop(grace=0)


async def check(stub, model: str, **options: str) -> executor_pb2.CheckModelResponse:  # type: ignore[no-untyped-def]
    return await stub.CheckModel(  # type: ignore[no-any-return]
        executor_pb2.CheckModelRequest(model=model, executor_options=options), timeout=10
    )


async def test_check_model_rpc(executor_stub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "here.jsonl").write_text('{"key": "a", "step": 1, "content": "done"}\n')
    ok = await check(executor_stub, "replay/here.jsonl")  # found through the service's cassette_dir
    assert ok.problem == "" and "replay" in ok.providers and "openai" not in ok.providers

    reply = await check(executor_stub, "openai/gpt-4o")  # loaded in the orchestrator, not here
    assert "unknown model provider 'openai'" in reply.problem and "replay" in reply.problem
    assert "does not exist" in (await check(executor_stub, "replay/missing.jsonl")).problem
    assert "names no provider" in (await check(executor_stub, "gpt-4o")).problem
    assert "names no model" in (await check(executor_stub, "replay/")).problem
    reply = await check(executor_stub, "replay/here.jsonl", **{"provider.api_key": "sk-x"})
    assert "may only be set in the executor service's settings" in reply.problem
    assert "must be positive" in (await check(executor_stub, "replay/here.jsonl", call_timeout_secs="0")).problem

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(executor_stub, "replay/" + "x" * 2000)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with serve_swarm_services(tmp_path) as served:
        yield served


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("gpt-4o", "config.model: model 'gpt-4o' names no provider"),
        ("openai/", "config.model: model 'openai/' names no model after the provider"),
        ("nosuch/model", "config.model: unknown model provider 'nosuch'"),
        ("replay/missing.jsonl", "missing.jsonl does not exist (checked by the executor service at"),
    ],
)
async def test_a_plan_whose_model_cannot_work_is_refused_before_anything_runs(
    services, model: str, needle: str, dry_run: bool
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.submit(plan=plan(subtask("a")), config=fast_config(model=model), dry_run=dry_run)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.details()
    assert JOURNAL.attempts == []
