"""SampleBranch on a real executor service: a worktree found by its branch
(the latest attempt's, ``<branch>@<n>``), checks run there, unknown for a branch this host has no worktree of, the
swarm's promoted branch remembered for its merges, INVALID_ARGUMENT for a bad
request."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from helpers import git, process_running, until

from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.plugins.runtime.worktree import priority
from swarmd.services.config import Settings
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

T = 30


async def test_sample_branch(tmp_path: Path, git_repo: Path) -> None:
    base = git(git_repo, "rev-parse", "HEAD").strip()
    wt = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", "swarmd/s/a", str(wt))
    (wt / "a.py").write_text("def f(:\n")
    async with EmbeddedSwarmd(Settings(), db_path=tmp_path / "db.sqlite") as emb, grpc.aio.insecure_channel(
        emb.executor_address
    ) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)

        def request(branch: str, *checks: common_pb2.HealthCheckSpec) -> executor_pb2.SampleBranchRequest:
            return executor_pb2.SampleBranchRequest(
                swarm_id="s", subtask_id="a", repo_path=str(git_repo), branch=branch, base_commit=base, checks=checks
            )

        compile_check = common_pb2.HealthCheckSpec(name="python-compile")
        passing = common_pb2.HealthCheckSpec(name="command", options={"command": "true"})
        got = (await stub.SampleBranch(request("swarmd/s/a", compile_check, passing), timeout=T)).observation
        assert got.health == common_pb2.HEALTH_STATUS_FAIL  # one check failed: the branch fails
        assert "[python-compile: fail] a.py:1" in got.detail and "[command: pass]" in got.detail
        assert list(got.changed_files) == ["a.py"] and got.changed_lines == 1
        (wt / "a.py").write_text("def f():\n    return 1\n")
        got = (await stub.SampleBranch(request("swarmd/s/a", compile_check), timeout=T)).observation
        assert got.health == common_pb2.HEALTH_STATUS_PASS and got.changed_lines == 2

        # A later attempt runs on swarmd/s/a@<n>: the latest attempt's worktree is the one sampled.
        for attempt, source in ((3, "def f():\n    return 3\n"), (2, "def f(:\n")):
            later = tmp_path / f"wt{attempt}"
            git(git_repo, "worktree", "add", "-q", "-b", f"swarmd/s/a@{attempt}", str(later))
            (later / "a.py").write_text(source)
        got = (await stub.SampleBranch(request("swarmd/s/a", compile_check), timeout=T)).observation
        assert got.health == common_pb2.HEALTH_STATUS_PASS and got.branch == "swarmd/s/a@3", got
        exact = (await stub.SampleBranch(request("swarmd/s/a@2", compile_check), timeout=T)).observation
        assert exact.health == common_pb2.HEALTH_STATUS_FAIL and exact.branch == "swarmd/s/a@2", exact
        got = (await stub.SampleBranch(request("swarmd/s/a", passing), timeout=T)).observation
        assert got.branch == "swarmd/s/a@3"

        elsewhere = (await stub.SampleBranch(request("swarmd/s/gone", compile_check), timeout=T)).observation
        assert elsewhere.health == common_pb2.HEALTH_STATUS_UNKNOWN and "no worktree" in elsewhere.detail

        # The controller's promotion rides on its samples; the executor remembers it.
        promoting = request("swarmd/s/a", passing)
        promoting.promoted_subtask_id = "a"
        await stub.SampleBranch(promoting, timeout=T)
        assert priority.promoted("s") == "a"
        await stub.SampleBranch(request("swarmd/s/a", passing), timeout=T)
        assert priority.promoted("s") == ""

        for bad in (request("swarmd/s/a", common_pb2.HealthCheckSpec(name="nope")), request("")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.SampleBranch(bad, timeout=T)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_slow_check_blocks_nothing_and_a_cancelled_sample_kills_it(tmp_path: Path, git_repo: Path) -> None:
    wt = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", "swarmd/s/slow", str(wt))
    pid_file = tmp_path / "pid"
    slow = common_pb2.HealthCheckSpec(name="command", options={"command": f"sleep 300 & echo $! > {pid_file}; wait"})
    async with EmbeddedSwarmd(Settings(), db_path=tmp_path / "db.sqlite") as emb, grpc.aio.insecure_channel(
        emb.executor_address
    ) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        call = stub.SampleBranch(
            executor_pb2.SampleBranchRequest(
                swarm_id="s", subtask_id="slow", repo_path=str(git_repo), branch="swarmd/s/slow",
                checks=[slow], check_timeout_ms=600_000,
            ),
            timeout=T * 10,
        )
        await until(lambda: pid_file.exists() and pid_file.read_text().strip() != "", timeout=T)
        # The service answers other calls while the check runs.
        for _ in range(3):
            await stub.Describe(executor_pb2.DescribeRequest(), timeout=T)
        assert not call.done()
        child = int(pid_file.read_text())
        assert process_running(child)
        call.cancel()
        await until(lambda: not process_running(child), timeout=T)
