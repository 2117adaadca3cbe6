"""No tool call freezes the executor service: a real ``swarmd serve executor``
process, pathological tool calls through ExecuteSubTask.

While a sub-agent's call holds (a catastrophic regex, bash ignoring SIGTERM
with children, a swarm_share wait nobody answers), the service must keep
answering gRPC health checks and keep running another sub-agent (its events
and its result arrive while the call still holds); the call must end with a
clear error to the model, the sub-agent with a result (not a crash); and
SIGTERM must stop the service during such a call, the call's processes
with it. Calls that must not hold at all (a named pipe, a 64 GiB file) must
answer at once with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import command_running, until

from swarmd.services.result_store.testing import serve_result_store
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SWARMD = str(Path(sys.executable).with_name("swarmd"))
SERVING = health_pb2.HealthCheckResponse.SERVING


def start_executor(cwd: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [SWARMD, "serve", "executor", "--listen", "127.0.0.1:0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"executor did not start: {line!r} {proc.communicate(timeout=10)[0]}")
    return proc, match.group(1)


def stop_executor(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    return proc.returncode


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, address = start_executor(tmp_path_factory.mktemp("executor"))
    try:
        yield address
    finally:
        assert stop_executor(proc) == 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "notes.txt").write_text("one\ntwo\n")
    (root / "long.txt").write_text("fine\n" + "a" * 60 + "!\n")
    return root


def request(
    cassette: Path,
    repo: Path,
    subtask_id: str,
    *steps: list[dict[str, Any]] | str,
    store: str = "",
    **options: str,
) -> executor_pb2.ExecuteSubTaskRequest:
    """A sub-agent whose replayed model makes these tool calls, step by step, then answers."""
    with cassette.open("a") as f:
        for n, step in enumerate(steps, start=1):
            body = {"content": step} if isinstance(step, str) else {"tool_calls": step}
            f.write(json.dumps({"key": subtask_id, "step": n, **body}) + "\n")
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id="freeze",
        subtask=common_pb2.SubTask(id=subtask_id, name=subtask_id, instruction="go"),
        config=common_pb2.SwarmConfig(
            model=f"replay/{cassette}",
            executor="local",
            executor_options=options,
            subagent_timeout_secs=600,
        ),
        attempt=1,
        workspace=executor_pb2.Workspace(repo_path=str(repo)),
        result_store_address=store,
    )


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


@dataclass
class Run:
    """One ExecuteSubTask stream: what arrived, and when."""

    events: list[tuple[float, common_pb2.SwarmEvent]] = field(default_factory=list)
    result: common_pb2.SubTaskResult | None = None
    finished_at: float = 0.0
    tool_started: asyncio.Event = field(default_factory=asyncio.Event)

    def details(self) -> list[tuple[float, common_pb2.AgentToolCallDetail]]:
        return [
            (t, e.agent_tool_call_detail)
            for t, e in self.events
            if e.HasField("agent_tool_call_detail")
        ]


async def follow(stub: Any, req: executor_pb2.ExecuteSubTaskRequest, run: Run) -> Run:
    async for message in stub.ExecuteSubTask(req, timeout=150):
        if message.HasField("event"):
            run.events.append((time.monotonic(), message.event))
            if message.event.HasField("agent_tool_call"):
                run.tool_started.set()
        else:
            run.result = message.result
    run.finished_at = time.monotonic()
    return run


@dataclass
class Health:
    answers: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def poll_health(channel: grpc.aio.Channel, health: Health) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        except grpc.aio.AioRpcError as exc:
            health.failures.append(f"{exc.code().name}: {exc.details()}")
        else:
            if reply.status == SERVING:
                health.answers.append(time.monotonic())
            else:
                health.failures.append(str(reply.status))
        await asyncio.sleep(0.1)


async def hold_and_probe(
    address: str,
    hold: executor_pb2.ExecuteSubTaskRequest,
    probe: executor_pb2.ExecuteSubTaskRequest,
    *,
    cancel: bool,
    ready: Callable[[], bool] | None = None,
) -> tuple[Run, Run, Health]:
    """Start ``hold``; once its tool call runs (and ``ready()`` holds, when
    given: the call has got as far as the test needs), watch health and run
    ``probe`` to completion; then cancel ``hold`` (when ``cancel``) and
    collect it."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        held = Run()
        holding = asyncio.create_task(follow(stub, hold, held))
        await asyncio.wait_for(held.tool_started.wait(), 60)
        if ready is not None:
            await until(ready, timeout=60, interval=0.05)
        health = Health()
        poller = asyncio.create_task(poll_health(channel, health))
        try:
            probed = await asyncio.wait_for(follow(stub, probe, Run()), 60)
            if cancel:
                reply = await stub.CancelSubTask(
                    executor_pb2.ExecutorServiceCancelSubTaskRequest(
                        swarm_id="freeze", subtask_id=hold.subtask.id, reason="probe done"
                    ),
                    timeout=10,
                )
                assert reply.cancelled
            await asyncio.wait_for(holding, 60)
        finally:
            poller.cancel()
            holding.cancel()
    return held, probed, health


def assert_service_stayed_alive(
    hold_end: float, probed: Run, health: Health, *, whole_probe: bool = True
) -> None:
    """Health checks were answered, and the probe ran (to its end, with
    ``whole_probe``; else its events at least began to arrive), before the
    pathological call ended at ``hold_end``."""
    assert probed.result is not None and probed.result.success, probed.result
    assert [d.success for _, d in probed.details()] == [True, True]
    ran = probed.finished_at if whole_probe else probed.events[0][0]
    assert ran < hold_end, "the other sub-agent had to wait for the pathological call"
    assert not health.failures, health.failures
    assert [t for t in health.answers if t < hold_end], (
        "no health check was answered during the call"
    )


def probe_request(tmp_path: Path, repo: Path) -> executor_pb2.ExecuteSubTaskRequest:
    return request(
        tmp_path / "probe.jsonl",
        repo,
        "probe",
        [tool("read", path="notes.txt")],
        [tool("grep", pattern="two")],
        "probed",
    )


async def test_catastrophic_regex(executor: str, tmp_path: Path, repo: Path) -> None:
    # The reported pattern answers at once; one with no way through is stopped at the tool timeout.
    hold = request(
        tmp_path / "hold.jsonl",
        repo,
        "grep",
        [tool("grep", pattern="(a+)+$", path="long.txt")],
        [tool("grep", pattern="(a|aa)+$")],
        "gave up",
        tool_timeout_secs="4",
    )
    async with grpc.aio.insecure_channel(executor) as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        first = Run()
        following = asyncio.create_task(follow(stub, hold, first))
        # Wait for the second call (the hopeless one) to be running.
        while len([e for _, e in first.events if e.HasField("agent_tool_call")]) < 2:
            await asyncio.sleep(0.02)
            assert not following.done(), first.result
        health = Health()
        poller = asyncio.create_task(poll_health(channel, health))
        try:
            probed = await asyncio.wait_for(follow(stub, probe_request(tmp_path, repo), Run()), 60)
            await asyncio.wait_for(following, 60)
        finally:
            poller.cancel()
    (_, answered), (_, stopped) = first.details()
    assert answered.success and "No matches for '(a+)+$'" in answered.output_preview
    assert not stopped.success
    assert stopped.output_preview.startswith(
        "Error: the grep call did not finish within 4s and was stopped."
    )
    assert first.result is not None and first.result.success and first.result.result == "gave up"
    # The call is bounded (4 s), so only the probe's first events need to come within it.
    assert_service_stayed_alive(first.details()[1][0], probed, health, whole_probe=False)


async def test_bash_that_ignores_sigterm_and_forks(
    executor: str, tmp_path: Path, repo: Path
) -> None:
    command = "trap '' TERM; (trap '' TERM; sleep 300.1) & echo $! > pids; sleep 300.2 & echo $! >> pids; wait"
    hold = request(
        tmp_path / "hold.jsonl", repo, "bash", [tool("bash", command=command, timeout=600)], "never"
    )
    pids = repo / "pids"

    def both_children_started() -> bool:
        # The tool-call event comes before bash has run its first line; under
        # load the probe could finish first, and the cancel would find no
        # children to kill.
        return pids.exists() and len(pids.read_text().split()) == 2

    held, probed, health = await hold_and_probe(
        executor, hold, probe_request(tmp_path, repo), cancel=True, ready=both_children_started
    )
    assert_service_stayed_alive(held.finished_at, probed, health)
    assert held.result is not None and held.result.status == common_pb2.SUB_TASK_STATUS_CANCELLED
    assert "probe done" in held.result.error
    assert len(pids.read_text().split()) == 2
    assert not command_running("sleep 300.1") and not command_running("sleep 300.2")


async def test_bash_timeout_reaches_the_model(executor: str, tmp_path: Path, repo: Path) -> None:
    command = "trap '' TERM; sleep 300.3 & echo $! > pids; wait"
    hold = request(
        tmp_path / "hold.jsonl",
        repo,
        "bash-t",
        [tool("bash", command=command, timeout=2)],
        "went on",
    )
    async with grpc.aio.insecure_channel(executor) as channel:
        run = await follow(executor_pb2_grpc.ExecutorServiceStub(channel), hold, Run())
    ((_, detail),) = run.details()
    assert (
        not detail.success
        and "[timed out after 2s; the command and its child processes were killed]"
        in detail.output_preview
    )
    assert run.result is not None and run.result.success and run.result.result == "went on"
    assert not command_running("sleep 300.3")


async def test_swarm_share_wait_nobody_answers(executor: str, tmp_path: Path, repo: Path) -> None:
    async with serve_result_store(tmp_path / "store.db") as store:
        hold = request(
            tmp_path / "hold.jsonl",
            repo,
            "waiter",
            [tool("swarm_share", action="wait", key="never", timeout_secs=600)],
            "never",
            store=store.address,
        )
        held, probed, health = await hold_and_probe(
            executor, hold, probe_request(tmp_path, repo), cancel=True
        )
    assert_service_stayed_alive(held.finished_at, probed, health)
    assert held.result is not None and held.result.status == common_pb2.SUB_TASK_STATUS_CANCELLED


async def test_calls_that_must_not_hold_answer_at_once(
    executor: str, tmp_path: Path, repo: Path
) -> None:
    os.mkfifo(repo / "pipe")
    (repo / "huge.log").write_text(
        "first line\n" + "text\n" * 2000
    )  # more text than is sniffed for NULs
    os.truncate(repo / "huge.log", 64 * 1024**3)  # sparse: nothing of it is on disk
    calls = [
        [tool("read", path="pipe")],
        [tool("write", path="pipe", content="x")],
        [tool("read", path="huge.log", offset=10_000)],
        [tool("grep", pattern="first")],
        [tool("glob", pattern="**/*")],
    ]
    req = request(tmp_path / "c.jsonl", repo, "refused", *calls, "done")
    async with grpc.aio.insecure_channel(executor) as channel:
        health = Health()
        poller = asyncio.create_task(poll_health(channel, health))
        try:
            run = await asyncio.wait_for(
                follow(executor_pb2_grpc.ExecutorServiceStub(channel), req, Run()), 60
            )
        finally:
            poller.cancel()
    outputs = [d.output_preview for _, d in run.details()]
    assert "pipe is a named pipe; only regular files can be read" in outputs[0]
    assert "pipe is a named pipe; only regular files can be written" in outputs[1]
    assert "line 10000 lies beyond the first 256 MiB of huge.log" in outputs[2]
    assert outputs[3] == "No matches for 'first' in 2 file(s)"  # huge.log is past grep's size limit
    assert outputs[4].splitlines() == ["huge.log", "long.txt", "notes.txt"]
    assert run.result is not None and run.result.success and run.result.result == "done"
    assert not health.failures


async def test_sigterm_stops_the_service_during_a_call(tmp_path: Path, repo: Path) -> None:
    # In-flight calls get a 1 s grace period; then the service cancels them and exits.
    proc, address = start_executor(tmp_path, SWARMD_EXECUTOR__GRACE_PERIOD_SECS="1")
    try:
        command = "trap '' TERM; sleep 300.4 & echo $! > pids; wait"
        hold = request(
            tmp_path / "hold.jsonl",
            repo,
            "term",
            [tool("bash", command=command, timeout=600)],
            "never",
        )
        async with grpc.aio.insecure_channel(address) as channel:
            held = Run()
            holding = asyncio.create_task(
                follow(executor_pb2_grpc.ExecutorServiceStub(channel), hold, held)
            )
            await asyncio.wait_for(held.tool_started.wait(), 60)
            for _ in range(3000):
                if (repo / "pids").exists() and (repo / "pids").read_text().strip():
                    break
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 60)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await holding
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert code == 0, "the service did not stop cleanly on SIGTERM"
    assert not command_running("sleep 300.4"), "the call's process outlived the service"
