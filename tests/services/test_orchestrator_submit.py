"""SubmitSwarm over real gRPC: validation, dry runs, pre-flight, decomposition."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import grpc
import pytest
from fakes.fake_scripted_executor import JOURNAL
from fakes.fake_scripted_provider import ScriptedProvider
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal
from google.rpc import error_details_pb2

from swarmd.plugins import PermanentProviderError, TransientProviderError
from swarmd.services.errors import status_details
from swarmd.v1 import common_pb2, orchestrator_pb2


@pytest.fixture
async def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    async def no_sleep(_: float) -> None:
        return None

    async with serve_swarm_services(tmp_path, sleep=no_sleep) as served:
        yield served


async def refused(services, **request) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await services.submit(**request)
    return info.value


@pytest.mark.parametrize(
    ("subtasks", "needle"),
    [
        (
            [subtask("a", "b"), subtask("b", "c"), subtask("c", "a")],
            "circular dependency: a -> b -> c -> a",
        ),
        ([subtask("a", "a")], "subtask 'a' depends on itself"),
        ([subtask("a", "nope")], "subtask 'a' depends on unknown subtask 'nope'"),
        ([subtask("a"), subtask("a")], "duplicate subtask id 'a'"),
        ([common_pb2.SubTask(id="a", instruction=" ")], "subtask #1 'a' has an empty instruction"),
        ([common_pb2.SubTask(id="sp ace", instruction="x")], "'sp ace' has an invalid id"),
        ([common_pb2.SubTask(id="a", instruction="x" * 100_001)], "100001 characters"),
        (
            [subtask("a"), common_pb2.SubTask(id="b", instruction="x", dependencies=["a"] * 300)],
            "300 dependencies",
        ),
    ],
)
async def test_explicit_plan_errors_are_invalid_argument(services, subtasks, needle) -> None:  # type: ignore[no-untyped-def]
    error = await refused(services, plan=plan(*subtasks), config=fast_config())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in error.details()


@pytest.mark.parametrize(
    ("request_fields", "needle"),
    [
        ({"task": "  "}, "task is empty and no plan was given"),
        ({"task": "x" * 100_001}, "task is 100001 characters"),
        (
            {"task": "t", "config": fast_config(max_concurrent=-2)},
            "config.max_concurrent must not be negative",
        ),
        (
            {"task": "t", "config": fast_config(executor="nosuch")},
            "unknown executor plugin 'nosuch'",
        ),
        (
            {"task": "t", "config": fast_config(model="nosuch/model")},
            "unknown model provider 'nosuch'",
        ),
        ({"task": "t", "config": fast_config(model="")}, "config.model"),
        (
            {"task": "t", "config": fast_config(repo_path="/does/not/exist")},
            "repo_path /does/not/exist does not exist",
        ),
        ({"task": "t", "request_id": "r" * 200}, "request_id is longer"),
        ({"task": "t", "labels": {"": "x"}}, "label key"),
    ],
)
async def test_bad_requests_are_invalid_argument(services, request_fields, needle) -> None:  # type: ignore[no-untyped-def]
    request_fields.setdefault("config", fast_config())
    error = await refused(services, **request_fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert needle in error.details()


async def test_explicit_plan_over_the_limit_is_refused(services) -> None:  # type: ignore[no-untyped-def]
    error = await refused(
        services,
        plan=plan(subtask("a"), subtask("b"), subtask("c")),
        config=fast_config(max_subagents=2),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than max_subagents (2)" in error.details()


async def test_dry_run_returns_the_plan_and_report_without_running(
    services, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    reply = await services.submit(
        plan=plan(subtask("a"), subtask("b", "a"), subtask("c", "a", "b")),
        config=fast_config(repo_path=str(tmp_path), worktree_enabled=True),
        dry_run=True,
    )
    swarm = reply.swarm
    assert [s.subtask.stage for s in swarm.subtasks] == [0, 1, 2]
    assert swarm.stage_count == 3 and swarm.plan_source == common_pb2.PLAN_SOURCE_EXPLICIT
    assert [s.status for s in swarm.subtasks] == [
        common_pb2.SUB_TASK_STATUS_PENDING,
        common_pb2.SUB_TASK_STATUS_BLOCKED,
        common_pb2.SUB_TASK_STATUS_BLOCKED,
    ]
    report = reply.preflight
    # Worktrees asked for outside git: the report says the swarm could not run.
    assert not report.is_valid and not report.is_git_repo
    assert report.estimated_prompt_tokens == 500 + 3 * (len("do a") // 4)
    (issue,) = [i for i in report.issues if "not in a git repository" in i.message]
    assert issue.severity == common_pb2.PREFLIGHT_SEVERITY_ERROR
    # Nothing ran and nothing was stored: the dry-run swarm has no id to look up.
    assert swarm.id == ""
    listed = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), timeout=10)
    assert list(listed.swarms) == []


async def test_dry_run_decomposes_with_the_model(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script(
        'Plan:\n```json\n{"subtasks": [{"name": "Read", "instruction": "Read the code", "specialty": "Researcher"},'
        ' {"name": "Write", "instruction": "Write docs", "dependencies": ["Read", "Ghost"]},]}\n```'
    )
    reply = await services.submit(task="Document the code", config=fast_config(), dry_run=True)
    swarm = reply.swarm
    assert [s.subtask.name for s in swarm.subtasks] == ["Read", "Write"]
    assert [s.subtask.read_only for s in swarm.subtasks] == [True, False]
    assert swarm.plan_source == common_pb2.PLAN_SOURCE_MODEL
    assert swarm.stats.orchestrator_steps == 1
    assert any("'Ghost'" in i.message for i in reply.preflight.issues)
    request = ScriptedProvider.requests[0]
    assert request.max_tokens is None and request.temperature == 0.7
    assert [m.role for m in request.messages] == ["user"]
    assert "TASK: Document the code" in (request.messages[0].content or "")
    assert ScriptedProvider.closed == 2  # the executor's model check, and the decomposition


async def test_git_repository_pre_flight(services, git_repo: Path) -> None:  # type: ignore[no-untyped-def]
    (git_repo / "dirty.txt").write_text("x")
    reply = await services.submit(
        plan=plan(subtask("a")),
        config=fast_config(repo_path=str(git_repo), worktree_enabled=True),
        dry_run=True,
    )
    report = reply.preflight
    assert (
        report.is_git_repo and report.current_branch == "main" and report.uncommitted_changes == 1
    )
    assert any("1 uncommitted change" in i.message for i in report.issues)
    assert len(reply.swarm.base_commit) == 40
    assert reply.swarm.config.worktree_enabled


async def test_a_directory_outside_git_needs_worktrees_off(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    unset = fast_config(repo_path=str(tmp_path))
    unset.ClearField("worktree_enabled")  # the default is on
    for config in (fast_config(repo_path=str(tmp_path), worktree_enabled=True), unset):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(plan=plan(subtask("a")), config=config)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not in a git repository" in info.value.details()
    # Working in the directory itself is a choice the client can make.
    reply = await services.submit(
        plan=plan(subtask("a")), config=fast_config(repo_path=str(tmp_path), worktree_enabled=False)
    )
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED


async def test_request_id_makes_submit_idempotent(services) -> None:  # type: ignore[no-untyped-def]
    first = await services.submit(plan=plan(subtask("a")), config=fast_config(), request_id="job-1")
    again = await services.submit(plan=plan(subtask("a")), config=fast_config(), request_id="job-1")
    assert again.swarm.id == first.swarm.id
    await wait_terminal(services, first.swarm.id)
    later = await services.submit(plan=plan(subtask("a")), config=fast_config(), request_id="job-1")
    assert later.swarm.id == first.swarm.id and later.swarm.subtasks[0].subtask.id == "a"
    # The same key with a different request, live or stored: ALREADY_EXISTS naming what differs.
    for changed, named in (
        ({"plan": plan(subtask("zzz"))}, "plan"),
        ({"config": fast_config(max_retries=1)}, "config"),
        ({"task": "other", "config": fast_config(max_retries=1)}, "task, config"),
    ):
        request = {"plan": plan(subtask("a")), "config": fast_config(), "request_id": "job-1", **changed}
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(**request)
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert f"different {named};" in info.value.details() and first.swarm.id in info.value.details()
    # Labels are bookkeeping: a retry that differs only in them gets the first swarm.
    relabelled = await services.submit(
        plan=plan(subtask("a")), config=fast_config(), request_id="job-1", labels={"try": "2"}
    )
    assert relabelled.swarm.id == first.swarm.id and "try" not in relabelled.swarm.labels
    other = await services.submit(plan=plan(subtask("a")), config=fast_config(), request_id="job-2")
    assert other.swarm.id != first.swarm.id


async def test_concurrent_submits_with_one_request_id_make_one_swarm(services) -> None:  # type: ignore[no-untyped-def]
    replies = await asyncio.gather(
        *(
            services.submit(plan=plan(subtask("a")), config=fast_config(), request_id="same")
            for _ in range(4)
        )
    )
    assert len({r.swarm.id for r in replies}) == 1
    await wait_terminal(services, replies[0].swarm.id)
    listed = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), timeout=10)
    assert [s.id for s in listed.swarms] == [replies[0].swarm.id]


async def test_task_is_decomposed_in_the_background_and_run(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script(
        '{"subtasks": [{"id": "scan", "name": "Scan", "instruction": "scan fake.duration_ms=10"},'
        ' {"name": "Fix", "instruction": "fix it", "dependencies": ["scan"]}]}'
    )
    reply = await services.submit(task="Improve the code", config=fast_config())
    assert reply.swarm.state == common_pb2.SWARM_STATE_PLANNING
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert [s.subtask.name for s in swarm.subtasks] == ["Scan", "Fix"]
    assert swarm.stats.orchestrator_steps == 1
    assert swarm.stats.critical_steps == 1 + 2
    assert swarm.stats.usage.total_tokens == 150 + 2 * 10
    kinds = [e.WhichOneof("kind") for e in await services.events(swarm.id)]
    assert kinds[:2] == ["started", "decomposed"]


async def test_garbage_decomposition_runs_one_subtask_with_a_warning(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script("I'd rather not produce JSON today.")
    reply = await services.submit(task="Do the thing fake.duration_ms=5", config=fast_config())
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert swarm.plan_source == common_pb2.PLAN_SOURCE_SINGLE
    assert [s.subtask.name for s in swarm.subtasks] == ["Main Task"]
    warnings = [e.warning for e in await services.events(swarm.id) if e.HasField("warning")]
    assert [w.code for w in warnings] == ["decomposition_fallback"]
    assert "contains no JSON object" in warnings[0].message


async def test_model_cycle_is_repaired_and_reported(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script(
        '{"subtasks": [{"name": "A", "instruction": "a", "dependencies": ["C"]},'
        ' {"name": "B", "instruction": "b", "dependencies": ["A"]},'
        ' {"name": "C", "instruction": "c", "dependencies": ["B"]}]}'
    )
    reply = await services.submit(task="cyclic", config=fast_config())
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    warnings = [e.warning for e in await services.events(swarm.id) if e.HasField("warning")]
    assert [w.code for w in warnings] == ["cycle_broken"]
    assert swarm.stage_count == 3


async def test_model_plan_over_the_limit_is_truncated(services) -> None:  # type: ignore[no-untyped-def]
    items = ",".join(f'{{"name": "S{i}", "instruction": "s{i}"}}' for i in range(5))
    ScriptedProvider.script(f'{{"subtasks": [{items}]}}')
    reply = await services.submit(task="many", config=fast_config(max_subagents=3))
    swarm = await wait_terminal(services, reply.swarm.id)
    assert [s.subtask.name for s in swarm.subtasks] == ["S0", "S1", "S2"]
    warnings = [e.warning for e in await services.events(swarm.id) if e.HasField("warning")]
    assert [w.code for w in warnings] == ["plan_truncated"]


async def test_transient_model_errors_are_retried_then_fall_back(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script(
        TransientProviderError("503 overloaded"),
        '{"subtasks": [{"name": "A", "instruction": "a"}]}',
    )
    reply = await services.submit(task="t", config=fast_config())
    swarm = await wait_terminal(services, reply.swarm.id)
    assert [s.subtask.name for s in swarm.subtasks] == ["A"] and swarm.stats.orchestrator_steps == 2

    ScriptedProvider.script(PermanentProviderError("401 invalid api key"))
    reply = await services.submit(task="t2", config=fast_config())
    swarm = await wait_terminal(services, reply.swarm.id)
    assert [s.subtask.name for s in swarm.subtasks] == ["Main Task"]
    warnings = [e.warning for e in await services.events(swarm.id) if e.HasField("warning")]
    assert "permanent error: 401 invalid api key" in warnings[0].message


async def test_strategy_none_skips_the_model(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script()
    reply = await services.submit(
        task="just do it", config=fast_config(strategy=common_pb2.DECOMPOSITION_STRATEGY_NONE)
    )
    assert reply.swarm.plan_source == common_pb2.PLAN_SOURCE_SINGLE
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED and ScriptedProvider.requests == []


async def test_a_swarm_naming_no_executor_runs_on_the_executor_services_default(services) -> None:  # type: ignore[no-untyped-def]
    # The executor service's default_executor is "fake"; "local" is not loaded.
    reply = await services.submit(plan=plan(subtask("a")), config=fast_config(executor=""))
    assert reply.swarm.config.executor == ""
    assert any("default 'fake'" in i.message for i in reply.preflight.issues)
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    assert [a.subtask_id for a in JOURNAL.attempts] == ["a"]


async def test_a_retried_decomposition_is_announced_and_counted(services) -> None:  # type: ignore[no-untyped-def]
    ScriptedProvider.script(
        TransientProviderError("503 overloaded"),
        '{"subtasks": [{"name": "A", "instruction": "a"}]}',
    )
    reply = await services.submit(task="t", config=fast_config(base_delay_ms=40))
    swarm = await wait_terminal(services, reply.swarm.id)
    assert swarm.stats.orchestrator_steps == 2 and swarm.stats.retries == 1
    events = await services.events(swarm.id)
    retries = [e.retry_scheduled for e in events if e.HasField("retry_scheduled")]
    assert len(retries) == 1
    (retry,) = retries
    assert retry.subtask_id == "" and retry.next_attempt == 2
    assert 0 <= retry.delay_ms <= 40 and "503 overloaded" in retry.reason
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds.index("retry_scheduled") < kinds.index("decomposed")


async def test_the_decomposition_call_honours_call_timeout_secs(services) -> None:  # type: ignore[no-untyped-def]
    async def never_answers() -> str:
        await asyncio.Event().wait()
        return ""

    ScriptedProvider.script(never_answers, '{"subtasks": [{"name": "A", "instruction": "a"}]}')
    reply = await services.submit(
        task="t", config=fast_config(executor_options={"call_timeout_secs": "0.2"})
    )
    swarm = await wait_terminal(services, reply.swarm.id)
    assert [s.subtask.name for s in swarm.subtasks] == ["A"]
    (retry,) = [e.retry_scheduled for e in await services.events(swarm.id) if e.HasField("retry_scheduled")]
    assert "call_timeout_secs=0.2s" in retry.reason


async def test_bad_decomposition_options_are_invalid_argument(services) -> None:  # type: ignore[no-untyped-def]
    error = await refused(
        services, task="t", config=fast_config(executor_options={"provider.api_key": "sk-mine"})
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Refused as an operator setting before any provider is made.
    assert "'provider.api_key' is an operator setting" in error.details()
    assert "executor service's executor.options" in error.details()


@pytest.mark.parametrize(
    ("request_fields", "field", "words"),
    [
        ({"plan": plan(subtask("a", instruction="make\x00it"))}, "plan", "instruction contains a NUL byte"),
        ({"plan": plan(subtask("a", name="bad\x00name"))}, "plan", "name contains a NUL byte"),
        ({"task": "do\x00it", "plan": None}, "task", "NUL byte"),
        ({"labels": {"team": "q\x00a"}}, "labels", "NUL byte"),
        ({"config": fast_config(max_cost_usd=math.nan)}, "config.max_cost_usd", "finite"),
        ({"config": fast_config(max_cost_usd=math.inf)}, "config.max_cost_usd", "finite"),
        ({"config": fast_config(max_cost_per_subtask_usd=-math.inf)}, "config.max_cost_per_subtask_usd", "finite"),
        ({"config": fast_config(repo_path="relative/dir")}, "config.repo_path", "absolute path"),
    ],
)
async def test_input_the_swarm_could_not_honour_is_refused(services, request_fields, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    request = {"plan": plan(subtask("a")), "config": fast_config(), **request_fields}
    if request["plan"] is None:
        del request["plan"]
    for dry_run in (False, True):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services.submit(**request, dry_run=dry_run)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert words in info.value.details()
        status = status_details(info.value)
        assert status is not None
        violations = []
        for packed in status.details:
            bad = error_details_pb2.BadRequest()
            if packed.Unpack(bad):
                violations.extend(v.field for v in bad.field_violations)
        assert violations == [field]
    listed = await services.stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), timeout=10)
    assert list(listed.swarms) == []
