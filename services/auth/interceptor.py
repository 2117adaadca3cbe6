"""The server interceptor that authenticates and authorizes every call.

:class:`AuthInterceptor` wraps each method handler: before the servicer
runs it finds the caller (:class:`.authenticator.Authenticator`: missing or
bad credentials are UNAUTHENTICATED), checks the method against
:data:`.policy.POLICY` (PERMISSION_DENIED), and makes the caller the
:func:`~.identity.current_identity` for the call, which the servicers use
for tenant checks. Both refusals carry the rich error details of
:mod:`swarmd.services.errors`. Health checking and reflection pass
untouched unless ``authenticate_health`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from swarmd.services.auth.authenticator import Authenticator
from swarmd.services.auth.identity import Identity, use_identity
from swarmd.services.auth.policy import EXEMPT_PREFIXES, authorize
from swarmd.services.errors import SwarmdError, rich_status

__all__ = ["AuthInterceptor"]

log = logging.getLogger(__name__)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls without valid credentials and calls the caller's role may not make."""

    def __init__(self, authenticator: Authenticator, *, authenticate_health: bool = False) -> None:
        self.authenticator = authenticator
        self.authenticate_health = authenticate_health

    async def _admit(self, context: grpc.aio.ServicerContext, method: str, request: Any) -> Identity:
        try:
            identity = await self.authenticator.authenticate(context)
            authorize(identity, method, request)
        except SwarmdError as exc:
            log.info("%s refused: %s", method, exc.message)
            status = rpc_status.to_status(rich_status(exc))
            await context.abort(exc.code, exc.message, trailing_metadata=status.trailing_metadata)
            raise  # abort raises; this keeps the type checker informed
        return identity

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not hasattr(handler, "_replace"):
            return handler
        if not self.authenticate_health and method.startswith(EXEMPT_PREFIXES):
            return handler
        admit = self._admit
        if handler.request_streaming:
            inner_s = handler.stream_unary or handler.stream_stream
            if handler.stream_unary is not None:

                async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
                    use_identity(await admit(context, method, None))
                    return await inner_s(requests, context)

                return handler._replace(stream_unary=stream_unary)

            async def stream_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                use_identity(await admit(context, method, None))
                async for item in inner_s(requests, context):
                    yield item

            return handler._replace(stream_stream=stream_stream)
        inner = handler.unary_unary or handler.unary_stream
        if handler.response_streaming:

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                use_identity(await admit(context, method, request))
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:  # a handler that writes with context.write() and returns
                    await result

            return handler._replace(unary_stream=unary_stream)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            use_identity(await admit(context, method, request))
            return await inner(request, context)

        return handler._replace(unary_unary=unary_unary)
