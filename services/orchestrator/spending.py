"""The spend RPCs: rate-governor permits and budgets.

Sub-agents call AcquirePermit before every model call and ReportOutcome
after it; ReserveBudget before tool calls. Budgets are checked before the
pacing (a call the budget cannot afford is refused at once with
RESOURCE_EXHAUSTED, not after waiting in line) and again once the permit is
granted, since usage reported while the caller waited may have spent the
budget; such a permit is handed back as ABANDONED. Cost comes from the
caller, or from the price table (``"provider/model"``, else ``"model"``).
Rate-limit waits and 429s are reported by the sub-agent in its own event
stream (``rate_limited``), which the orchestrator forwards; they are not
emitted here a second time.
"""

from __future__ import annotations

from collections.abc import Callable

from swarmd.services.config import OrchestratorSettings
from swarmd.services.errors import FailedPrecondition, InvalidArgument, NotFound, SwarmdError
from swarmd.services.orchestrator.budgets import cost_of, find_price
from swarmd.services.orchestrator.governor import GovernorKey, GovernorRegistry
from swarmd.services.orchestrator.run import SwarmRun
from swarmd.services.orchestrator.speculation import parent_of
from swarmd.services.orchestrator.validation import validate_id
from swarmd.v1 import coordinator_pb2

__all__ = ["SpendDesk"]


class SpendDesk:
    """Answers AcquirePermit, ReportOutcome and ReserveBudget."""

    def __init__(
        self,
        settings: OrchestratorSettings,
        governor: GovernorRegistry,
        live: Callable[[str], SwarmRun | None],
    ) -> None:
        self.settings = settings
        self.governor = governor
        self._live = live

    def _run_for_spend(self, swarm_id: str, subtask_id: str) -> tuple[SwarmRun, str]:
        """The live run and the subtask whose budget ``subtask_id`` spends."""
        validate_id(swarm_id, "swarm_id")
        run = self._live(swarm_id)
        if run is None:
            raise NotFound(f"swarm {swarm_id!r} is not running in this orchestrator")
        if run.terminal or run.cancelling:
            raise FailedPrecondition(
                f"swarm {swarm_id!r} is {'finished' if run.terminal else 'being cancelled'}"
            )
        spender = _spender(run, subtask_id)
        if subtask_id and spender not in run.states:
            raise NotFound(f"swarm {swarm_id!r} has no subtask {subtask_id!r}")
        return run, spender

    async def acquire_permit(
        self, request: coordinator_pb2.AcquirePermitRequest
    ) -> coordinator_pb2.AcquirePermitResponse:
        key = GovernorKey.from_proto(request.key)
        if request.estimated_tokens < 0:
            raise InvalidArgument("estimated_tokens must not be negative")
        run, spender = (
            self._run_for_spend(request.swarm_id, request.subtask_id)
            if request.swarm_id
            else (None, request.subtask_id)
        )
        price = find_price(self.settings.prices, key.provider, key.model)
        estimated_cost = 0.0
        if price is not None:  # the dearer rate: the split of the estimate is unknown
            estimated_cost = (
                request.estimated_tokens
                * max(price.prompt_per_mtok, price.completion_per_mtok)
                / 1e6
            )
        if run is not None:
            run.check_spend(spender, request.estimated_tokens, estimated_cost)
        permit = await self.governor.acquire(
            key,
            swarm_id=request.swarm_id,
            subtask_id=request.subtask_id,
            estimated_tokens=request.estimated_tokens,
        )
        if run is not None:
            try:
                run.check_spend(spender, request.estimated_tokens, estimated_cost)
            except SwarmdError:
                self.governor.report(
                    permit.id,
                    key,
                    coordinator_pb2.CALL_OUTCOME_ABANDONED,
                    swarm_id=request.swarm_id,
                )
                raise
        return permit.to_proto()

    async def report_outcome(
        self, request: coordinator_pb2.ReportOutcomeRequest
    ) -> coordinator_pb2.ReportOutcomeResponse:
        if not request.permit_id:
            raise InvalidArgument("permit_id is required")
        if request.cost_usd < 0:
            raise InvalidArgument("cost_usd must not be negative")
        key = (
            GovernorKey.from_proto(request.key)
            if request.key.provider or request.key.model
            else None
        )
        usage = request.usage
        tokens = usage.total_tokens or (usage.prompt_tokens + usage.completion_tokens)
        # Usage is recorded even for a swarm that is finishing: it was spent.
        # Only a live swarm's key is noted: any other id is the caller's word.
        run = self._live(request.swarm_id) if request.swarm_id else None
        retry_after_ms = self.governor.report(
            request.permit_id,
            key,
            request.outcome,
            request.http_status,
            dict(request.headers),
            swarm_id=request.swarm_id if run is not None else "",
            tokens_used=tokens,
        )
        if run is not None:
            cost = request.cost_usd
            if not cost and key is not None:
                price = find_price(self.settings.prices, key.provider, key.model)
                cost = cost_of(price, usage.prompt_tokens, usage.completion_tokens)
            run.ledger.record_call(_spender(run, request.subtask_id), tokens, cost)
        return coordinator_pb2.ReportOutcomeResponse(retry_after_ms=retry_after_ms)

    async def reserve_budget(
        self, request: coordinator_pb2.ReserveBudgetRequest
    ) -> coordinator_pb2.ReserveBudgetResponse:
        if not request.swarm_id:
            raise InvalidArgument("swarm_id is required")
        if not request.subtask_id:
            raise InvalidArgument("subtask_id is required")
        if request.tool_calls < 0:
            raise InvalidArgument("tool_calls must not be negative")
        run, spender = self._run_for_spend(request.swarm_id, request.subtask_id)
        remaining = run.reserve_tool_calls(spender, request.tool_calls)
        return coordinator_pb2.ReserveBudgetResponse(tool_calls_remaining=remaining)


def _spender(run: SwarmRun, subtask_id: str) -> str:
    """A speculative variant spends its subtask's budgets."""
    parent = parent_of(run.states, subtask_id) if subtask_id not in run.states else None
    return parent[0] if parent is not None else subtask_id
