"""Speculation over real gRPC: what ClaimVariant refuses, with which code, and
the variants' models checked at submission."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.v1 import coordinator_pb2, orchestrator_pb2

pytestmark = pytest.mark.timeout(60)


async def test_claims_that_name_no_running_variant_are_refused(tmp_path: Path) -> None:
    async with serve_swarm_services(tmp_path) as services:

        async def refused(**fields: str) -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await services.coordinator.ClaimVariant(coordinator_pb2.ClaimVariantRequest(**fields), timeout=10)
            return info.value

        assert (await refused(subtask_id="a.variant-1")).code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (await refused(swarm_id="s")).code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (await refused(swarm_id="s p", subtask_id="a.variant-1")).code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_commit = await refused(swarm_id="s", subtask_id="a.variant-1", commit="HEAD~1")
        assert bad_commit.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a commit id" in bad_commit.details()
        unknown = await refused(swarm_id="nope", subtask_id="a.variant-1")
        assert unknown.code() == grpc.StatusCode.NOT_FOUND and "not running" in unknown.details()

        reply = await services.submit(plan=plan(subtask("a", hang=True)), config=fast_config())
        swarm_id = reply.swarm.id
        try:
            for sid in ("a", "a.variant-1", "b.variant-1", "a.variant-x"):
                error = await refused(swarm_id=swarm_id, subtask_id=sid)
                assert error.code() == grpc.StatusCode.NOT_FOUND, sid
                assert "no running speculative variant" in error.details()
        finally:
            await services.stub.CancelSwarm(orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm_id), timeout=10)
            await wait_terminal(services, swarm_id)


@pytest.mark.parametrize(
    ("models", "needle"),
    [
        (["nomodel"], "config.speculate_models[0]"),
        (["scripted/planner", "scripted/"], "config.speculate_models[1]"),
        (["scripted/planner"] * 9, "config.speculate_models: at most 8 models (got 9)"),
    ],
)
async def test_the_variants_models_are_checked_at_submission(tmp_path: Path, models: list[str], needle: str) -> None:
    async with serve_swarm_services(tmp_path) as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=fast_config(speculate=2, speculate_models=models))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in info.value.details()
        ok = await services.submit(
            plan=plan(subtask("a")), config=fast_config(speculate=2, speculate_models=["scripted/planner"]), dry_run=True
        )
        assert list(ok.swarm.config.speculate_models) == ["scripted/planner"]


async def test_a_subtask_id_too_long_for_its_variants_is_refused(tmp_path: Path) -> None:
    long_id = "a" * 120
    async with serve_swarm_services(tmp_path) as services:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(
                plan=plan(subtask(long_id)),
                config=fast_config(speculate=3, worktree_enabled=True, repo_path=str(services.db_path.parent)),
                dry_run=True,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "too long for speculative variants" in info.value.details()


async def test_a_claim_naming_another_branch_than_its_variants_is_refused(tmp_path: Path, git_repo: Path) -> None:
    async with serve_swarm_services(tmp_path) as services:
        sub = subtask("a", hang=True)
        sub.speculate = 2
        reply = await services.submit(
            plan=plan(sub), config=fast_config(worktree_enabled=True, repo_path=str(git_repo))
        )
        swarm_id = reply.swarm.id
        try:
            for _ in range(500):  # the race is running once its subtask is
                run = services.orchestrator.live(swarm_id)
                if run is not None and "a" in run.scheduler.dispatches:
                    break
                await asyncio.sleep(0.01)
            for branch in ("main", f"swarmd/{swarm_id}/a.variant-2", f"swarmd/{swarm_id}/a.variant-1@x", "a.variant-1"):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await services.coordinator.ClaimVariant(
                        coordinator_pb2.ClaimVariantRequest(swarm_id=swarm_id, subtask_id="a.variant-1", branch=branch),
                        timeout=10,
                    )
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, branch
                assert "is not a branch of variant" in (info.value.details() or ""), branch
        finally:
            await services.stub.CancelSwarm(orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm_id), timeout=10)
            await wait_terminal(services, swarm_id)
