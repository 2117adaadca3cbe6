"""10,000 generated requests across every RPC of every swarmd service.

The three services run embedded on loopback (model calls pointed at a closed
loopback port, so nothing leaves the machine). Hypothesis draws an RPC and a
request for it from the request's descriptor, well-formed or damaged on the
wire; each is sent as raw bytes with a deadline. No answer may be UNKNOWN or
INTERNAL (an unhandled server error), a call that cannot wait may not run
into its deadline, and at the end every service still answers health checks
and a plain request.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_fuzz import Method, chunks, damaged, message_strategy, methods_of

from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.v1 import coordinator_pb2, executor_pb2, orchestrator_pb2, result_store_pb2

pytestmark = pytest.mark.timeout(900)

#: How many requests (SWARMD_FUZZ_MESSAGES runs a longer or shorter campaign).
MESSAGES = int(os.environ.get("SWARMD_FUZZ_MESSAGES", "10000"))
DEADLINE = 5.0
#: The deadline of an RPC that may wait by design (below): it only has to
#: answer or keep waiting without harm, so it is not waited for long.
WAIT_DEADLINE = 1.0
#: RPCs that may legitimately wait past a short deadline (they wait for
#: something by design: a result, a permit, a running subtask, a check).
MAY_WAIT = {
    "/swarmd.v1.ResultStoreService/WaitForResult",
    "/swarmd.v1.OrchestratorService/WatchSwarm",
    "/swarmd.v1.OrchestratorService/SubmitSwarm",
    "/swarmd.v1.CoordinatorService/AcquirePermit",
    "/swarmd.v1.CoordinatorService/ClaimVariant",
    "/swarmd.v1.ExecutorService/ExecuteSubTask",
    "/swarmd.v1.ExecutorService/AttachSubTask",
    "/swarmd.v1.ExecutorService/SampleBranch",
    "/swarmd.v1.ExecutorService/CheckModel",
}
SERVICES = {
    "orchestrator": (orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"],
                     coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"]),
    "executor": (executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"],),
    "result-store": (result_store_pb2.DESCRIPTOR.services_by_name["ResultStoreService"],),
}


class Served:
    """EmbeddedSwarmd on its own event loop in a thread, so hypothesis can
    drive it from plain synchronous test code."""

    def __init__(self, tmp: Path) -> None:
        config = Settings()
        # Every model call goes to a closed loopback port.
        config.executor.options = {"provider.base_url": "http://127.0.0.1:9/v1", "provider.timeout": "1"}
        self.emb = EmbeddedSwarmd(config, db_path=tmp / "fuzz.db")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.emb.start(), self.loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.emb.stop(), self.loop).result(120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def addresses(self) -> dict[str, str]:
        return {
            "orchestrator": self.emb.orchestrator_address,
            "executor": self.emb.executor_address,
            "result-store": self.emb.result_store_address,
        }


def ident(b: bytes) -> bytes:
    return b


def call(channel: grpc.Channel, method: Method, payload: bytes, count: int) -> grpc.StatusCode:
    kw = {"request_serializer": ident, "response_deserializer": ident}
    deadline = WAIT_DEADLINE if method.path in MAY_WAIT else DEADLINE
    try:
        if method.client_streaming and method.server_streaming:
            for _ in channel.stream_stream(method.path, **kw)(chunks(payload, count), timeout=deadline):
                pass
        elif method.client_streaming:
            channel.stream_unary(method.path, **kw)(chunks(payload, count), timeout=deadline)
        elif method.server_streaming:
            for _ in channel.unary_stream(method.path, **kw)(payload, timeout=deadline):
                pass
        else:
            channel.unary_unary(method.path, **kw)(payload, timeout=deadline)
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def fuzzed_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, grpc.Channel], Path]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    repo = tmp / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("fuzz\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], check=True
    )
    with Served(tmp) as served:
        channels = {kind: grpc.insecure_channel(address) for kind, address in served.addresses().items()}
        try:
            yield channels, repo
        finally:
            for channel in channels.values():
                channel.close()


def targets() -> list[tuple[str, Method]]:
    return [(kind, m) for kind, services in SERVICES.items() for m in methods_of(*services)]


TARGETS = targets()


def test_every_rpc_is_in_the_fuzzer() -> None:
    names = {m.path.rsplit("/", 1)[1] for _, m in TARGETS}
    assert {"SubmitSwarm", "AcquirePermit", "ExecuteSubTask", "PutBlob", "AppendEvents", "SampleBranch"} <= names
    for module in (orchestrator_pb2, coordinator_pb2, executor_pb2, result_store_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            assert any(m.path.startswith(f"/{service.full_name}/") for _, m in TARGETS), service.full_name


def test_ten_thousand_generated_requests_get_no_unknown_or_internal(fuzzed_services) -> None:  # type: ignore[no-untyped-def]
    channels, repo = fuzzed_services
    extra = (str(repo), str(repo / "README.md"))
    seen: Counter[tuple[str, str]] = Counter()
    bad: list[str] = []

    @st.composite
    def request(draw):  # type: ignore[no-untyped-def]
        kind, method = draw(st.sampled_from(TARGETS))
        payload = draw(message_strategy(method.input, extra)).SerializeToString()
        if draw(st.integers(0, 4)) == 0:
            payload = draw(damaged(payload))
        return kind, method, payload, draw(st.integers(1, 3))

    @settings(
        max_examples=MESSAGES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(request())
    def send(req) -> None:  # type: ignore[no-untyped-def]
        kind, method, payload, count = req
        code = call(channels[kind], method, payload, count)
        seen[(method.path, code.name)] += 1
        if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
            bad.append(f"{method.path} -> {code.name} for {payload[:200]!r}")
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED and method.path not in MAY_WAIT:
            bad.append(f"{method.path} ran into its {DEADLINE} s deadline for {payload[:200]!r}")
        assert not bad, bad[-1]

    send()
    total = sum(seen.values())
    assert total >= MESSAGES
    covered = {path for path, _ in seen}
    assert covered == {m.path for _, m in TARGETS}, "an RPC was never fuzzed"
    for kind, channel in channels.items():
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, kind
    listed = channels["orchestrator"].unary_unary(
        "/swarmd.v1.OrchestratorService/ListSwarms",
        request_serializer=orchestrator_pb2.ListSwarmsRequest.SerializeToString,
        response_deserializer=orchestrator_pb2.ListSwarmsResponse.FromString,
    )(orchestrator_pb2.ListSwarmsRequest(page_size=5), timeout=10)
    assert len(listed.swarms) <= 5
