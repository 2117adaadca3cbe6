"""Python client for the orchestrator (async, plus a thin synchronous wrapper).

    async with SwarmdClient("127.0.0.1:50051") as client:
        swarm = await client.submit(task="Add type hints", config=SwarmConfig(model="openai/gpt-4o"))
        async for event in client.watch(swarm.id):
            print(event)

With a ``token`` (or ``$SWARMD_TOKEN`` / ``$SWARMD_TOKEN_FILE``, see
:mod:`swarmd.clients.credentials`) every call carries ``authorization: Bearer
<token>``. Every call has a deadline; failures raise :class:`SwarmdClientError` with the
status code. :meth:`SwarmdClient.watch` resumes transparently from the last
sequence it delivered when the connection drops.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any, cast

import grpc

from swarmd.clients.credentials import bearer_metadata, resolve_token
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.tls import ClientTls
from swarmd.v1 import (
    common_pb2,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    result_store_pb2,
    result_store_pb2_grpc,
)

__all__ = ["SwarmdClient", "SyncSwarmdClient", "TERMINAL_STATES"]

TERMINAL_STATES = frozenset(
    {common_pb2.SWARM_STATE_SUCCEEDED, common_pb2.SWARM_STATE_FAILED, common_pb2.SWARM_STATE_CANCELLED}
)
_RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})


class SwarmdClient:
    """Async client of ``OrchestratorService`` (and the result store's cache RPCs)."""

    def __init__(
        self,
        orchestrator: str,
        *,
        result_store: str | None = None,
        timeout: float = 30.0,
        channel: grpc.aio.Channel | None = None,
        tls: ClientTls | None = None,
        token: str | None = None,
    ) -> None:
        """``token``: the bearer token to present; None reads the environment, '' sends none."""
        self._metadata = bearer_metadata(resolve_token() if token is None else token)
        self._tls = tls if tls is not None else ClientTls.from_env()
        self._channel = channel or self._tls.channel(orchestrator)
        self._own_channel = channel is None
        self._stub = orchestrator_pb2_grpc.OrchestratorServiceStub(self._channel)
        self._store_channel = self._tls.channel(result_store) if result_store else None
        self._own_store = True
        self.timeout = timeout

    def with_token(self, token: str) -> SwarmdClient:
        """The same client on the same channels, presenting ``token`` instead
        (closing it closes nothing: the channels stay this client's)."""
        other = copy.copy(self)
        other._metadata = bearer_metadata(token)
        other._own_channel = other._own_store = False
        return other

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise SwarmdClientError.from_rpc_error(exc) from None

    async def submit(
        self,
        *,
        task: str = "",
        plan: common_pb2.Plan | None = None,
        config: common_pb2.SwarmConfig | None = None,
        dry_run: bool = False,
        request_id: str = "",
        labels: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> orchestrator_pb2.SubmitSwarmResponse:
        request = orchestrator_pb2.SubmitSwarmRequest(
            task=task, plan=plan, config=config, dry_run=dry_run, request_id=request_id, labels=labels or {}
        )
        # Decomposition calls a model: give it more time than a plain lookup.
        reply: orchestrator_pb2.SubmitSwarmResponse = await self._call(
            self._stub.SubmitSwarm, request, timeout or max(self.timeout, 300.0)
        )
        return reply

    async def get(self, swarm_id: str, *, view: int = 0) -> common_pb2.Swarm:
        """One swarm; ``view=orchestrator_pb2.SWARM_VIEW_BASIC`` leaves out result texts and patches."""
        request = orchestrator_pb2.GetSwarmRequest(
            swarm_id=swarm_id, view=cast("orchestrator_pb2.SwarmView", view)
        )
        reply: orchestrator_pb2.GetSwarmResponse = await self._call(self._stub.GetSwarm, request)
        return reply.swarm

    async def list(
        self,
        *,
        page_size: int = 50,
        page_token: str = "",
        states: Sequence[int] = (),
        filter: orchestrator_pb2.SwarmFilter | None = None,
        order_by: str = "",
    ) -> orchestrator_pb2.ListSwarmsResponse:
        """One page of swarms; ``states`` is a shorthand for ``filter.states``.
        ``order_by``: "created_at desc" (newest first, the default) or "created_at asc"."""
        request = orchestrator_pb2.ListSwarmsRequest(
            page_size=page_size, page_token=page_token, order_by=order_by
        )
        if filter is not None:
            request.filter.CopyFrom(filter)
        # The states are SwarmState values; plain ints are accepted as the wire carries them.
        request.filter.states.extend(cast("list[common_pb2.SwarmState]", list(states)))
        reply: orchestrator_pb2.ListSwarmsResponse = await self._call(self._stub.ListSwarms, request)
        return reply

    async def get_subtask(
        self, swarm_id: str, subtask_id: str, *, view: int = 0
    ) -> orchestrator_pb2.GetSubTaskResponse:
        """One subtask (status, result, diff, commit) without the rest of the swarm."""
        reply: orchestrator_pb2.GetSubTaskResponse = await self._call(
            self._stub.GetSubTask,
            orchestrator_pb2.GetSubTaskRequest(
                swarm_id=swarm_id, subtask_id=subtask_id, view=cast("orchestrator_pb2.SwarmView", view)
            ),
        )
        return reply

    async def list_subtasks(
        self,
        swarm_id: str,
        *,
        page_size: int = 50,
        page_token: str = "",
        statuses: Sequence[int] = (),
        view: int = 0,
    ) -> orchestrator_pb2.ListSubTasksResponse:
        """One page of a swarm's subtasks in plan order."""
        reply: orchestrator_pb2.ListSubTasksResponse = await self._call(
            self._stub.ListSubTasks,
            orchestrator_pb2.ListSubTasksRequest(
                swarm_id=swarm_id,
                page_size=page_size,
                page_token=page_token,
                statuses=cast("list[common_pb2.SubTaskStatus]", list(statuses)),
                view=cast("orchestrator_pb2.SwarmView", view),
            ),
        )
        return reply

    async def cancel(self, swarm_id: str, reason: str = "") -> orchestrator_pb2.CancelSwarmResponse:
        reply: orchestrator_pb2.CancelSwarmResponse = await self._call(
            self._stub.CancelSwarm, orchestrator_pb2.CancelSwarmRequest(swarm_id=swarm_id, reason=reason)
        )
        return reply

    async def resume(self, swarm_id: str) -> orchestrator_pb2.ResumeSwarmResponse:
        """Resume an INTERRUPTED swarm (its orchestrator is gone) on this orchestrator."""
        reply: orchestrator_pb2.ResumeSwarmResponse = await self._call(
            self._stub.ResumeSwarm, orchestrator_pb2.ResumeSwarmRequest(swarm_id=swarm_id)
        )
        return reply

    async def cancel_subtask(
        self, swarm_id: str, subtask_id: str, reason: str = ""
    ) -> orchestrator_pb2.CancelSubTaskResponse:
        reply: orchestrator_pb2.CancelSubTaskResponse = await self._call(
            self._stub.CancelSubTask,
            orchestrator_pb2.CancelSubTaskRequest(swarm_id=swarm_id, subtask_id=subtask_id, reason=reason),
        )
        return reply

    async def watch(
        self,
        swarm_id: str,
        *,
        after_sequence: int = 0,
        history_only: bool = False,
        max_reconnects: int = 20,
        heartbeat_secs: float = 0.0,
        subtask_ids: Sequence[str] = (),
        event_kinds: Sequence[str] = (),
    ) -> AsyncGenerator[common_pb2.SwarmEvent, None]:
        """Yield the swarm's events; reconnects and resumes after the last one seen.

        The stream's heartbeats (sent after ``heartbeat_secs`` without an event;
        0 = the orchestrator's setting) are not events and are not yielded. ``subtask_ids``
        and ``event_kinds`` filter the events (see WatchSwarmRequest)."""
        last = after_sequence
        failures = 0
        while True:
            call = self._stub.WatchSwarm(
                orchestrator_pb2.WatchSwarmRequest(
                    swarm_id=swarm_id,
                    after_sequence=last,
                    history_only=history_only,
                    heartbeat_interval_ms=int(heartbeat_secs * 1000),
                    subtask_ids=list(subtask_ids),
                    event_kinds=list(event_kinds),
                ),
                metadata=self._metadata,
            )
            try:
                async for reply in call:
                    failures = 0
                    if not reply.HasField("event"):
                        continue  # a heartbeat: the stream is alive, nothing happened
                    if reply.event.sequence and reply.event.sequence <= last:
                        continue  # never deliver an event twice
                    last = max(last, reply.event.sequence)
                    yield reply.event
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RESUMABLE or failures >= max_reconnects:
                    raise SwarmdClientError.from_rpc_error(exc) from None
                failures += 1
                await asyncio.sleep(min(0.1 * 2**failures, 2.0))
            finally:
                call.cancel()

    async def wait(self, swarm_id: str) -> common_pb2.Swarm:
        """Wait until the swarm is terminal and return it."""
        async for _event in self.watch(swarm_id):
            pass
        return await self.get(swarm_id)

    def _store(self) -> result_store_pb2_grpc.ResultStoreServiceStub:
        if self._store_channel is None:
            raise SwarmdClientError(grpc.StatusCode.FAILED_PRECONDITION, "no result store address given")
        return result_store_pb2_grpc.ResultStoreServiceStub(self._store_channel)

    async def cache_stats(self) -> common_pb2.CacheStats:
        reply: result_store_pb2.GetCacheStatsResponse = await self._call(
            self._store().GetCacheStats, result_store_pb2.GetCacheStatsRequest()
        )
        return reply.stats

    async def cache_clear(self) -> int:
        reply = await self._call(self._store().ClearCache, result_store_pb2.ClearCacheRequest())
        return int(reply.removed)

    async def aclose(self) -> None:
        if self._own_channel:
            await self._channel.close()
        if self._store_channel is not None and self._own_store:
            await self._store_channel.close()

    async def __aenter__(self) -> SwarmdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncSwarmdClient:
    """Blocking wrapper for scripts: runs :class:`SwarmdClient` on a private loop."""

    def __init__(self, orchestrator: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(orchestrator, kwargs))

    @staticmethod
    async def _make(orchestrator: str, kwargs: dict[str, Any]) -> SwarmdClient:
        return SwarmdClient(orchestrator, **kwargs)

    def submit(self, **kwargs: Any) -> orchestrator_pb2.SubmitSwarmResponse:
        return self._loop.run_until_complete(self._client.submit(**kwargs))

    def get(self, swarm_id: str, *, view: int = 0) -> common_pb2.Swarm:
        return self._loop.run_until_complete(self._client.get(swarm_id, view=view))

    def list(self, **kwargs: Any) -> orchestrator_pb2.ListSwarmsResponse:
        return self._loop.run_until_complete(self._client.list(**kwargs))

    def get_subtask(self, swarm_id: str, subtask_id: str, *, view: int = 0) -> orchestrator_pb2.GetSubTaskResponse:
        return self._loop.run_until_complete(self._client.get_subtask(swarm_id, subtask_id, view=view))

    def list_subtasks(self, swarm_id: str, **kwargs: Any) -> orchestrator_pb2.ListSubTasksResponse:
        return self._loop.run_until_complete(self._client.list_subtasks(swarm_id, **kwargs))

    def cancel(self, swarm_id: str, reason: str = "") -> orchestrator_pb2.CancelSwarmResponse:
        return self._loop.run_until_complete(self._client.cancel(swarm_id, reason))

    def resume(self, swarm_id: str) -> orchestrator_pb2.ResumeSwarmResponse:
        return self._loop.run_until_complete(self._client.resume(swarm_id))

    def cancel_subtask(self, swarm_id: str, subtask_id: str, reason: str = "") -> orchestrator_pb2.CancelSubTaskResponse:
        return self._loop.run_until_complete(self._client.cancel_subtask(swarm_id, subtask_id, reason))

    def wait(self, swarm_id: str) -> common_pb2.Swarm:
        return self._loop.run_until_complete(self._client.wait(swarm_id))

    def watch(self, swarm_id: str, **kwargs: Any) -> Iterator[common_pb2.SwarmEvent]:
        agen = self._client.watch(swarm_id, **kwargs)
        try:
            while True:
                try:
                    yield self._loop.run_until_complete(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run_until_complete(agen.aclose())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

    def __enter__(self) -> SyncSwarmdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
