"""Requests that do not parse get INVALID_ARGUMENT, not UNKNOWN with a traceback.

gRPC deserialises a request before any servicer code runs; a message that is
truncated, random bytes, or a string field holding invalid UTF-8 makes the
generated ``FromString`` raise ``DecodeError``, which gRPC reports as UNKNOWN
(and logs as a server error). :class:`MalformedRequestGuard`, a server
interceptor every swarmd server installs, wraps each handler's deserialiser
so such a request reaches the handler as a marker, and answers it with
INVALID_ARGUMENT (reason ``MALFORMED_MESSAGE``, with the rich error details
of :mod:`swarmd.services.errors`) and nothing else: the servicer never sees
it. Request streams are guarded per message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from swarmd.services.errors import InvalidArgument, rich_status

__all__ = ["MalformedRequestGuard"]

log = logging.getLogger(__name__)


class _Malformed:
    """Stands for a request message that did not parse."""

    def __init__(self, why: str) -> None:
        self.why = why


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:
            return _Malformed(f"{type(exc).__name__}: {exc}"[:300])

    return parse


async def _refuse(context: grpc.aio.ServicerContext, method: str, bad: _Malformed) -> None:
    log.info("%s: refused a malformed request (%s)", method, bad.why)
    err = InvalidArgument(
        f"the request is not a valid {method.rsplit('/', 1)[-1]} request message: {bad.why}",
        reason="MALFORMED_MESSAGE",
    )
    status = rpc_status.to_status(rich_status(err))
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message, trailing_metadata=status.trailing_metadata)


class MalformedRequestGuard(grpc.aio.ServerInterceptor):
    """Answers requests that fail to deserialise with INVALID_ARGUMENT."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not hasattr(handler, "_replace"):
            return handler
        method = handler_call_details.method
        if handler.request_streaming:
            return self._streaming(handler, method)
        inner = handler.unary_unary or handler.unary_stream
        if inner is None:
            return handler
        if handler.response_streaming:

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                if isinstance(request, _Malformed):
                    await _refuse(context, method, request)
                    return
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:  # a handler that writes with context.write() and returns
                    await result

            return handler._replace(request_deserializer=_safe(handler.request_deserializer), unary_stream=unary_stream)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Malformed):
                await _refuse(context, method, request)
            return await inner(request, context)

        return handler._replace(request_deserializer=_safe(handler.request_deserializer), unary_unary=unary_unary)

    @staticmethod
    def _streaming(handler: Any, method: str) -> Any:
        inner = handler.stream_unary or handler.stream_stream

        async def checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, _Malformed):
                    await _refuse(context, method, request)
                yield request

        if handler.stream_unary is not None:

            async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
                return await inner(checked(requests, context), context)

            return handler._replace(request_deserializer=_safe(handler.request_deserializer), stream_unary=stream_unary)

        async def stream_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in inner(checked(requests, context), context):
                yield item

        return handler._replace(request_deserializer=_safe(handler.request_deserializer), stream_stream=stream_stream)
