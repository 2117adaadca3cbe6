"""Budgets, enforced before the spend.

One :class:`BudgetLedger` per swarm keeps what the swarm and each subtask
have used: tool calls (reserved through ``ReserveBudget``), tokens and cost
(reported through ``ReportOutcome``, and settled from each final result, so
an executor that does not report per call is still held to the budget at
subtask granularity). A request that would go past a limit is refused with
``RESOURCE_EXHAUSTED`` *before* the call is made; what was already done is
never undone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swarmd.services.config import ModelPrice
from swarmd.services.errors import ResourceExhausted
from swarmd.v1 import common_pb2

__all__ = ["BudgetLedger", "SubtaskSpend", "cost_of", "find_price"]


def find_price(prices: Mapping[str, ModelPrice], provider: str, model: str) -> ModelPrice | None:
    """The price for ``provider/model``, else for ``model`` alone, else None."""
    if provider and model and f"{provider}/{model}" in prices:
        return prices[f"{provider}/{model}"]
    if model in prices:
        return prices[model]
    return None


def cost_of(price: ModelPrice | None, prompt_tokens: int, completion_tokens: int) -> float:
    """US dollars for a call, 0 when the model has no price."""
    if price is None:
        return 0.0
    return (
        prompt_tokens * price.prompt_per_mtok + completion_tokens * price.completion_per_mtok
    ) / 1_000_000


@dataclass
class SubtaskSpend:
    """What one subtask has used."""

    tool_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class BudgetLedger:
    """Limits from the effective config and what has been spent against them."""

    max_tool_calls: int
    max_tokens: int = 0  # 0 = unlimited
    max_cost_usd: float = 0.0
    max_tokens_per_subtask: int = 0
    max_cost_per_subtask_usd: float = 0.0
    spend: dict[str, SubtaskSpend] = field(default_factory=dict)
    #: Tokens and cost spent outside any subtask (the decomposition call).
    overhead_tokens: int = 0
    overhead_cost_usd: float = 0.0

    @classmethod
    def for_config(cls, config: common_pb2.SwarmConfig) -> BudgetLedger:
        return cls(
            max_tool_calls=config.max_total_tool_calls,
            max_tokens=config.max_total_tokens,
            max_cost_usd=config.max_cost_usd,
            max_tokens_per_subtask=config.max_tokens_per_subtask,
            max_cost_per_subtask_usd=config.max_cost_per_subtask_usd,
        )

    def _sub(self, subtask_id: str) -> SubtaskSpend:
        return self.spend.setdefault(subtask_id, SubtaskSpend())

    @property
    def tool_calls(self) -> int:
        return sum(s.tool_calls for s in self.spend.values())

    @property
    def tokens(self) -> int:
        return self.overhead_tokens + sum(s.tokens for s in self.spend.values())

    @property
    def cost_usd(self) -> float:
        return self.overhead_cost_usd + sum(s.cost_usd for s in self.spend.values())

    # -- tool calls -------------------------------------------------------

    def reserve_tool_calls(self, subtask_id: str, count: int) -> int:
        """Reserve ``count`` tool calls; return what remains, or raise."""
        used = self.tool_calls
        if used + count > self.max_tool_calls:
            raise ResourceExhausted(
                f"swarm tool-call budget exhausted: {used} of {self.max_tool_calls} used, "
                f"{count} more requested by subtask {subtask_id!r}"
            )
        self._sub(subtask_id).tool_calls += count
        return self.max_tool_calls - used - count

    # -- tokens and cost --------------------------------------------------

    def check_call(self, subtask_id: str, estimated_tokens: int, estimated_cost_usd: float) -> None:
        """Raise :class:`ResourceExhausted` when a model call of this size would
        go past the swarm's or the subtask's token or cost budget."""
        sub = self.spend.get(subtask_id, SubtaskSpend())
        checks = (
            (
                "swarm token budget",
                self.max_tokens,
                self.tokens,
                estimated_tokens,
                "{:,.0f} tokens",
            ),
            (
                "subtask token budget",
                self.max_tokens_per_subtask,
                sub.tokens,
                estimated_tokens,
                "{:,.0f} tokens",
            ),
            ("swarm cost budget", self.max_cost_usd, self.cost_usd, estimated_cost_usd, "${:,.4f}"),
            (
                "subtask cost budget",
                self.max_cost_per_subtask_usd,
                sub.cost_usd,
                estimated_cost_usd,
                "${:,.4f}",
            ),
        )
        for what, limit, used, more, fmt in checks:
            if not limit:
                continue
            if used >= limit or used + more > limit:
                raise ResourceExhausted(
                    f"{what} exhausted for subtask {subtask_id!r}: {fmt.format(used)} of {fmt.format(limit)} used"
                    + (
                        f", this call may use up to {fmt.format(more)} more"
                        if more and used < limit
                        else ""
                    )
                )

    def record_call(self, subtask_id: str, tokens: int, cost_usd: float) -> None:
        """Add a finished model call's usage."""
        sub = self._sub(subtask_id)
        sub.tokens += max(0, tokens)
        sub.cost_usd += max(0.0, cost_usd)

    def record_overhead(self, tokens: int, cost_usd: float) -> None:
        self.overhead_tokens += max(0, tokens)
        self.overhead_cost_usd += max(0.0, cost_usd)

    def settle(self, subtask_id: str, tool_calls: int, tokens: int, cost_usd: float) -> None:
        """Reconcile with a subtask's final result (totals over its attempts):
        the larger of the reported-per-call and the result figures counts."""
        sub = self._sub(subtask_id)
        sub.tool_calls = max(sub.tool_calls, tool_calls)
        sub.tokens = max(sub.tokens, tokens)
        sub.cost_usd = max(sub.cost_usd, cost_usd)

    # -- before a dispatch --------------------------------------------------

    def exhausted(self) -> str:
        """Why the swarm cannot start another subtask ("" when it can)."""
        if self.tool_calls >= self.max_tool_calls:
            return f"swarm tool-call budget exhausted ({self.tool_calls} of {self.max_tool_calls} used)"
        if self.max_tokens and self.tokens >= self.max_tokens:
            return (
                f"swarm token budget exhausted ({self.tokens:,} of {self.max_tokens:,} tokens used)"
            )
        if self.max_cost_usd and self.cost_usd >= self.max_cost_usd:
            return f"swarm cost budget exhausted (${self.cost_usd:,.4f} of ${self.max_cost_usd:,.4f} used)"
        return ""

    def remaining_for(self, subtask_id: str) -> tuple[int, float]:
        """(tokens, cost) a subtask may still use; 0 = unlimited."""
        sub = self.spend.get(subtask_id, SubtaskSpend())
        tokens = [
            lim - used
            for lim, used in (
                (self.max_tokens, self.tokens),
                (self.max_tokens_per_subtask, sub.tokens),
            )
            if lim
        ]
        costs = [
            lim - used
            for lim, used in (
                (self.max_cost_usd, self.cost_usd),
                (self.max_cost_per_subtask_usd, sub.cost_usd),
            )
            if lim
        ]
        # A spent budget is still a limit: report 1 token / a tiny cost rather than 0 (= unlimited).
        token_left = max(1, min(tokens)) if tokens else 0
        cost_left = max(1e-9, min(costs)) if costs else 0.0
        return token_left, cost_left
