"""The gRPC face of the result store: request in, ``ResultStore`` call, response out.

Nothing here decides anything; validation and rules live in the store so
in-process callers get the same behaviour. Domain errors become status
codes in :func:`~swarmd.services.errors.grpc_errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TypeAlias

import grpc

from swarmd.services.auth.tenancy import tenant_cache_key
from swarmd.services.errors import InvalidArgument, grpc_errors
from swarmd.services.result_store._validate import check_id, check_timestamp
from swarmd.services.result_store.store import ResultStore
from swarmd.services.result_store.swarms import SwarmQuery
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1 import result_store_pb2_grpc

__all__ = ["SERVICE_NAME", "ResultStoreServicer"]

SERVICE_NAME = "swarmd.v1.ResultStoreService"

Context: TypeAlias = grpc.aio.ServicerContext


class ResultStoreServicer(result_store_pb2_grpc.ResultStoreServiceServicer):
    """Implements every RPC of ``swarmd.v1.ResultStoreService`` on a :class:`ResultStore`."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store

    # -- shared results -------------------------------------------------

    @grpc_errors
    async def PublishResult(
        self, request: pb.PublishResultRequest, context: Context
    ) -> pb.PublishResultResponse:
        result = await self.store.results.publish(
            request.scope,
            request.key,
            request.producer_id,
            request.value,
            list(request.tags),
            request.ttl_secs,
        )
        return pb.PublishResultResponse(result=result)

    @grpc_errors
    async def GetResult(
        self, request: pb.GetResultRequest, context: Context
    ) -> pb.GetResultResponse:
        return pb.GetResultResponse(result=await self.store.results.get(request.scope, request.key))

    @grpc_errors
    async def QueryResults(
        self, request: pb.QueryResultsRequest, context: Context
    ) -> pb.QueryResultsResponse:
        results = await self.store.results.query(
            request.scope,
            tags=list(request.tags),
            prefix=request.prefix,
            producer_id=request.producer_id,
            limit=request.limit,
        )
        return pb.QueryResultsResponse(results=results)

    @grpc_errors
    async def ListResults(
        self, request: pb.ListResultsRequest, context: Context
    ) -> pb.ListResultsResponse:
        return pb.ListResultsResponse(
            results=await self.store.results.list(request.scope, request.limit)
        )

    @grpc_errors
    async def WaitForResult(
        self, request: pb.WaitForResultRequest, context: Context
    ) -> AsyncIterator[pb.WaitForResultResponse]:
        updates = self.store.results.wait_for(
            request.scope, request.key, timeout_ms=request.timeout_ms, follow=request.follow
        )
        # aclosing: the waiter is unregistered as soon as this stream ends.
        async with aclosing(updates) as stream:
            async for result in stream:
                yield pb.WaitForResultResponse(result=result)

    # -- cache ----------------------------------------------------------

    @grpc_errors
    async def CacheGet(self, request: pb.CacheGetRequest, context: Context) -> pb.CacheGetResponse:
        entry = await self.store.cache.get(tenant_cache_key(request.key))
        if entry is None:
            return pb.CacheGetResponse(hit=False)
        entry.key = request.key.lower()
        return pb.CacheGetResponse(hit=True, entry=entry)

    @grpc_errors
    async def CachePut(self, request: pb.CachePutRequest, context: Context) -> pb.CachePutResponse:
        if not request.HasField("entry"):
            raise InvalidArgument("entry: required")
        entry = pb.CacheEntry()
        entry.CopyFrom(request.entry)
        entry.key = tenant_cache_key(entry.key)
        evicted = await self.store.cache.put(entry, request.ttl_secs)
        return pb.CachePutResponse(evicted=evicted)

    @grpc_errors
    async def GetCacheStats(
        self, request: pb.GetCacheStatsRequest, context: Context
    ) -> pb.GetCacheStatsResponse:
        return pb.GetCacheStatsResponse(stats=await self.store.cache.stats())

    @grpc_errors
    async def ClearCache(
        self, request: pb.ClearCacheRequest, context: Context
    ) -> pb.ClearCacheResponse:
        return pb.ClearCacheResponse(removed=await self.store.cache.clear())

    # -- swarm state ----------------------------------------------------

    @grpc_errors
    async def SaveSwarmState(
        self, request: pb.SaveSwarmStateRequest, context: Context
    ) -> pb.SaveSwarmStateResponse:
        if not request.HasField("swarm"):
            raise InvalidArgument("swarm: required")
        await self.store.swarms.save(request.swarm)
        return pb.SaveSwarmStateResponse()

    @grpc_errors
    async def SaveSubTaskState(
        self, request: pb.SaveSubTaskStateRequest, context: Context
    ) -> pb.SaveSubTaskStateResponse:
        if not request.HasField("state"):
            raise InvalidArgument("state: required")
        await self.store.swarms.save_subtask(request.swarm_id, request.state)
        return pb.SaveSubTaskStateResponse()

    @grpc_errors
    async def LoadSwarmState(
        self, request: pb.LoadSwarmStateRequest, context: Context
    ) -> pb.LoadSwarmStateResponse:
        return pb.LoadSwarmStateResponse(swarm=await self.store.swarms.load(request.swarm_id))

    @grpc_errors
    async def ListSwarmStates(
        self, request: pb.ListSwarmStatesRequest, context: Context
    ) -> pb.ListSwarmStatesResponse:
        times: dict[str, int | None] = {}
        for name in ("created_after", "created_before", "after_created_at"):
            if request.HasField(name):
                check_timestamp(name, getattr(request, name))
                times[name] = getattr(request, name).ToMicroseconds()
            else:
                times[name] = None
        if request.after_id:
            check_id("after_id", request.after_id)
            if times["after_created_at"] is None:
                raise InvalidArgument("after_created_at: required with after_id")
        query = SwarmQuery(
            labels=dict(request.labels),
            created_after_us=times["created_after"],
            created_before_us=times["created_before"],
            oldest_first=request.oldest_first,
            after_id=request.after_id,
            after_created_at_us=times["after_created_at"] or 0,
            tenant=request.tenant,
        )
        swarms = await self.store.swarms.list(
            list(request.states), request.limit, request.offset, query=query
        )
        return pb.ListSwarmStatesResponse(swarms=swarms)

    # -- event log ------------------------------------------------------

    @grpc_errors
    async def AppendEvents(
        self, request: pb.AppendEventsRequest, context: Context
    ) -> pb.AppendEventsResponse:
        last = await self.store.events.append(request.swarm_id, list(request.events))
        return pb.AppendEventsResponse(last_sequence=last)

    @grpc_errors
    async def ReadEvents(
        self, request: pb.ReadEventsRequest, context: Context
    ) -> pb.ReadEventsResponse:
        events, last = await self.store.events.read(
            request.swarm_id, request.after_sequence, request.limit
        )
        return pb.ReadEventsResponse(events=events, last_sequence=last)

    # -- audit records ----------------------------------------------------

    @grpc_errors
    async def AppendAuditRecord(
        self, request: pb.AppendAuditRecordRequest, context: Context
    ) -> pb.AppendAuditRecordResponse:
        return pb.AppendAuditRecordResponse(id=await self.store.audit.append(request.record))

    @grpc_errors
    async def ListAuditRecords(
        self, request: pb.ListAuditRecordsRequest, context: Context
    ) -> pb.ListAuditRecordsResponse:
        records = await self.store.audit.list(request.swarm_id, request.kind)
        return pb.ListAuditRecordsResponse(records=records)

    # -- blobs -----------------------------------------------------------

    @grpc_errors
    async def PutBlob(
        self, request_iterator: AsyncIterator[pb.PutBlobRequest], context: Context
    ) -> pb.PutBlobResponse:
        return pb.PutBlobResponse(blob=await self.store.blobs.put(request_iterator))

    @grpc_errors
    async def GetBlob(
        self, request: pb.GetBlobRequest, context: Context
    ) -> AsyncIterator[pb.GetBlobResponse]:
        async with aclosing(self.store.blobs.get(request.blob_id)) as parts:
            async for part in parts:
                yield part
