"""The sub-agent's side of the orchestrator's rate governor and budgets.

Before every model call the loop asks ``AcquirePermit`` (waiting in line as
long as the governor says) and afterwards reports how the call went with
``ReportOutcome`` (status, lower-cased headers, usage, cost), which is how
the swarm-wide governor learns from ``x-ratelimit-*`` headers and 429s.
Before running tool calls it reserves them with ``ReserveBudget``.

``RESOURCE_EXHAUSTED`` from either means a budget is spent:
:class:`BudgetExhausted`, which ends the attempt keeping what was done.
Other failures of the orchestrator itself become provider errors, so they
are classified like any other failed call (UNAVAILABLE is transient).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import grpc

from swarmd.plugins.model import PermanentProviderError, TransientProviderError, Usage
from swarmd.plugins.runtime.events import usage_to_proto
from swarmd.v1 import coordinator_pb2, coordinator_pb2_grpc

__all__ = ["BudgetExhausted", "Governor", "Permit"]

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)

SUCCESS = coordinator_pb2.CALL_OUTCOME_SUCCESS
RATE_LIMITED = coordinator_pb2.CALL_OUTCOME_RATE_LIMITED
ERROR = coordinator_pb2.CALL_OUTCOME_ERROR
ABANDONED = coordinator_pb2.CALL_OUTCOME_ABANDONED


class BudgetExhausted(Exception):
    """A swarm or subtask budget (tokens, cost, tool calls) refused the spend."""


@dataclass(frozen=True)
class Permit:
    permit_id: str
    waited_ms: int


def _fail(exc: grpc.aio.AioRpcError, what: str) -> Exception:
    code = exc.code()
    text = f"{what} failed at the orchestrator: {code.name}: {exc.details() or ''}".rstrip(": ")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return BudgetExhausted(exc.details() or f"{what}: budget exhausted")
    if code in TRANSIENT_CODES:
        return TransientProviderError(text)
    return PermanentProviderError(text)


class Governor:
    """Permits and budgets for one sub-agent attempt."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        swarm_id: str,
        subtask_id: str,
        key: tuple[str, str, str, str],
        rpc_timeout: float = 30.0,
        acquire_timeout: float = 3600.0,
    ) -> None:
        self._channel = channel
        self._stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        self.swarm_id = swarm_id
        self.subtask_id = subtask_id
        provider, base_url, model, fingerprint = key
        self.key = coordinator_pb2.RateLimitKey(
            provider=provider, base_url=base_url, model=model, api_key_fingerprint=fingerprint
        )
        self.rpc_timeout = rpc_timeout
        self.acquire_timeout = acquire_timeout

    @property
    def key_text(self) -> str:
        k = self.key
        return f"{k.provider}|{k.base_url}|{k.model}|{k.api_key_fingerprint}"

    async def acquire(self, estimated_tokens: int) -> Permit:
        """Wait in line for a permit (RESOURCE_EXHAUSTED -> :class:`BudgetExhausted`)."""
        request = coordinator_pb2.AcquirePermitRequest(
            key=self.key, swarm_id=self.swarm_id, subtask_id=self.subtask_id, estimated_tokens=estimated_tokens
        )
        response = await self._call(self._stub.AcquirePermit, request, self.acquire_timeout, "AcquirePermit")
        return Permit(response.permit_id, response.waited_ms)

    async def _call(self, method: Any, request: Any, timeout: float, what: str) -> Any:
        """One call; UNAVAILABLE (e.g. a shared channel still backing off after
        its orchestrator restarted) waits up to ``rpc_timeout`` for the channel
        to connect again and tries once more before it counts as a failure."""
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise _fail(exc, what) from None
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self.rpc_timeout)
        except TimeoutError:
            pass
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _fail(exc, what) from None

    async def report(
        self,
        permit: Permit | None,
        outcome: Any,
        *,
        http_status: int = 0,
        headers: dict[str, str] | None = None,
        usage: Usage | None = None,
        cost_usd: float = 0.0,
    ) -> int:
        """Report a call's outcome; best effort (the permit's lease expires anyway).

        Returns the governor's ``retry_after_ms`` hint (0 when none or on error).
        """
        request = coordinator_pb2.ReportOutcomeRequest(
            permit_id=permit.permit_id if permit else "",
            key=self.key,
            outcome=outcome,
            http_status=http_status,
            headers={k.lower(): v for k, v in (headers or {}).items()},
            usage=usage_to_proto(usage or Usage()),
            swarm_id=self.swarm_id,
            subtask_id=self.subtask_id,
            cost_usd=cost_usd,
        )
        try:
            response = await self._stub.ReportOutcome(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("ReportOutcome failed for %s/%s: %s", self.swarm_id, self.subtask_id, exc.details())
            return 0
        return int(response.retry_after_ms)

    async def reserve_tools(self, tool_calls: int) -> int:
        """Reserve tool calls; returns what the swarm has left."""
        request = coordinator_pb2.ReserveBudgetRequest(
            swarm_id=self.swarm_id, subtask_id=self.subtask_id, tool_calls=tool_calls
        )
        response = await self._call(self._stub.ReserveBudget, request, self.rpc_timeout, "ReserveBudget")
        return int(response.tool_calls_remaining)
