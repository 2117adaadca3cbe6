"""The pod's channel back to the executor: its events and its outcome, over gRPC.

A pod reaches only the orchestrator and the result store (see the
NetworkPolicy in ``deploy/kubernetes/``), so it reports through the store's
shared results, in a scope of its own under its swarm's:
``<swarm id>/pod/<pod name>`` (pod names are unique per attempt and short
enough for a scope; under the swarm's, the attempt's subagent token may use
it).

* Every event the sub-agent emits is published, in order, under the key
  ``event-000001``, ``event-000002``... as the base64 of the ``SwarmEvent``.
  The executor follows them with ``WaitForResult``, one key after the other,
  so it streams them to the orchestrator as they happen (no polling).
* The outcome is published last under ``outcome``: a JSON object with
  ``events`` (how many were published), ``result_blob`` (the blob holding the
  serialized ``SubTaskResult``), ``bundle_blob`` (the bundle of the pod's
  commits, "" when there are none), ``commit`` (the tip of that work) and
  ``error`` (a failure of the pod's own machinery, "" otherwise).

The values expire after a day; nothing travels through logs.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from swarmd.v1 import common_pb2, result_store_pb2_grpc
from swarmd.v1 import result_store_pb2 as pb

__all__ = ["OUTCOME_KEY", "PodFollower", "PodPublisher", "event_key", "pod_scope"]

OUTCOME_KEY = "outcome"
TTL_SECS = 24 * 3600


def pod_scope(swarm_id: str, pod_name: str) -> str:
    return f"{swarm_id}/pod/{pod_name}"


def event_key(seq: int) -> str:
    return f"event-{seq:06d}"


class PodPublisher:
    """Pod side: publishes events in order from a queue, then the outcome."""

    def __init__(self, channel: grpc.aio.Channel, swarm_id: str, pod_name: str, *, rpc_timeout: float = 30.0) -> None:
        self._stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        self.scope = pod_scope(swarm_id, pod_name)
        self.producer = pod_name
        self._timeout = rpc_timeout
        self._queue: asyncio.Queue[common_pb2.SwarmEvent | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def emit(self, event: common_pb2.SwarmEvent) -> None:
        """The runtime's event sink."""
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="swarmd-pod-events")
        self._queue.put_nowait(event)

    async def _publish(self, key: str, value: struct_pb2.Value) -> None:
        for attempt in range(5):
            try:
                await self._stub.PublishResult(
                    pb.PublishResultRequest(
                        scope=self.scope, key=key, producer_id=self.producer, value=value, ttl_secs=TTL_SECS
                    ),
                    timeout=self._timeout,
                )
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or attempt == 4:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)

    async def _drain(self) -> None:
        while (event := await self._queue.get()) is not None:
            seq = self.published + 1
            text = base64.b64encode(event.SerializeToString()).decode()
            await self._publish(event_key(seq), struct_pb2.Value(string_value=text))
            self.published = seq

    async def flush(self) -> None:
        """Wait until every emitted event is published."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def outcome(self, **fields: Any) -> None:
        """Publish the outcome (after :meth:`flush`)."""
        await self.flush()
        value = struct_pb2.Value()
        json_format.ParseDict({"events": self.published, **fields}, value)
        await self._publish(OUTCOME_KEY, value)


class PodFollower:
    """Executor side: the pod's events as they are published, and its outcome."""

    def __init__(self, channel: grpc.aio.Channel, swarm_id: str, pod_name: str, *, rpc_timeout: float = 30.0) -> None:
        self._stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        self.scope = pod_scope(swarm_id, pod_name)
        self._timeout = rpc_timeout
        self.seen = 0

    @staticmethod
    def _decode(result: pb.SharedResult) -> common_pb2.SwarmEvent:
        return common_pb2.SwarmEvent.FromString(base64.b64decode(result.value.string_value))

    async def follow(self) -> AsyncIterator[common_pb2.SwarmEvent]:
        """Events in order, waiting for each; runs until cancelled."""
        while True:
            key = event_key(self.seen + 1)
            call = self._stub.WaitForResult(
                pb.WaitForResultRequest(scope=self.scope, key=key, timeout_ms=3_600_000)
            )
            try:
                async for reply in call:
                    self.seen += 1
                    yield self._decode(reply.result)
                    break
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                    await asyncio.sleep(0.5)
                    continue
                raise
            finally:
                call.cancel()

    async def _get(self, key: str) -> pb.SharedResult | None:
        try:
            reply = await self._stub.GetResult(pb.GetResultRequest(scope=self.scope, key=key), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.result

    async def outcome(self) -> dict[str, Any] | None:
        """The published outcome, None when the pod published none."""
        result = await self._get(OUTCOME_KEY)
        if result is None:
            return None
        return json_format.MessageToDict(result.value)

    async def rest(self, total: int) -> list[common_pb2.SwarmEvent]:
        """Events ``seen+1..total`` not streamed yet (after the pod ended)."""
        events = []
        while self.seen < total:
            result = await self._get(event_key(self.seen + 1))
            if result is None:
                break
            self.seen += 1
            events.append(self._decode(result))
        return events
