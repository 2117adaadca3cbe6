"""The sub-agent's client of the result store's shared results.

One :class:`ShareClient` per sub-agent attempt: scope = swarm id, producer =
subtask id. It speaks ``swarmd.v1.ResultStoreService`` over gRPC (the
runtime never touches the store's database) and turns gRPC failures into
:class:`~swarmd.plugins.ToolError` messages the model can act on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from swarmd.plugins.tool import ToolError
from swarmd.v1 import result_store_pb2, result_store_pb2_grpc

__all__ = ["ShareClient", "value_from_proto", "value_to_proto"]

DEFAULT_RPC_TIMEOUT_SECS = 30.0


def value_to_proto(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    try:
        json_format.ParseDict(value, out)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise ToolError(f"value is not JSON-serialisable: {exc}") from None
    return out


def _ints(value: Any) -> Any:
    """protobuf keeps numbers as doubles; show integral ones as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return value


def value_from_proto(value: struct_pb2.Value) -> Any:
    return _ints(json_format.MessageToDict(value))


class ShareClient:
    """Shared-results operations for one producer in one scope."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        scope: str,
        producer: str,
        rpc_timeout: float = DEFAULT_RPC_TIMEOUT_SECS,
    ) -> None:
        self._stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        self.scope = scope
        self.producer = producer
        self.rpc_timeout = rpc_timeout

    @staticmethod
    def _error(exc: grpc.aio.AioRpcError, what: str) -> ToolError:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return ToolError(f"the result store is unavailable ({what}); try again later")
        return ToolError(f"{what} failed: {exc.details() or code.name}")

    async def publish(
        self, key: str, value: Any, tags: Sequence[str] = (), ttl_secs: int = 0
    ) -> result_store_pb2.SharedResult:
        request = result_store_pb2.PublishResultRequest(
            scope=self.scope,
            key=key,
            producer_id=self.producer,
            value=value_to_proto(value),
            tags=list(tags),
            ttl_secs=ttl_secs,
        )
        try:
            response = await self._stub.PublishResult(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, f"publishing {key!r}") from None
        return response.result

    async def get(self, key: str) -> result_store_pb2.SharedResult | None:
        try:
            response = await self._stub.GetResult(
                result_store_pb2.GetResultRequest(scope=self.scope, key=key), timeout=self.rpc_timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self._error(exc, f"getting {key!r}") from None
        return response.result

    async def query(
        self, *, tags: Sequence[str] = (), prefix: str = "", limit: int = 0
    ) -> list[result_store_pb2.SharedResult]:
        request = result_store_pb2.QueryResultsRequest(scope=self.scope, tags=list(tags), prefix=prefix, limit=limit)
        try:
            response = await self._stub.QueryResults(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "querying shared results") from None
        return list(response.results)

    async def list(self, limit: int = 0) -> list[result_store_pb2.SharedResult]:
        try:
            response = await self._stub.ListResults(
                result_store_pb2.ListResultsRequest(scope=self.scope, limit=limit), timeout=self.rpc_timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "listing shared results") from None
        return list(response.results)

    async def wait(self, key: str, timeout_secs: float) -> result_store_pb2.SharedResult | None:
        """The key's value as soon as it is published; None when the wait times out."""
        request = result_store_pb2.WaitForResultRequest(
            scope=self.scope, key=key, timeout_ms=int(timeout_secs * 1000), follow=False
        )
        call = self._stub.WaitForResult(request, timeout=timeout_secs + self.rpc_timeout)
        try:
            async for response in call:
                return response.result
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return None
            raise self._error(exc, f"waiting for {key!r}") from None
        finally:
            call.cancel()
        return None


def describe(result: result_store_pb2.SharedResult, *, with_value: bool) -> dict[str, Any]:
    """The JSON shape swarm_share shows for a result (seed §10.1)."""
    out: dict[str, Any] = {"key": result.key, "producer": result.producer_id}
    if with_value:
        out["value"] = value_from_proto(result.value)
    out["type"] = result.type_name
    out["tags"] = list(result.tags)
    if with_value:
        out["published_at"] = result.published_at.ToJsonString() if result.HasField("published_at") else None
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)
