"""Long model calls over real gRPC between separate service processes.

A sub-agent whose single model call takes 200 s must finish with one attempt:
the executor stream carries heartbeats while the call is in flight and the
keepalive policy of both ends agrees, so nothing closes the stream. The fast
tests scale the keepalive, heartbeat and call time down by the same factor;
one slow test runs the real durations with the default settings.

A stream that breaks mid-call (a TCP proxy between orchestrator and executor
drops every connection, or refuses them for a while) is reattached: the
executor kept running the attempt, so the model is called once and no retry
is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.fake_openai_server import FakeOpenAIServer, reply_text

from swarmd.clients.client import SwarmdClient
from swarmd.v1 import common_pb2

SWARMD = str(Path(sys.executable).with_name("swarmd"))

#: Real durations: keepalive 30 s, heartbeat 10 s, a 200 s model call.
DEFAULT_CALL_SECS = 200.0
#: The same ratios, 100 times faster.
SCALE = 0.01


class Service:
    """One ``swarmd serve`` process; its output goes to a file (never a full pipe)."""

    def __init__(self, kind: str, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.kind = kind
        self.log_path = cwd / f"{kind}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [SWARMD, "serve", kind, *args, "--listen", "127.0.0.1:0"],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )
        self.address = ""

    async def started(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"listening on (\S+)", self.log_path.read_text())
            if match:
                self.address = match.group(1)
                return self.address
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.kind} did not start: {self.log_path.read_text()}")

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class TcpProxy:
    """A loopback TCP proxy that can drop its connections or refuse new ones."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connections = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()
        self._writers.discard(dst)

    def break_connections(self) -> None:
        """Reset every open connection (both sides see the transport fail)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def refuse(self) -> None:
        """Stop listening (new connections are refused) and drop the open ones."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        self.break_connections()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.break_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def timing_env(scale: float | None) -> dict[str, str]:
    """Keepalive and heartbeat settings of every service, scaled (None: defaults)."""
    if scale is None:
        return {}
    env = {}
    for section in ("ORCHESTRATOR", "EXECUTOR", "RESULT_STORE"):
        env[f"SWARMD_{section}__KEEPALIVE_TIME_SECS"] = str(30 * scale)
        env[f"SWARMD_{section}__HEARTBEAT_INTERVAL_SECS"] = str(10 * scale)
    return env


@contextlib.asynccontextmanager
async def swarm_services(
    tmp_path: Path, server: FakeOpenAIServer, env: dict[str, str], *, proxy: bool = False
) -> AsyncIterator[tuple[dict[str, Service], TcpProxy | None]]:
    executor_env = {
        **env,
        "SWARMD_EXECUTOR__OPTIONS": (
            f'{{"provider.base_url": "{server.base_url}", "provider.api_key": "test-key", "provider.timeout": "600", "call_timeout_secs": "600"}}'
        ),
    }
    services: dict[str, Service] = {}
    relay: TcpProxy | None = None
    try:
        services["store"] = Service("result-store", ["--db", str(tmp_path / "store.db")], tmp_path, env)
        services["executor"] = Service("executor", [], tmp_path, executor_env)
        store_addr = await services["store"].started()
        executor_addr = await services["executor"].started()
        if proxy:
            relay = TcpProxy(executor_addr)
            await relay.start()
            executor_addr = relay.address
        services["orchestrator"] = Service(
            "orchestrator", ["--result-store", store_addr, "--executor", executor_addr], tmp_path, env
        )
        await services["orchestrator"].started()
        yield services, relay
    finally:
        codes = {name: s.stop() for name, s in reversed(services.items())}
        if relay is not None:
            await relay.stop()
    assert set(codes.values()) <= {0}, f"a service did not shut down cleanly: {codes}"


async def run_one_subagent(
    services: dict[str, Service], repo: Path, heartbeat_secs: float = 0.0
) -> tuple[common_pb2.Swarm, list[common_pb2.SwarmEvent]]:
    async with SwarmdClient(services["orchestrator"].address) as client:
        reply = await client.submit(
            task="Think for a long time",
            plan=common_pb2.Plan(
                subtasks=[common_pb2.SubTask(id="thinker", instruction="Think it over.", read_only=True)]
            ),
            config=common_pb2.SwarmConfig(
                model="openai/fake-model", repo_path=str(repo), request_delay_ms=0, cache_enabled=False
            ),
        )
        events = [e async for e in client.watch(reply.swarm.id, heartbeat_secs=heartbeat_secs)]
        return await client.get(reply.swarm.id), events


def assert_one_attempt(swarm: common_pb2.Swarm, events: list[common_pb2.SwarmEvent], server: FakeOpenAIServer) -> None:
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    (state,) = swarm.subtasks
    assert state.status == common_pb2.SUB_TASK_STATUS_COMPLETED, state.result.error
    assert state.result.retry_count == 0 and state.attempt == 1
    assert server.completions == 1, "the model was called once: nothing was started over"
    assert not [e for e in events if e.HasField("retry_scheduled")]
    assert all(e.WhichOneof("kind") for e in events), "heartbeats are not events"
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def wait_for_request(server: FakeOpenAIServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.requests:
        assert time.monotonic() < deadline, "the sub-agent never called the model"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(120)
async def test_a_long_model_call_completes_in_one_attempt_scaled(tmp_path: Path, git_repo: Path) -> None:
    async with FakeOpenAIServer() as server:
        server.push(reply_text("thought it over", delay=DEFAULT_CALL_SECS * SCALE))
        async with swarm_services(tmp_path, server, timing_env(SCALE)) as (services, _):
            swarm, events = await run_one_subagent(services, git_repo, heartbeat_secs=10 * SCALE)
            logs = "".join(s.output() for s in services.values())
    assert_one_attempt(swarm, events, server)
    assert "too_many_pings" not in logs and "ENHANCE_YOUR_CALM" not in logs
    broke = [e.warning.message for e in events if e.HasField("warning") and e.warning.code.startswith("executor_")]
    assert not broke, f"the stream must not even break: {broke}"


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_a_200s_model_call_completes_in_one_attempt_with_default_settings(tmp_path: Path, git_repo: Path) -> None:
    async with FakeOpenAIServer() as server:
        server.push(reply_text("thought it over", delay=DEFAULT_CALL_SECS))
        async with swarm_services(tmp_path, server, timing_env(None)) as (services, _):
            swarm, events = await run_one_subagent(services, git_repo)
            logs = "".join(s.output() for s in services.values())
    assert_one_attempt(swarm, events, server)
    assert "too_many_pings" not in logs and "ENHANCE_YOUR_CALM" not in logs
    broke = [e.warning.message for e in events if e.HasField("warning") and e.warning.code.startswith("executor_")]
    assert not broke, f"the stream must not even break: {broke}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("failure", ["reset", "outage"])
async def test_a_broken_executor_stream_is_reattached_without_a_second_attempt(
    tmp_path: Path, git_repo: Path, failure: str
) -> None:
    call_secs = 4.0
    async with FakeOpenAIServer() as server:
        server.push(reply_text("thought it over", delay=call_secs))
        async with swarm_services(tmp_path, server, timing_env(SCALE), proxy=True) as (services, proxy):
            assert proxy is not None
            running = asyncio.ensure_future(run_one_subagent(services, git_repo))
            await wait_for_request(server)  # the model call is in flight
            if failure == "reset":
                proxy.break_connections()
            else:
                await proxy.refuse()
                await asyncio.sleep(1.5)  # the executor is unreachable meanwhile
                await proxy.start()  # back on the same port
            swarm, events = await asyncio.wait_for(running, 60)
    assert_one_attempt(swarm, events, server)
    codes = [e.warning.code for e in events if e.HasField("warning")]
    assert "executor_reattached" in codes, codes
    if failure == "outage":
        assert "executor_unavailable" in codes, codes
