"""Every error carries google.rpc.Status details; a request that does not
parse gets INVALID_ARGUMENT (MALFORMED_MESSAGE), never UNKNOWN. Real
servers on loopback, read with grpcio-status as any client would."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    from_rpc_error,
    rich_status,
    status_details,
)
from swarmd.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc

pytestmark = pytest.mark.timeout(60)


def details(status: status_pb2.Status | None) -> dict[str, object]:
    assert status is not None, "the error carries no google.rpc.Status"
    found: dict[str, object] = {}
    for packed in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest,
                     error_details_pb2.PreconditionFailure, error_details_pb2.RetryInfo):
            msg = kind()
            if packed.Unpack(msg):
                found[kind.__name__] = msg
    return found


def test_rich_status_per_kind() -> None:
    bad = details(rich_status(InvalidArgument("config.executor_options: 'x' is an operator setting")))
    assert bad["ErrorInfo"].reason == "INVALID_ARGUMENT" and bad["ErrorInfo"].domain == "swarmd"
    (violation,) = bad["BadRequest"].field_violations
    assert violation.field == "config.executor_options" and "operator setting" in violation.description
    assert details(rich_status(InvalidArgument("plan.subtasks[2].id is empty")))["BadRequest"].field_violations[0].field == (
        "plan.subtasks[2].id"
    )
    state = details(rich_status(FailedPrecondition("swarm 'x' is succeeded; there is nothing to resume")))
    assert state["PreconditionFailure"].violations[0].type == "STATE"
    retry = details(rich_status(Unavailable("store down", retry_delay=1.5)))
    assert retry["RetryInfo"].retry_delay.ToNanoseconds() == 1_500_000_000
    assert "RetryInfo" not in details(rich_status(Unavailable("no hint")))
    internal = details(rich_status(RuntimeError("bug")))
    assert internal["ErrorInfo"].reason == "INTERNAL"
    assert rich_status(NotFound("x", reason="UNKNOWN_SWARM", metadata={"swarm_id": "x"})).code == 5


async def raw(channel: grpc.aio.Channel, method: str, payload: bytes, stream: bool = False) -> grpc.aio.AioRpcError:
    ident = lambda b: b  # noqa: E731 - send and receive bytes as they are
    if stream:
        call = channel.unary_stream(method, request_serializer=ident, response_deserializer=ident)(payload, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call:
                pass
    else:
        call = channel.unary_unary(method, request_serializer=ident, response_deserializer=ident)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(payload, timeout=10)
    return info.value


MALFORMED = {
    "truncated": b"\x0a\x05ab",
    "invalid UTF-8 in a string": b"\x0a\x02\xff\xfe",
    "random bytes": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_requests_are_invalid_argument(tmp_path: Path, payload: bytes) -> None:
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb:
        targets = [
            (emb.orchestrator_address, "/swarmd.v1.OrchestratorService/GetSwarm", False),
            (emb.orchestrator_address, "/swarmd.v1.OrchestratorService/SubmitSwarm", False),
            (emb.orchestrator_address, "/swarmd.v1.OrchestratorService/WatchSwarm", True),
            (emb.orchestrator_address, "/swarmd.v1.OrchestratorService/GetSubTask", False),
            (emb.orchestrator_address, "/swarmd.v1.OrchestratorService/ListSubTasks", False),
            (emb.result_store_address, "/swarmd.v1.ResultStoreService/AppendEvents", False),
            (emb.executor_address, "/swarmd.v1.ExecutorService/ExecuteSubTask", True),
        ]
        for address, method, stream in targets:
            async with grpc.aio.insecure_channel(address) as channel:
                err = await raw(channel, method, payload, stream)
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, err.code(), err.details())
                assert "not a valid" in (err.details() or "")
                info = details(status_details(err))["ErrorInfo"]
                assert info.reason == "MALFORMED_MESSAGE"
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_errors_from_a_live_orchestrator_carry_details(tmp_path: Path, git_repo: Path) -> None:
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb, grpc.aio.insecure_channel(
        emb.orchestrator_address
    ) as channel:
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id="nope"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert details(status_details(missing.value))["ErrorInfo"].reason == "NOT_FOUND"
        assert from_rpc_error(missing.value).reason == "NOT_FOUND"

        cyclic = common_pb2.Plan(subtasks=[
            common_pb2.SubTask(id="a", instruction="a", dependencies=["b"]),
            common_pb2.SubTask(id="b", instruction="b", dependencies=["a"]),
        ])
        config = common_pb2.SwarmConfig(model="replay/none.jsonl", repo_path=str(git_repo))
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.SubmitSwarm(orchestrator_pb2.SubmitSwarmRequest(plan=cyclic, config=config), timeout=30)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        found = details(status_details(bad.value))
        assert found["ErrorInfo"].reason == "INVALID_PLAN"
        (violation,) = found["BadRequest"].field_violations
        assert violation.field == "plan" and "a -> b -> a" in violation.description


async def test_the_python_client_reads_the_details(tmp_path: Path) -> None:
    from swarmd.clients.client import SwarmdClient
    from swarmd.clients.errors import SwarmdClientError

    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(emb.orchestrator_address) as client:
        with pytest.raises(SwarmdClientError) as err:
            await client.submit(task="x", config=common_pb2.SwarmConfig(
                model="replay/none.jsonl", repo_path=str(tmp_path), executor_options={"provider.base_url": "http://x"}
            ))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and err.value.reason == "INVALID_ARGUMENT"
    assert [f for f, _ in err.value.field_violations] == ["config.executor_options"]
