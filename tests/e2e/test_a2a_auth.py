"""The A2A gateway with the services' authentication settings, over a real
socket: the three services (embedded, real gRPC, authentication on) behind
a gateway configured with the same token file and JWKS. Missing or bad
credentials are 401 with a challenge, a role that may not use the gateway
403, and each caller's tenant holds through A2A."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from a2a.client import ClientConfig, create_client
from a2a.types import a2a_pb2
from a2a.utils.errors import TaskNotFoundError
from fakes.auth_world import AuthWorld, make_world, serve_with_auth, token_of
from google.protobuf import json_format, struct_pb2

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.a2a.repositories import Repositories, Repository
from swarmd.services.a2a.server import A2AGateway, GatewaySettings
from swarmd.services.auth.settings import AuthSettings, JwtSettings

pytestmark = pytest.mark.timeout(120)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "demo"
CARD = "/.well-known/agent-card.json"


def demo_request() -> a2a_pb2.SendMessageRequest:
    plan = yaml.safe_load((EXAMPLES / "plan.yaml").read_text())
    msg = a2a_pb2.Message(message_id=str(uuid.uuid4()), role=a2a_pb2.ROLE_USER, parts=[
        a2a_pb2.Part(data=json_format.ParseDict({"plan": plan}, struct_pb2.Value()), media_type="application/json")
    ])
    msg.metadata.update({"repository": "calc", "model": f"replay/{EXAMPLES / 'cassette.jsonl'}"})
    return a2a_pb2.SendMessageRequest(message=msg, configuration=a2a_pb2.SendMessageConfiguration(return_immediately=False))


@contextlib.asynccontextmanager
async def gateway(embedded: EmbeddedSwarmd, repo: Path, auth: AuthSettings, **kw: Any) -> AsyncIterator[A2AGateway]:
    settings = GatewaySettings(
        orchestrator=embedded.orchestrator_address, repositories=Repositories([Repository("calc", repo)]),
        auth=auth, orchestrator_token="", **kw,
    )
    async with A2AGateway(settings) as gw:
        yield gw


@contextlib.asynccontextmanager
async def sdk_client(url: str, token: str, *, streaming: bool = False) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
        client = await create_client(url, ClientConfig(httpx_client=http, streaming=streaming))
        try:
            yield client
        finally:
            await client.close()


def get_task(task_id: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task_id}}


def client_jwt(world: AuthWorld, tenant: str) -> str:
    return world.keys.sign({"sub": f"jwt-{tenant}", "swarmd_role": "client", "swarmd_tenant": tenant})


async def test_callers_are_authenticated_authorized_and_kept_to_their_tenant(tmp_path: Path, calc_repo: Path) -> None:
    world = make_world(tmp_path / "auth")
    async with serve_with_auth(world, tmp_path) as embedded:
        async with gateway(embedded, calc_repo, world.settings) as gw, httpx.AsyncClient(timeout=30) as http:
            # The card is public and declares the scheme.
            card_reply = await http.get(gw.url + CARD)
            assert card_reply.status_code == 200
            card = json_format.ParseDict(card_reply.json(), a2a_pb2.AgentCard())
            assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
            assert [list(r.schemes) for r in card.security_requirements] == [["bearer"]]

            missing = await http.post(gw.url + "/", json=get_task("x"))
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="swarmd"'
            for bad in ("Bearer swarmd_nobody_listed_this", "Basic dXNlcjpwYXNz", "Bearer a.b.c"):
                reply = await http.post(gw.url + "/", json=get_task("x"), headers={"Authorization": bad})
                assert reply.status_code == 401, bad
                assert reply.headers["www-authenticate"].startswith('Bearer realm="swarmd"'), bad
            invalid = await http.get(gw.url + "/rest/tasks/x", headers={"Authorization": "Bearer swarmd_nope"})
            assert invalid.status_code == 401 and 'error="invalid_token"' in invalid.headers["www-authenticate"]
            # Valid tokens of roles that may not use the gateway.
            for who in ("services", "subagent"):
                token = world.subagent_token("s", "t") if who == "subagent" else token_of(who)
                reply = await http.post(gw.url + "/", json=get_task("x"), headers={"Authorization": f"Bearer {token}"})
                assert reply.status_code == 403, who
                assert 'error="insufficient_scope"' in reply.headers["www-authenticate"], who
                assert "may not use the A2A gateway" in reply.json()["error"]

            # Alice runs the demo plan through A2A, streamed: the swarm is her tenant's.
            async with sdk_client(gw.url, token_of("alice"), streaming=True) as alice:
                responses = [r async for r in alice.send_message(demo_request())]
                task = responses[0].task
                final = responses[-1].status_update
                assert final.task_id == task.id and final.status.state == a2a_pb2.TASK_STATE_COMPLETED, final
                assert (await alice.get_task(a2a_pb2.GetTaskRequest(id=task.id))).id == task.id
                listed = await alice.list_tasks(a2a_pb2.ListTasksRequest())
                assert [t.id for t in listed.tasks] == [task.id]
            listing = await http.get(gw.url + "/rest/tasks", headers={
                "Authorization": f"Bearer {token_of('alice')}", "A2A-Version": "1.0"})
            assert listing.status_code == 200 and [t["id"] for t in listing.json()["tasks"]] == [task.id]
            async with SwarmdClient(embedded.orchestrator_address, token=token_of("root")) as root:
                assert (await root.get(task.id)).tenant == "tenant-a"

            # Bob (another tenant) cannot see, list or cancel it.
            async with sdk_client(gw.url, token_of("bob")) as bob:
                with pytest.raises(TaskNotFoundError):
                    await bob.get_task(a2a_pb2.GetTaskRequest(id=task.id))
                with pytest.raises(TaskNotFoundError):
                    await bob.cancel_task(a2a_pb2.CancelTaskRequest(id=task.id))
                assert list((await bob.list_tasks(a2a_pb2.ListTasksRequest())).tasks) == []
            # A JWT of tenant-a sees it, one of tenant-b does not; an admin sees it.
            async with sdk_client(gw.url, client_jwt(world, "tenant-a")) as jwt_a:
                assert (await jwt_a.get_task(a2a_pb2.GetTaskRequest(id=task.id))).id == task.id
            async with sdk_client(gw.url, client_jwt(world, "tenant-b")) as jwt_b:
                with pytest.raises(TaskNotFoundError):
                    await jwt_b.get_task(a2a_pb2.GetTaskRequest(id=task.id))
            async with sdk_client(gw.url, token_of("root")) as admin:
                assert (await admin.get_task(a2a_pb2.GetTaskRequest(id=task.id))).id == task.id


async def test_a_private_card_and_an_oidc_issuer_on_the_card(tmp_path: Path, calc_repo: Path) -> None:
    world = make_world(tmp_path / "auth")
    async with serve_with_auth(world, tmp_path) as embedded:
        async with gateway(embedded, calc_repo, world.settings, public_card=False) as gw:
            async with httpx.AsyncClient(timeout=30) as http:
                assert (await http.get(gw.url + CARD)).status_code == 401
                alice = {"Authorization": f"Bearer {token_of('alice')}"}
                assert (await http.get(gw.url + CARD, headers=alice)).status_code == 200
        # An issuer found by discovery (down here: the card does not need it).
        oidc = AuthSettings(jwt=JwtSettings(issuer="http://127.0.0.1:9/realms/swarmd", audience="swarmd"))
        async with gateway(embedded, calc_repo, oidc) as gw, httpx.AsyncClient(timeout=30) as http:
            card = json_format.ParseDict((await http.get(gw.url + CARD)).json(), a2a_pb2.AgentCard())
            scheme = card.security_schemes["oidc"].open_id_connect_security_scheme
            assert scheme.open_id_connect_url == "http://127.0.0.1:9/realms/swarmd/.well-known/openid-configuration"
            assert {s for r in card.security_requirements for s in r.schemes} == {"bearer", "oidc"}
            # Its tokens cannot verify until the keys load: 401, not a crash.
            reply = await http.post(gw.url + "/", json=get_task("x"),
                                    headers={"Authorization": f"Bearer {client_jwt(world, 'tenant-a')}"})
            assert reply.status_code == 401 and "not loaded" in json.loads(reply.text)["error"]


def test_the_gateway_reads_its_auth_section_from_the_environment(tmp_path: Path) -> None:
    from swarmd.services.config import load_settings

    settings = load_settings(env={
        "SWARMD_A2A__AUTH__TOKEN_FILE": str(tmp_path / "tokens.yaml"),
        "SWARMD_A2A__PUBLIC_CARD": "false",
        "SWARMD_A2A_TOKENS": "not-a-setting",
    })
    assert settings.a2a.auth.configured and not settings.a2a.public_card
    assert not settings.orchestrator.auth.configured
