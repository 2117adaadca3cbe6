"""Every RPC of every service, called with bad credentials: none accepted.

The methods come from the service descriptors, so a new RPC is covered (and
must be listed in the policy table) without touching this file. The services
are real: the result store, the executor and the orchestrator on loopback,
with authentication on, and one finished swarm of tenant A to aim at.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from fakes.auth_world import AuthWorld, bearer, make_world, serve_with_auth, status_of, token_of
from fakes.swarm_services import fast_config, plan, subtask
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.auth.identity import SUBAGENT
from swarmd.services.auth.policy import POLICY
from swarmd.v1 import (
    common_pb2,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    result_store_pb2,
    result_store_pb2_grpc,
)

pytestmark = pytest.mark.timeout(120)
#: The async tests share the module's event loop, where the services of ``target`` run.
in_module_loop = pytest.mark.asyncio(loop_scope="module")

#: Which server serves each swarmd.v1 service (one missing here fails a test below).
HOSTS = {
    "OrchestratorService": "orchestrator",
    "CoordinatorService": "orchestrator",
    "ExecutorService": "executor",
    "ResultStoreService": "result-store",
}


def swarmd_services() -> list[ServiceDescriptor]:
    """Every service of every swarmd.v1 proto module, found by import."""
    import swarmd.v1

    found = []
    for info in pkgutil.iter_modules(swarmd.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"swarmd.v1.{info.name}")
            found.extend(module.DESCRIPTOR.services_by_name.values())
    return found


SERVICES = swarmd_services()
METHODS = [(HOSTS.get(service.name, ""), method) for service in SERVICES for method in service.methods]


def rpc(service: str, name: str) -> MethodDescriptor:
    """One RPC by its service's name and its own."""
    return next(m for s in SERVICES if s.name == service for m in s.methods if m.name == name)
#: Public RPCs that any client may call without naming an existing swarm.
UNSCOPED_PUBLIC = {"SubmitSwarm", "ListSwarms"}
#: RPCs a sub-agent's runtime makes without naming its swarm: rows named by
#: their content's hash, and an executor's capacity.
CONTENT_ADDRESSED = {"CacheGet", "CachePut", "PutBlob", "GetBlob", "Describe"}


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass
class Target:
    services: EmbeddedSwarmd
    world: AuthWorld
    swarm_id: str
    subtask_id: str
    channels: dict[str, grpc.aio.Channel]

    def request(self, method: MethodDescriptor) -> Any:
        message = message_factory.GetMessageClass(method.input_type)()
        fields = method.input_type.fields_by_name
        for name in ("swarm_id", "scope"):
            if name in fields:
                setattr(message, name, self.swarm_id)
        if "subtask_id" in fields:
            message.subtask_id = self.subtask_id
        if "subtask" in fields and fields["subtask"].message_type is not None:
            message.subtask.id = self.subtask_id
        return message

    def call(self, host: str, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
        channel = self.channels[host]
        request = self.request(method)
        kwargs: dict[str, Any] = {"timeout": 10, "metadata": metadata or None}
        ser, de = (lambda m: m.SerializeToString()), (lambda b: b)
        if method.client_streaming:
            return channel.stream_unary(path_of(method), ser, de)(iter([request]), **kwargs)
        if method.server_streaming:
            return channel.unary_stream(path_of(method), ser, de)(request, **kwargs)
        return channel.unary_unary(path_of(method), ser, de)(request, **kwargs)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    """The services with authentication on and one finished swarm of tenant A,
    shared by the tests of this module (they only read it, or are refused)."""
    tmp_path = tmp_path_factory.mktemp("auth-rpcs")
    world = make_world(tmp_path / "auth")
    async with serve_with_auth(world, tmp_path) as services:
        addresses = {
            "orchestrator": services.orchestrator_address,
            "executor": services.executor_address,
            "result-store": services.result_store_address,
        }
        channels = {k: grpc.aio.insecure_channel(v) for k, v in addresses.items()}
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channels["orchestrator"])
        reply = await stub.SubmitSwarm(
            orchestrator_pb2.SubmitSwarmRequest(task="t", plan=plan(subtask("only")), config=fast_config()),
            metadata=bearer(token_of("alice")),
            timeout=20,
        )
        deadline = time.monotonic() + 20
        while reply.swarm.state not in (common_pb2.SWARM_STATE_SUCCEEDED, common_pb2.SWARM_STATE_FAILED):
            assert time.monotonic() < deadline
            got = await stub.GetSwarm(
                orchestrator_pb2.GetSwarmRequest(swarm_id=reply.swarm.id), metadata=bearer(token_of("alice")), timeout=5
            )
            reply.swarm.CopyFrom(got.swarm)
        assert reply.swarm.tenant == "tenant-a"
        try:
            yield Target(services, world, reply.swarm.id, "only", channels)
        finally:
            for channel in channels.values():
                await channel.close()


def expired_jwt(world: AuthWorld) -> str:
    return world.keys.sign(
        {"sub": "alice", "swarmd_role": "client", "swarmd_tenant": "tenant-a", "exp": int(time.time()) - 3600}
    )


def test_every_service_is_served_somewhere() -> None:
    assert {s.name for s in SERVICES} >= {"OrchestratorService", "ExecutorService", "ResultStoreService"}
    unknown = [s.full_name for s in SERVICES if s.name not in HOSTS]
    assert not unknown, f"say in HOSTS which server serves {unknown}"


def test_every_rpc_is_in_the_policy_table() -> None:
    missing = [path_of(m) for _, m in METHODS if path_of(m) not in POLICY]
    assert not missing, f"add these RPCs to swarmd.services.auth.policy.POLICY: {missing}"
    stale = [p for p in POLICY if p.startswith("/swarmd.") and p not in {path_of(m) for _, m in METHODS}]
    assert not stale, f"the policy table names RPCs that no longer exist: {stale}"


CASES = ("no token", "wrong token", "not bearer", "expired jwt", "other tenant", "subagent of another swarm")


def expected_code(host: str, method: MethodDescriptor, case: str) -> grpc.StatusCode | None:
    """What ``case`` must get from ``method``; None where the case does not apply."""
    if case in ("no token", "wrong token", "not bearer", "expired jwt"):
        return grpc.StatusCode.UNAUTHENTICATED
    if case == "other tenant":
        if method.name in UNSCOPED_PUBLIC:
            return None  # any client may submit and list (its own swarms, see below)
        public = "client" in POLICY[path_of(method)].roles
        return grpc.StatusCode.NOT_FOUND if public and host == "orchestrator" else grpc.StatusCode.PERMISSION_DENIED
    return None if method.name in CONTENT_ADDRESSED else grpc.StatusCode.PERMISSION_DENIED


def credentials(target: Target, case: str) -> tuple[tuple[str, str], ...]:
    world = target.world
    return {
        "no token": (),
        "wrong token": bearer("swarmd_not_a_token"),
        "not bearer": (("authorization", "Basic YWxpY2U6eA=="),),
        "expired jwt": bearer(expired_jwt(world)),
        "other tenant": bearer(token_of("bob")),
        "subagent of another swarm": bearer(world.subagent_token(str(uuid.uuid4()), target.subtask_id)),
    }[case]


#: Every (service, RPC, credentials) the matrix calls, with the code it must get.
MATRIX = [
    pytest.param(host, method, case, code, id=f"{path_of(method).lstrip('/')}-{case.replace(' ', '_')}")
    for host, method in METHODS
    for case in CASES
    if (code := expected_code(host, method, case)) is not None
]


@in_module_loop
@pytest.mark.parametrize(("host", "method", "case", "expected"), MATRIX)
async def test_bad_credentials_are_refused(
    target: Target, host: str, method: MethodDescriptor, case: str, expected: grpc.StatusCode
) -> None:
    code = await status_of(target.call(host, method, credentials(target, case)))
    assert code == expected, f"{path_of(method)} with {case}: {code.name}, expected {expected.name}"


def test_the_refusals_cover_every_rpc() -> None:
    """Only the documented exceptions are left out of the matrix above."""
    left_out = {(m.name, c) for h, m in METHODS for c in CASES if expected_code(h, m, c) is None}
    assert left_out == {(n, "other tenant") for n in UNSCOPED_PUBLIC} | {
        (n, "subagent of another swarm") for n in CONTENT_ADDRESSED
    }


def test_only_content_addressed_rpcs_leave_the_swarm_unchecked() -> None:
    """A sub-agent may call an RPC without a swarm check only where rows are
    named by their content's hash (or nothing of a swarm is told); any other
    such row is a hole."""
    unchecked = {
        path.rsplit("/", 1)[-1]
        for path, rule in POLICY.items()
        if SUBAGENT in rule.roles and not rule.swarm_field and path.startswith("/swarmd.")
    }
    assert unchecked == CONTENT_ADDRESSED


@in_module_loop
async def test_subagent_token_is_confined_to_its_subtask(target: Target) -> None:
    host, method = next((h, m) for h, m in METHODS if m.name == "ReserveBudget")
    own = target.world.subagent_token(target.swarm_id, target.subtask_id)
    sibling = target.world.subagent_token(target.swarm_id, "another-subtask")
    expired = target.world.subagent_token(target.swarm_id, target.subtask_id, ttl=-5)
    assert await status_of(target.call(host, method, bearer(sibling))) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(target.call(host, method, bearer(expired))) == grpc.StatusCode.UNAUTHENTICATED
    # Forwarding an attempt to another executor: its own subtask only.
    execute = rpc("ExecutorService", "ExecuteSubTask")
    assert await status_of(target.call("executor", execute, bearer(sibling))) == grpc.StatusCode.PERMISSION_DENIED
    # Its own subtask gets past authorization (the finished swarm has no budget left to reserve).
    assert await status_of(target.call(host, method, bearer(own))) not in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    )
    tampered = own[:-3] + ("AAA" if not own.endswith("AAA") else "BBB")
    assert await status_of(target.call(host, method, bearer(tampered))) == grpc.StatusCode.UNAUTHENTICATED
    # Shared results of its own swarm: past authorization (the request names no key); a sub-agent cannot read a client's view of the swarm.
    get_result = rpc("ResultStoreService", "GetResult")
    assert await status_of(target.call("result-store", get_result, bearer(own))) == grpc.StatusCode.INVALID_ARGUMENT
    # A scope under its swarm's (a pod's relay) is its swarm's; under another's, not.
    stub = result_store_pb2_grpc.ResultStoreServiceStub(target.channels["result-store"])
    for scope, expected in ((f"{target.swarm_id}/pod/p1", grpc.StatusCode.OK),
                            (f"{uuid.uuid4()}/pod/p1", grpc.StatusCode.PERMISSION_DENIED),
                            (f"{target.swarm_id}x/pod/p1", grpc.StatusCode.PERMISSION_DENIED)):
        listing = stub.ListResults(result_store_pb2.ListResultsRequest(scope=scope), metadata=bearer(own), timeout=5)
        assert await status_of(listing) == expected, scope
    get_swarm = rpc("OrchestratorService", "GetSwarm")
    assert await status_of(target.call("orchestrator", get_swarm, bearer(own))) == grpc.StatusCode.PERMISSION_DENIED


@in_module_loop
async def test_another_tenant_cannot_tell_a_swarm_exists(target: Target) -> None:
    stub = orchestrator_pb2_grpc.OrchestratorServiceStub(target.channels["orchestrator"])
    bob, alice, root = bearer(token_of("bob")), bearer(token_of("alice")), bearer(token_of("root"))
    unknown = str(uuid.uuid4())
    errors = {}
    for swarm_id in (target.swarm_id, unknown):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=swarm_id), metadata=bob, timeout=5)
        errors[swarm_id] = (info.value.code(), info.value.details().replace(swarm_id, "ID"))
    assert errors[target.swarm_id] == errors[unknown] == (grpc.StatusCode.NOT_FOUND, "unknown swarm 'ID'")

    listed = await stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), metadata=bob, timeout=5)
    assert [s.id for s in listed.swarms] == []
    listed = await stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), metadata=alice, timeout=5)
    assert [s.id for s in listed.swarms] == [target.swarm_id]
    listed = await stub.ListSwarms(orchestrator_pb2.ListSwarmsRequest(), metadata=root, timeout=5)
    assert target.swarm_id in [s.id for s in listed.swarms]
    got = await stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=target.swarm_id), metadata=root, timeout=5)
    assert got.swarm.tenant == "tenant-a"

    # The same idempotency key in two tenants makes two swarms, not one shared.
    request = orchestrator_pb2.SubmitSwarmRequest(
        task="t", plan=plan(subtask("only")), config=fast_config(), request_id="same-key"
    )
    mine = await stub.SubmitSwarm(request, metadata=alice, timeout=20)
    theirs = await stub.SubmitSwarm(request, metadata=bob, timeout=20)
    assert mine.swarm.id != theirs.swarm.id and theirs.swarm.tenant == "tenant-b"


@in_module_loop
async def test_health_is_open_unless_configured(target: Target, tmp_path: Path) -> None:
    health = health_pb2_grpc.HealthStub(target.channels["result-store"])
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    world = make_world(tmp_path / "closed", authenticate_health=True)
    async with serve_with_auth(world, tmp_path / "closed") as closed:
        async with grpc.aio.insecure_channel(closed.result_store_address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert await status_of(stub.Check(health_pb2.HealthCheckRequest(), timeout=5)) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
            check = stub.Check(health_pb2.HealthCheckRequest(), timeout=5, metadata=bearer(token_of("bob")))
            assert await status_of(check) == grpc.StatusCode.OK


@in_module_loop
async def test_the_cache_is_one_per_tenant(target: Target) -> None:
    stub = result_store_pb2_grpc.ResultStoreServiceStub(target.channels["result-store"])
    key = "ab" * 32
    entry = result_store_pb2.CacheEntry(key=key, result=common_pb2.SubTaskResult(result="tenant a's answer", success=True))
    mine = bearer(target.world.subagent_token(target.swarm_id, target.subtask_id, tenant="tenant-a"))
    theirs = bearer(target.world.subagent_token(str(uuid.uuid4()), "x", tenant="tenant-b"))
    await stub.CachePut(result_store_pb2.CachePutRequest(entry=entry), metadata=mine, timeout=5)
    hit = await stub.CacheGet(result_store_pb2.CacheGetRequest(key=key), metadata=mine, timeout=5)
    assert hit.hit and hit.entry.key == key and hit.entry.result.result == "tenant a's answer"
    miss = await stub.CacheGet(result_store_pb2.CacheGetRequest(key=key), metadata=theirs, timeout=5)
    assert not miss.hit
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CacheGet(result_store_pb2.CacheGetRequest(key="not hex"), metadata=mine, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
