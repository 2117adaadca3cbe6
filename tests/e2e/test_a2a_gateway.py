"""swarmd as an A2A agent: the SDK's own client against ``A2AGateway`` on an
ephemeral port, with the three real services (embedded, real gRPC) behind it.

The demo plan runs on the replay cassette; the runs that must stay in
flight (resubscription, cancellation) use the fake OpenAI-compatible server
with slow answers, the only stand-in (for a model that cannot run here).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError, UnsupportedOperationError
from fakes.fake_openai_server import FakeOpenAIServer, reply_text
from google.protobuf import json_format, struct_pb2
from starlette.applications import Starlette

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.a2a.events import progress_line
from swarmd.services.a2a.repositories import Repositories, Repository
from swarmd.services.a2a.server import A2AGateway, GatewaySettings
from swarmd.services.config import Settings

pytestmark = pytest.mark.timeout(120)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "demo"
FAKE_MODEL = "openai/fake-model"


def message(*parts: a2a_pb2.Part, **metadata: Any) -> a2a_pb2.SendMessageRequest:
    msg = a2a_pb2.Message(message_id=str(uuid.uuid4()), role=a2a_pb2.ROLE_USER, parts=list(parts))
    msg.metadata.update(metadata)
    return a2a_pb2.SendMessageRequest(message=msg)


def data_part(value: Any) -> a2a_pb2.Part:
    return a2a_pb2.Part(data=json_format.ParseDict(value, struct_pb2.Value()), media_type="application/json")


def payload(response: a2a_pb2.StreamResponse) -> tuple[str, Any]:
    kind = response.WhichOneof("payload")
    return kind, getattr(response, kind)


@contextlib.asynccontextmanager
async def services(tmp_path: Path, model_url: str = "") -> AsyncIterator[EmbeddedSwarmd]:
    settings = Settings()
    if model_url:
        settings.executor.options = {"provider.base_url": model_url, "provider.api_key": "test-key"}
    async with EmbeddedSwarmd(settings, db_path=tmp_path / "swarmd.db") as embedded:
        yield embedded


@contextlib.asynccontextmanager
async def gateway(embedded: EmbeddedSwarmd, repo: Path, **kw: Any) -> AsyncIterator[A2AGateway]:
    settings = GatewaySettings(
        orchestrator=embedded.orchestrator_address, repositories=Repositories([Repository("calc", repo)]), **kw
    )
    async with A2AGateway(settings) as gw:
        yield gw


@contextlib.asynccontextmanager
async def sdk_client(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        client = await create_client(url, ClientConfig(httpx_client=http))
        try:
            yield client
        finally:
            await client.close()


def demo_request(**metadata: Any) -> a2a_pb2.SendMessageRequest:
    plan = yaml.safe_load((EXAMPLES / "plan.yaml").read_text())
    model = f"replay/{EXAMPLES / 'cassette.jsonl'}"
    return message(data_part({"plan": plan}), repository="calc", model=model, **metadata)


def slow_plan(*ids: str) -> dict[str, Any]:
    """Subtasks in a chain, each read-only and answering after one slow model call."""
    subtasks = []
    for index, sid in enumerate(ids):
        subtasks.append({
            "id": sid, "instruction": f"Report on part {sid}.", "read_only": True,
            "dependencies": [ids[index - 1]] if index else [],
        })
    return {"task": "Report on the parts", "subtasks": subtasks}


async def test_a_plan_streams_to_completion_with_artifacts(tmp_path: Path, calc_repo: Path) -> None:
    async with services(tmp_path) as embedded, gateway(embedded, calc_repo) as gw, sdk_client(gw.url) as client:
        stream = [payload(r) async for r in client.send_message(demo_request())]
        kinds = [k for k, _ in stream]
        assert kinds[0] == "task" and kinds[-1] == "status_update"
        task_id = stream[0][1].id
        statuses = [body for kind, body in stream if kind == "status_update"]
        assert all(s.task_id == task_id for s in statuses)
        assert {s.status.state for s in statuses[:-1]} == {a2a_pb2.TASK_STATE_WORKING}
        assert statuses[-1].status.state == a2a_pb2.TASK_STATE_COMPLETED
        sequences = [int(s.metadata["swarmd.sequence"]) for s in statuses]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        assert any(s.status.message.parts[0].text.startswith("[swarm] subtask id=ops tool=") for s in statuses)

        artifacts = {body.artifact.artifact_id: body.artifact for kind, body in stream if kind == "artifact_update"}
        assert set(artifacts) == {f"subtask-{s}" for s in ("ops", "parser", "cli", "review", "docs")} | {"swarm-result"}
        assert kinds.index("artifact_update") < len(kinds) - 2, "subtask artifacts come as subtasks finish"
        ops = artifacts["subtask-ops"]
        text, patch, data = ops.parts
        assert text.text
        assert patch.media_type == "text/x-diff" and patch.filename == "ops.patch"
        assert b"+++ b/src/calc/ops.py" in patch.raw
        result = json_format.MessageToDict(data.data)
        assert result["status"] == "completed" and result["merge"]["outcome"] == "MERGE_OUTCOME_MERGED"
        assert result["tool_calls"] >= 1
        review_parts = artifacts["subtask-review"].parts
        assert not any(p.WhichOneof("content") == "raw" for p in review_parts), "a read-only subtask has no patch"
        final_text, stats = artifacts["swarm-result"].parts
        assert "=== Subtask" in final_text.text
        assert json_format.MessageToDict(stats.data)["stats"]["subagents_completed"] == 5
        assert (calc_repo / "src" / "calc" / "ops.py").exists()

        got = await client.get_task(a2a_pb2.GetTaskRequest(id=task_id))
        assert got.status.state == a2a_pb2.TASK_STATE_COMPLETED
        assert {a.artifact_id for a in got.artifacts} == set(artifacts)
        context_id = got.context_id
        assert context_id and stream[0][1].context_id == context_id

    # A new gateway (the old one is gone) serves the same task: it lives in the orchestrator.
    async with services(tmp_path) as embedded, gateway(embedded, calc_repo) as gw, sdk_client(gw.url) as client:
        again = await client.get_task(a2a_pb2.GetTaskRequest(id=task_id))
        assert again.context_id == context_id and again.status.state == a2a_pb2.TASK_STATE_COMPLETED
        assert {a.artifact_id for a in again.artifacts} == set(artifacts)


async def test_resubscribing_after_a_disconnect_loses_and_repeats_nothing(tmp_path: Path, calc_repo: Path) -> None:
    async with FakeOpenAIServer() as model:
        model.fallback = lambda request: reply_text("part reported", delay=0.3)
        async with services(tmp_path, model.base_url) as embedded, gateway(embedded, calc_repo) as gw:
            request = message(data_part(slow_plan("a", "b", "c", "d")), repository="calc", model=FAKE_MODEL)
            first: list[tuple[str, Any]] = []
            async with sdk_client(gw.url) as client:
                stream = client.send_message(request)
                async with contextlib.aclosing(stream):
                    async for response in stream:
                        first.append(payload(response))
                        if first[-1][0] == "artifact_update":
                            break  # the first subtask has finished: drop the connection
            task_id = first[0][1].id
            assert first[-1][1].artifact.artifact_id == "subtask-a"

            async with sdk_client(gw.url) as client:
                second = [payload(r) async for r in client.subscribe(a2a_pb2.SubscribeToTaskRequest(id=task_id))]
            kind, snapshot = second[0]
            assert kind == "task" and snapshot.id == task_id
            after = int(snapshot.metadata["swarmd.last_sequence"])
            assert second[-1][1].status.state == a2a_pb2.TASK_STATE_COMPLETED

            # Every artifact exactly once: in the snapshot or as an update after it.
            seen = [a.artifact_id for a in snapshot.artifacts]
            seen += [body.artifact.artifact_id for kind, body in second[1:] if kind == "artifact_update"]
            assert sorted(seen) == sorted(["subtask-a", "subtask-b", "subtask-c", "subtask-d", "swarm-result"])

            # Every forwarded event after the snapshot exactly once, in order.
            async with SwarmdClient(embedded.orchestrator_address) as swarmd:
                history = [e async for e in swarmd.watch(task_id, history_only=True)]
            expected = [e.sequence for e in history if e.sequence > after and progress_line(e) is not None]
            got = [int(body.metadata["swarmd.sequence"]) for kind, body in second[1:] if kind == "status_update"]
            assert got == expected and expected, (got, expected)
            # The first stream ended before the snapshot; nothing it saw comes again.
            first_seqs = {int(b.metadata["swarmd.sequence"]) for k, b in first if k == "status_update"}
            assert first_seqs and max(first_seqs) <= after


async def test_cancelling_mid_run(tmp_path: Path, calc_repo: Path) -> None:
    async with FakeOpenAIServer() as model:
        model.fallback = lambda request: reply_text("too late", delay=60)
        async with services(tmp_path, model.base_url) as embedded, gateway(embedded, calc_repo) as gw, \
                sdk_client(gw.url) as client:
            request = message(data_part(slow_plan("slow")), repository="calc", model=FAKE_MODEL)
            updates: list[tuple[str, Any]] = []
            task_id = ""
            async for response in client.send_message(request):
                updates.append(payload(response))
                kind, body = updates[-1]
                if kind == "task":
                    task_id = body.id
                if kind == "status_update" and "agent=" in body.status.message.parts[0].text:
                    cancelled = await client.cancel_task(a2a_pb2.CancelTaskRequest(id=task_id))
                    assert cancelled.status.state == a2a_pb2.TASK_STATE_CANCELED
            assert updates[-1][0] == "status_update"
            assert updates[-1][1].status.state == a2a_pb2.TASK_STATE_CANCELED
            got = await client.get_task(a2a_pb2.GetTaskRequest(id=task_id))
            assert got.status.state == a2a_pb2.TASK_STATE_CANCELED


async def test_bad_requests_get_the_right_a2a_errors(tmp_path: Path, calc_repo: Path) -> None:
    async with services(tmp_path) as embedded, gateway(embedded, calc_repo) as gw, sdk_client(gw.url) as client:
        async def send(request: a2a_pb2.SendMessageRequest) -> None:
            async for _ in client.send_message(request):
                pass

        with pytest.raises(InvalidParamsError, match="no task"):
            await send(message(repository="calc"))
        with pytest.raises(InvalidParamsError, match="url part is not accepted"):
            await send(message(a2a_pb2.Part(url="https://example.invalid/x"), repository="calc"))
        with pytest.raises(InvalidParamsError, match="unknown repository 'elsewhere' \\(configured: calc\\)"):
            await send(message(a2a_pb2.Part(text="Fix it"), repository="elsewhere"))
        with pytest.raises(InvalidParamsError, match="names no repository"):
            await send(message(a2a_pb2.Part(text="Fix it")))
        with pytest.raises(InvalidParamsError, match="unknown decomposition strategy"):
            await send(message(a2a_pb2.Part(text="Fix it"), repository="calc", strategy="sideways"))
        # The orchestrator's refusal, its gRPC status and reason kept in the message.
        cycle = {"subtasks": [{"id": "a", "instruction": "x", "dependencies": ["b"]},
                              {"id": "b", "instruction": "y", "dependencies": ["a"]}]}
        with pytest.raises(InvalidParamsError, match=r"swarmd INVALID_ARGUMENT \(INVALID_PLAN\): .*circular dependency"):
            await send(message(data_part(cycle), repository="calc", model=FAKE_MODEL))
        with pytest.raises(TaskNotFoundError, match="swarmd NOT_FOUND"):
            await client.get_task(a2a_pb2.GetTaskRequest(id="no-such-swarm"))
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task(a2a_pb2.CancelTaskRequest(id="no-such-swarm"))


async def test_the_agent_card_validates_and_bearer_tokens_are_enforced(tmp_path: Path, calc_repo: Path) -> None:
    async with services(tmp_path) as embedded:
        async with gateway(embedded, calc_repo) as gw, httpx.AsyncClient() as http:
            raw = (await http.get(gw.url + "/.well-known/agent-card.json")).json()
            card = json_format.ParseDict(raw, a2a_pb2.AgentCard())  # strict: unknown fields fail
            resolved = await A2ACardResolver(http, gw.url).get_agent_card()
        assert resolved == card
        assert {s.id for s in card.skills} == {"coding-task", "coding-plan"}
        assert list(card.default_input_modes) == ["text/plain", "application/json"]
        assert card.capabilities.streaming and not card.capabilities.push_notifications
        assert {i.protocol_binding for i in card.supported_interfaces} == {"JSONRPC", "HTTP+JSON"}
        assert not card.security_schemes
        assert "calc" in card.skills[0].description

        async with gateway(embedded, calc_repo, tokens=["s3cret"]) as gw:
            async with httpx.AsyncClient() as http:
                card = json_format.ParseDict(
                    (await http.get(gw.url + "/.well-known/agent-card.json")).json(), a2a_pb2.AgentCard()
                )
                refused = await http.post(gw.url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask",
                                                              "params": {"id": "x"}})
            assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
            assert "bearer" in card.security_requirements[0].schemes
            assert refused.status_code == 401
            async with sdk_client(gw.url, {"Authorization": "Bearer s3cret"}) as client:
                with pytest.raises(TaskNotFoundError):
                    await client.get_task(a2a_pb2.GetTaskRequest(id="no-such-swarm"))


class PlanningAgent(AgentExecutor):
    """A second A2A agent, built with the SDK: it hands the coding work to
    swarmd over A2A and answers with the files swarmd's patches changed."""

    def __init__(self, swarmd_url: str) -> None:
        self.swarmd_url = swarmd_url

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None and context.task_id and context.context_id
        await event_queue.enqueue_event(new_task_from_user_message(context.message))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        patches: list[bytes] = []
        answer = ""
        async with sdk_client(self.swarmd_url) as swarmd:
            async for response in swarmd.send_message(demo_request()):
                kind, body = payload(response)
                if kind == "artifact_update":
                    patches += [p.raw for p in body.artifact.parts if p.media_type == "text/x-diff"]
                    if body.artifact.artifact_id == "swarm-result":
                        answer = body.artifact.parts[0].text
        changed = sorted({
            line.removeprefix("+++ b/") for patch in patches for line in patch.decode().splitlines()
            if line.startswith("+++ b/")
        })
        await updater.add_artifact(
            [a2a_pb2.Part(text="swarmd changed: " + ", ".join(changed)),
             a2a_pb2.Part(text=answer.splitlines()[0] if answer else "")],
            name="delegation",
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise UnsupportedOperationError("this test agent cannot cancel")


@contextlib.asynccontextmanager
async def planning_agent(swarmd_url: str) -> AsyncIterator[str]:
    """The planning agent on 127.0.0.1:0 (the SDK's default handler and routes, uvicorn)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    card = a2a_pb2.AgentCard(
        name="planner", description="delegates coding to swarmd", version="1",
        supported_interfaces=[a2a_pb2.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=a2a_pb2.AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"], default_output_modes=["text/plain"],
        skills=[a2a_pb2.AgentSkill(id="build", name="build", description="build it", tags=["coding"])],
    )
    handler = DefaultRequestHandler(PlanningAgent(swarmd_url), InMemoryTaskStore(), card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")])
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    loop = asyncio.create_task(server.main_loop())
    try:
        yield url
    finally:
        server.should_exit = True
        await loop
        await server.shutdown(sockets=[sock])


async def test_another_sdk_agent_delegates_to_swarmd_and_uses_the_artifact(tmp_path: Path, calc_repo: Path) -> None:
    async with services(tmp_path) as embedded, gateway(embedded, calc_repo) as gw, \
            planning_agent(gw.url) as planner_url, sdk_client(planner_url) as client:
        stream = [payload(r) async for r in client.send_message(message(a2a_pb2.Part(text="Build a calculator")))]
    artifacts = [body.artifact for kind, body in stream if kind == "artifact_update"]
    assert [a.name for a in artifacts] == ["delegation"]
    changed, first_line = (p.text for p in artifacts[0].parts)
    assert changed == "swarmd changed: README.md, src/calc/cli.py, src/calc/ops.py, src/calc/parser.py"
    assert first_line.startswith("=== Subtask")
    assert stream[-1][1].status.state == a2a_pb2.TASK_STATE_COMPLETED


async def test_swarmd_serve_a2a_clones_a_git_url_and_serves_the_card(tmp_path: Path, calc_repo: Path) -> None:
    swarmd = str(Path(sys.executable).with_name("swarmd"))
    missing = await asyncio.create_subprocess_exec(
        swarmd, "serve", "a2a", "--listen", "127.0.0.1:0", stderr=asyncio.subprocess.PIPE
    )
    _out, err = await asyncio.wait_for(missing.communicate(), 60)
    assert missing.returncode == 2 and b"serve a2a needs --orchestrator" in err

    async with services(tmp_path) as embedded:
        proc = await asyncio.create_subprocess_exec(
            swarmd, "serve", "a2a", "--listen", "127.0.0.1:0", "--orchestrator", embedded.orchestrator_address,
            "--repository", f"calc={calc_repo}", "--repository", f"mirror=file://{calc_repo}",
            "--workspace", str(tmp_path / "clones"), "--token", "t0ken",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            banner = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert "swarmd a2a listening on " in banner, banner
            url = "http://" + banner.split()[-1]
            async with httpx.AsyncClient() as http:
                card = json_format.ParseDict(
                    (await http.get(url + "/.well-known/agent-card.json")).json(), a2a_pb2.AgentCard()
                )
            assert "calc, mirror" in card.skills[0].description and "bearer" in card.security_schemes
            assert (tmp_path / "clones" / "mirror" / "src" / "calc" / "__init__.py").exists()
            async with sdk_client(url, {"Authorization": "Bearer t0ken"}) as client:
                with pytest.raises(InvalidParamsError, match="unknown repository 'other'"):
                    async for _ in client.send_message(message(a2a_pb2.Part(text="x"), repository="other")):
                        pass
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
        assert proc.returncode == 0


async def test_the_http_json_binding_serves_the_same_tasks(tmp_path: Path, calc_repo: Path) -> None:
    async with FakeOpenAIServer() as model:
        model.fallback = lambda request: reply_text("part reported")
        async with services(tmp_path, model.base_url) as embedded, gateway(embedded, calc_repo) as gw, \
                httpx.AsyncClient(timeout=60) as http:
            client = await create_client(
                gw.url, ClientConfig(httpx_client=http, supported_protocol_bindings=["HTTP+JSON"])
            )
            try:
                request = message(data_part(slow_plan("a", "b")), repository="calc", model=FAKE_MODEL)
                stream = [payload(r) async for r in client.send_message(request)]
                assert stream[-1][1].status.state == a2a_pb2.TASK_STATE_COMPLETED
                got = await client.get_task(a2a_pb2.GetTaskRequest(id=stream[0][1].id))
                assert {a.artifact_id for a in got.artifacts} == {"subtask-a", "subtask-b", "swarm-result"}
                with pytest.raises(TaskNotFoundError, match="swarmd NOT_FOUND"):
                    await client.get_task(a2a_pb2.GetTaskRequest(id="no-such-swarm"))
            finally:
                await client.close()
            # The same task read from the HTTP+JSON route directly.
            rest = await http.get(f"{gw.url}/rest/tasks/{stream[0][1].id}", headers={"A2A-Version": "1.0"})
            assert rest.status_code == 200 and rest.json()["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_a_blocking_send_returns_the_finished_task_a_resend_the_same_one_and_list_shows_them(
    tmp_path: Path, calc_repo: Path
) -> None:
    async with FakeOpenAIServer() as model:
        model.fallback = lambda request: reply_text("part reported")
        async with services(tmp_path, model.base_url) as embedded, gateway(embedded, calc_repo) as gw, \
                httpx.AsyncClient(timeout=60) as http:
            blocking = await create_client(gw.url, ClientConfig(httpx_client=http, streaming=False))
            polling = await create_client(gw.url, ClientConfig(httpx_client=http, streaming=False, polling=True))
            try:
                request = message(data_part(slow_plan("a")), repository="calc", model=FAKE_MODEL)
                [(kind, task)] = [payload(r) async for r in blocking.send_message(request)]
                assert kind == "task" and task.status.state == a2a_pb2.TASK_STATE_COMPLETED
                assert {a.artifact_id for a in task.artifacts} == {"subtask-a", "swarm-result"}
                # The message id is the idempotency key: the same message is the same task.
                [(_, again)] = [payload(r) async for r in blocking.send_message(request)]
                assert again.id == task.id
                fresh = message(data_part(slow_plan("b")), repository="calc", model=FAKE_MODEL)
                [(_, started)] = [payload(r) async for r in polling.send_message(fresh)]
                assert started.id != task.id
                assert started.status.state in (a2a_pb2.TASK_STATE_SUBMITTED, a2a_pb2.TASK_STATE_WORKING)

                # tasks/list: ListSwarms, newest first, filtered by context and state.
                listed = await blocking.list_tasks(a2a_pb2.ListTasksRequest(include_artifacts=True))
                assert [t.id for t in listed.tasks] == [started.id, task.id]
                assert {a.artifact_id for a in listed.tasks[1].artifacts} == {"subtask-a", "swarm-result"}
                mine = await blocking.list_tasks(a2a_pb2.ListTasksRequest(context_id=task.context_id))
                assert [t.id for t in mine.tasks] == [task.id]
                done = await blocking.list_tasks(a2a_pb2.ListTasksRequest(status=a2a_pb2.TASK_STATE_CANCELED))
                assert list(done.tasks) == []
                with pytest.raises(InvalidParamsError):
                    await blocking.list_tasks(a2a_pb2.ListTasksRequest(page_size=1000))
            finally:
                await blocking.close()
                await polling.close()
