"""swarm_share over real gRPC against an in-memory ResultStoreService double."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import timestamp_pb2

from swarmd.plugins import ToolContext, ToolError
from swarmd.plugins.runtime.share import ShareClient
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS, SwarmShareTool
from swarmd.v1 import result_store_pb2, result_store_pb2_grpc


def _type_name(value: object) -> str:
    kind = value.WhichOneof("kind")  # type: ignore[attr-defined]
    if kind == "number_value":
        return "integer" if value.number_value.is_integer() else "number"  # type: ignore[attr-defined]
    return {
        "null_value": "null",
        "bool_value": "boolean",
        "string_value": "string",
        "list_value": "array",
        "struct_value": "object",
    }[kind]


class MemoryResultStore(result_store_pb2_grpc.ResultStoreServiceServicer):
    """Shared results only, in memory (a test double of the real store)."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str], result_store_pb2.SharedResult] = {}
        self.changed = asyncio.Condition()

    async def PublishResult(self, request, context):  # type: ignore[no-untyped-def]
        if not request.key:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "key must not be empty")
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        result = result_store_pb2.SharedResult(
            scope=request.scope,
            key=request.key,
            producer_id=request.producer_id,
            value=request.value,
            type_name=_type_name(request.value),
            tags=request.tags,
            published_at=now,
        )
        async with self.changed:
            self.results[(request.scope, request.key)] = result
            self.changed.notify_all()
        return result_store_pb2.PublishResultResponse(result=result)

    async def GetResult(self, request, context):  # type: ignore[no-untyped-def]
        result = self.results.get((request.scope, request.key))
        if result is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no result {request.key!r}")
        return result_store_pb2.GetResultResponse(result=result)

    async def QueryResults(self, request, context):  # type: ignore[no-untyped-def]
        out = [
            r
            for (scope, key), r in self.results.items()
            if scope == request.scope
            and ((request.tags and set(request.tags) & set(r.tags)) or (request.prefix and key.startswith(request.prefix)))
        ]
        return result_store_pb2.QueryResultsResponse(results=out)

    async def ListResults(self, request, context):  # type: ignore[no-untyped-def]
        out = [r for (scope, _), r in self.results.items() if scope == request.scope]
        return result_store_pb2.ListResultsResponse(results=out)

    async def WaitForResult(self, request, context):  # type: ignore[no-untyped-def]
        try:
            async with asyncio.timeout(request.timeout_ms / 1000):
                async with self.changed:
                    await self.changed.wait_for(lambda: (request.scope, request.key) in self.results)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "nothing published in time")
        yield result_store_pb2.WaitForResultResponse(result=self.results[(request.scope, request.key)])


@pytest.fixture
async def store() -> AsyncIterator[tuple[MemoryResultStore, str]]:
    servicer = MemoryResultStore()
    server = grpc.aio.server()
    result_store_pb2_grpc.add_ResultStoreServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def channel(store: tuple[MemoryResultStore, str]) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(store[1]) as ch:
        yield ch


def context_for(channel: grpc.aio.Channel, producer: str, tmp_path) -> ToolContext:  # type: ignore[no-untyped-def]
    share = ShareClient(channel, scope="swarm-1", producer=producer)
    return ToolContext(workdir=tmp_path, swarm_id="swarm-1", subtask_id=producer, services={"share": share})


async def test_publish_get_query_list(channel: grpc.aio.Channel, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = context_for(channel, "t1", tmp_path)
    tool = SwarmShareTool()
    empty = await tool.run({"action": "list"}, ctx)
    assert empty.output == "No shared results in store"
    out = await tool.run({"action": "publish", "key": "api/schema", "value": {"n": 3, "ok": True}, "tags": ["api"]}, ctx)
    assert out.output == "Published result 'api/schema' (type: object)"
    out = await tool.run({"action": "publish", "key": "count", "value": 7}, ctx)
    assert out.output == "Published result 'count' (type: integer)"

    got = json.loads((await tool.run({"action": "get", "key": "api/schema"}, ctx)).output)
    assert got["key"] == "api/schema" and got["producer"] == "t1"
    assert got["value"] == {"n": 3, "ok": True} and got["type"] == "object" and got["tags"] == ["api"]
    assert got["published_at"].endswith("Z")

    tags = (await tool.run({"action": "query_tags", "tags": ["api"]}, ctx)).output
    head, body = tags.split("\n", 1)
    assert head == 'Found 1 results matching tags ["api"]:'
    assert json.loads(body) == [{"key": "api/schema", "producer": "t1", "type": "object", "tags": ["api"]}]
    prefix = (await tool.run({"action": "query_prefix", "prefix": "api/"}, ctx)).output
    assert prefix.startswith("Found 1 results matching prefix 'api/':")
    listing = (await tool.run({"action": "list"}, ctx)).output
    assert listing.startswith("2 shared results:")
    with pytest.raises(ToolError, match="No result found for key: missing"):
        await tool.run({"action": "get", "key": "missing"}, ctx)


async def test_wait_for_another_agent(channel: grpc.aio.Channel, tmp_path) -> None:  # type: ignore[no-untyped-def]
    waiter = context_for(channel, "reader", tmp_path)
    writer = context_for(channel, "writer", tmp_path)
    tool = SwarmShareTool()
    waiting = asyncio.create_task(tool.run({"action": "wait", "key": "done", "timeout_secs": 10}, waiter))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await tool.run({"action": "publish", "key": "done", "value": "yes"}, writer)
    got = json.loads((await asyncio.wait_for(waiting, 5)).output)
    assert got["value"] == "yes" and got["producer"] == "writer"
    with pytest.raises(ToolError, match="Timed out after 0.2s waiting for key: never"):
        await tool.run({"action": "wait", "key": "never", "timeout_secs": 0.2}, waiter)


async def test_schema_requires_fields_per_action(channel: grpc.aio.Channel, tmp_path) -> None:  # type: ignore[no-untyped-def]
    toolbox = Toolbox(BUILTIN_TOOLS, context_for(channel, "t", tmp_path))
    out = await toolbox.execute("swarm_share", json.dumps({"action": "publish", "key": "k"}))
    assert not out.success and "'value' is a required property" in out.output
    out = await toolbox.execute("swarm_share", json.dumps({"action": "explode"}))
    assert not out.success and "is not one of" in out.output
    out = await toolbox.execute("swarm_share", json.dumps({"action": "publish", "key": "k", "value": None}))
    assert out.success and "(type: null)" in out.output


async def test_unavailable_store_is_a_tool_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel("127.0.0.1:1") as ch:
        share = ShareClient(ch, scope="s", producer="p", rpc_timeout=1)
        ctx = ToolContext(workdir=tmp_path, services={"share": share})
        with pytest.raises(ToolError, match="unavailable|failed"):
            await SwarmShareTool().run({"action": "list"}, ctx)
