"""Per-swarm executor options are client input: operator settings are refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.retry import resumed_first_attempt
from swarmd.v1 import orchestrator_pb2


def config(repo: Path, **options: str):  # type: ignore[no-untyped-def]
    return fast_config(repo_path=str(repo), executor_options=options)


@pytest.mark.parametrize(
    "options",
    [
        {"provider.base_url": "http://127.0.0.1:1/v1"},
        {"provider.cassette_dir": "/etc"},
        {"remote_address": "127.0.0.1:1"},
        {"remote_executor": "local"},
        {"price_prompt_per_mtok": "0.0001"},
        {"provider.api_key": "sk-mine"},
    ],
)
async def test_operator_settings_are_refused(tmp_path: Path, options: dict[str, str]) -> None:
    async with serve_swarm_services(tmp_path) as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=config(tmp_path, **options))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    name = next(iter(options))
    assert f"{name!r} is an operator setting" in (info.value.details() or "")


@pytest.mark.parametrize(
    "where", ["/tmp/anywhere.jsonl", "../outside.jsonl", ".swarmd/../../x.jsonl", ""]
)
async def test_record_paths_outside_the_state_dir_are_refused(tmp_path: Path, where: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    async with serve_swarm_services(tmp_path) as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=config(repo, record=where))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "outside the repository's .swarmd/ directory" in (info.value.details() or "")


async def test_a_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (repo / ".swarmd").symlink_to(tmp_path / "elsewhere")
    async with serve_swarm_services(tmp_path) as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=config(repo, record="run.jsonl"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_relative_record_paths_land_in_the_state_dir(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    async with serve_swarm_services(tmp_path) as services:
        reply = await services.submit(
            plan=plan(subtask("a")), config=config(repo, record="run.jsonl", temperature="0")
        )
        swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.config.executor_options["record"] == str(repo.resolve() / ".swarmd" / "run.jsonl")


async def test_the_operator_may_allow_more_options(tmp_path: Path) -> None:
    settings = {"client_executor_options": ["provider.base_url"]}
    async with serve_swarm_services(tmp_path, orchestrator_settings=settings) as services:
        reply = await services.submit(
            plan=plan(subtask("a")), config=config(tmp_path, **{"provider.base_url": "http://h/v1"})
        )
        await wait_terminal(services, reply.swarm.id)


@pytest.mark.parametrize(
    ("started", "max_retries", "expected"),
    [(0, 3, (1, 0)), (1, 3, (2, 1)), (3, 3, (4, 3)), (4, 3, (4, 3)), (7, 3, (4, 3)), (2, 0, (1, 0))],
)
def test_a_resumed_subtask_stays_within_its_retry_budget(
    started: int, max_retries: int, expected: tuple[int, int]
) -> None:
    assert resumed_first_attempt(started, max_retries) == expected


async def test_the_allowlist_can_be_per_tenant(tmp_path: Path) -> None:
    settings = {"tenant_executor_options": {"team-a": ["provider.base_url"]}}
    async with serve_swarm_services(tmp_path, orchestrator_settings=settings) as services:
        request = orchestrator_pb2.SubmitSwarmRequest(
            plan=plan(subtask("a")), config=config(tmp_path, **{"provider.base_url": "http://h/v1"})
        )
        reply = await services.orchestrator.submit(request, tenant="team-a")
        await wait_terminal(services, reply.swarm.id)
        for other in ("team-b", ""):
            with pytest.raises(InvalidArgument, match="provider.base_url.*operator setting"):
                await services.orchestrator.submit(request, tenant=other)
