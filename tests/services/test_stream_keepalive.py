"""Keepalive and heartbeats on long streams, and attempts that outlive their stream.

Intervals are scaled down (keepalive 0.2 s instead of 30 s): the server's
ping policy must follow the setting, or an idle stream dies with GOAWAY
``too_many_pings`` after three pings.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.plugins import Executor, hookimpl
from swarmd.plugins.executors.follow import FollowPolicy, follow_attempt
from swarmd.plugins.manager import load_plugins
from swarmd.services._host import ServiceHost
from swarmd.services.config import ExecutorSettings, ServerSettings
from swarmd.services.executor import build_executor
from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

pytestmark = pytest.mark.timeout(60)


class CountingSleeper(Executor):
    """Test double: one event, sleeps ``labels.sleep`` seconds, succeeds; counts runs."""

    name = "counting"
    runs: list[str] = []
    stopped: list[str] = []

    async def submit(self, request):  # type: ignore[override]
        st = request.subtask
        CountingSleeper.runs.append(st.id)
        try:
            yield executor_pb2.ExecuteSubTaskResponse(
                event=common_pb2.SwarmEvent(agent_started=common_pb2.AgentStarted(subtask_id=st.id))
            )
            await asyncio.sleep(float(st.labels.get("sleep", "0")))
            yield executor_pb2.ExecuteSubTaskResponse(
                result=common_pb2.SubTaskResult(subtask_id=st.id, success=True, result="slept")
            )
        except asyncio.CancelledError:
            CountingSleeper.stopped.append(st.id)
            raise


class CountingPlugin:
    @hookimpl
    def swarmd_register_executors(self, registry):  # type: ignore[no-untyped-def]
        registry.add(CountingSleeper)


def request(sid: str, sleep: float, **kw) -> executor_pb2.ExecuteSubTaskRequest:  # type: ignore[no-untyped-def]
    return executor_pb2.ExecuteSubTaskRequest(
        swarm_id="s1",
        subtask=common_pb2.SubTask(id=sid, instruction="sleep", labels={"sleep": str(sleep)}),
        config=common_pb2.SwarmConfig(model="replay/x.jsonl"),
        attempt=1,
        **kw,
    )


@pytest.fixture
async def executor_host():  # type: ignore[no-untyped-def]
    CountingSleeper.runs.clear()
    CountingSleeper.stopped.clear()
    plugins = load_plugins(
        [CountingPlugin()],
        env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": "builtin-tools,local,openai,replay,remote"},
    )
    settings = ExecutorSettings(
        default_executor="counting", keepalive_time_secs=0.2, heartbeat_interval_secs=0.05, grace_period_secs=1
    )
    host = ServiceHost("executor", settings)
    await build_executor(host, settings, plugins)
    await host.start()
    yield host
    await host.stop(grace=0)


async def test_idle_stream_survives_frequent_keepalive_pings() -> None:
    """A peer pings every 0.25 s on a stream that carries no data for 6 s; the
    server (on a slower keepalive of its own) accepts the pings."""
    async with ServiceHost("pinged", ServerSettings(keepalive_time_secs=0.4)) as host, ServiceHost(
        "pinging", ServerSettings(keepalive_time_secs=0.25)
    ) as peer:
        channel = peer.channel(host.address)
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        first = await call.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        # Nothing more comes: the stream stays open through ~15 pings.
        reader = asyncio.ensure_future(call.read())
        done, _ = await asyncio.wait({reader}, timeout=6.0)
        assert not done, f"the stream ended: {reader.exception() or reader.result()}"
        call.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_execute_stream_carries_heartbeats_and_dense_sequences(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        replies = [r async for r in stub.ExecuteSubTask(request("a", 0.5), timeout=10)]
    beats = [r for r in replies if r.HasField("heartbeat")]
    others = [r for r in replies if not r.HasField("heartbeat")]
    assert len(beats) >= 3, "a quiet attempt sends heartbeats"
    assert all(b.sequence == 0 and b.heartbeat.last_sequence == 1 and b.heartbeat.interval_ms == 50 for b in beats)
    assert [r.sequence for r in others] == [1, 2]
    assert others[-1].result.success


async def test_attempt_outlives_a_broken_stream_and_is_reattached(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request("a", 0.6, reattach_window_ms=5000), timeout=10)
        first = await call.read()
        assert first.sequence == 1 and first.HasField("event")
        call.cancel()  # the stream breaks mid-attempt
        await asyncio.sleep(0.2)
        attach = stub.AttachSubTask(
            executor_pb2.AttachSubTaskRequest(swarm_id="s1", subtask_id="a", attempt=1, after_sequence=1), timeout=10
        )
        replies = [r.message async for r in attach if not r.message.HasField("heartbeat")]
    assert [r.sequence for r in replies] == [2], "only what was missed is delivered"
    assert replies[0].result.success and replies[0].result.result == "slept"
    assert CountingSleeper.runs == ["a"] and CountingSleeper.stopped == []


async def test_finished_attempt_result_is_collected_after_the_break(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request("a", 0.1, reattach_window_ms=5000), timeout=10)
        await call.read()
        call.cancel()
        await asyncio.sleep(0.5)  # it finishes while nobody watches
        attach = stub.AttachSubTask(
            executor_pb2.AttachSubTaskRequest(swarm_id="s1", subtask_id="a", attempt=1, after_sequence=0), timeout=10
        )
        replies = [r.message async for r in attach if not r.message.HasField("heartbeat")]
    assert [r.sequence for r in replies] == [1, 2]
    assert replies[-1].result.success


async def test_without_a_window_a_broken_stream_stops_the_attempt(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request("a", 5), timeout=10)
        await call.read()
        call.cancel()
        for _ in range(100):
            if CountingSleeper.stopped:
                break
            await asyncio.sleep(0.02)
        assert CountingSleeper.stopped == ["a"]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.AttachSubTask(
                executor_pb2.AttachSubTaskRequest(swarm_id="s1", subtask_id="a", attempt=1), timeout=5
            ):
                pass
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_same_attempt_twice_is_already_exists(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request("a", 1, reattach_window_ms=5000), timeout=10)
        await call.read()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.ExecuteSubTask(request("a", 1), timeout=5):
                pass
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "AttachSubTask" in info.value.details()
        call.cancel()


async def _executor_on(listen: str) -> ServiceHost:
    plugins = load_plugins(
        [CountingPlugin()],
        env={"SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "SWARMD_BLOCK_PLUGINS": "builtin-tools,local,openai,replay,remote"},
    )
    settings = ExecutorSettings(default_executor="counting", listen=listen, grace_period_secs=0)
    host = ServiceHost("executor", settings)
    await build_executor(host, settings, plugins)
    await host.start()
    return host


async def _collect(stream):  # type: ignore[no-untyped-def]
    return [m async for m in stream]


async def test_follower_waits_out_a_restart_and_sends_the_lost_attempt_again() -> None:
    CountingSleeper.runs.clear()
    CountingSleeper.stopped.clear()
    first = await _executor_on("127.0.0.1:0")
    address = first.address
    notices: list[tuple[str, str]] = []
    policy = FollowPolicy(heartbeat_secs=0.05, outage_secs=30, max_backoff_secs=0.3)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        stream = follow_attempt(stub, request("a", 0.5), policy, timeout=30, notice=lambda c, m: notices.append((c, m)))
        first_message = await stream.__anext__()
        assert first_message.HasField("event")
        reading = asyncio.ensure_future(_collect(stream))
        await first.stop(grace=0)  # the executor dies with the attempt
        for _ in range(200):  # the follower notices, and says it waits
            if notices:
                break
            await asyncio.sleep(0.02)
        second = await _executor_on(address)  # and comes back, empty
        try:
            rest = await asyncio.wait_for(reading, 20)
        finally:
            await second.stop(grace=0)
    assert rest[-1].HasField("result") and rest[-1].result.success
    codes = [c for c, _ in notices]
    assert "executor_unavailable" in codes and "executor_lost_attempt" in codes, notices
    assert CountingSleeper.runs == ["a", "a"], "sent again once the executor was back"


async def test_follower_gives_up_after_the_outage_deadline_with_a_transient_failure() -> None:
    host = await _executor_on("127.0.0.1:0")
    address = host.address
    await host.stop(grace=0)
    policy = FollowPolicy(heartbeat_secs=0.05, outage_secs=1.0, max_backoff_secs=0.2)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        messages = [m async for m in follow_attempt(stub, request("a", 0), policy, timeout=30)]
    (only,) = messages
    assert not only.result.success
    assert only.result.failure_kind == common_pb2.FAILURE_KIND_TRANSIENT
    assert "executor unreachable" in only.result.error and "UNAVAILABLE" in only.result.error


async def test_a_new_attempt_of_a_running_subtask_follows_the_running_one(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request("a", 0.6, reattach_window_ms=5000), timeout=10)
        await call.read()
        call.cancel()  # the caller lost track of it (its orchestrator restarted)
        again = request("a", 0.6)
        again.attempt = 2
        replies = [r async for r in stub.ExecuteSubTask(again, timeout=10) if not r.HasField("heartbeat")]
        # A break of that stream is picked up under the attempt number it was asked as.
        attach = stub.AttachSubTask(
            executor_pb2.AttachSubTaskRequest(swarm_id="s1", subtask_id="a", attempt=2, after_sequence=1), timeout=10
        )
        reattached = [r.message async for r in attach if not r.message.HasField("heartbeat")]
    assert [r.sequence for r in replies] == [1, 2]
    assert replies[-1].result.success and replies[-1].result.result == "slept"
    assert [r.sequence for r in reattached] == [2]
    assert CountingSleeper.runs == ["a"] and CountingSleeper.stopped == []


async def test_a_new_attempt_replaces_one_asked_to_cancel(executor_host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(executor_host.address) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        call = stub.ExecuteSubTask(request("a", 5, reattach_window_ms=5000), timeout=10)
        await call.read()
        await stub.CancelSubTask(
            executor_pb2.ExecutorServiceCancelSubTaskRequest(swarm_id="s1", subtask_id="a", reason="timed out"),
            timeout=5,
        )
        call.cancel()
        again = request("a", 0.1)
        again.attempt = 2
        replies = [r async for r in stub.ExecuteSubTask(again, timeout=10) if not r.HasField("heartbeat")]
    assert replies[-1].result.success
    assert CountingSleeper.runs == ["a", "a"]
