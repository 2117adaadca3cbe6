"""Asking the model for a plan (the orchestrator's only model call).

:func:`create_decomposition_provider` runs at submission, so a bad model
string is refused with INVALID_ARGUMENT before the swarm is accepted;
:func:`decompose` runs in the background while the swarm is PLANNING and
never fails: transient provider errors are retried with the swarm's
backoff, and anything else falls back to a single subtask with a warning
that says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from swarmd.plugins import CompletionRequest, Message, ModelProvider, ProviderError
from swarmd.plugins.manager import Plugins
from swarmd.plugins.providers.factory import create_provider
from swarmd.services.config import ModelPrice
from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.budgets import cost_of
from swarmd.services.orchestrator.model_plan import plan_from_model_output
from swarmd.services.orchestrator.planning import (
    DraftPlan,
    PlanWarning,
    build_decomposition_prompt,
    decomposition_temperature,
    single_subtask_plan,
)
from swarmd.services.orchestrator.retry import Backoff, is_transient_error
from swarmd.v1 import common_pb2

__all__ = ["Decomposition", "create_decomposition_provider", "decompose"]

log = logging.getLogger(__name__)

def create_decomposition_provider(
    plugins: Plugins, config: common_pb2.SwarmConfig
) -> ModelProvider:
    """The provider that decomposes for this swarm; INVALID_ARGUMENT when the
    model string names no usable provider."""
    try:
        return create_provider(
            plugins,
            config.model,
            key="orchestrator",
            record_path=config.executor_options.get("record") or None,
        )
    except ProviderError as exc:
        raise InvalidArgument(f"config.model: {exc.message}") from None
    except (ValueError, OSError) as exc:
        raise InvalidArgument(
            f"config.model: cannot create provider for {config.model!r}: {exc}"
        ) from None


@dataclass
class Decomposition:
    """A draft plan plus what it cost."""

    draft: DraftPlan
    steps: int = 0
    usage: common_pb2.TokenUsage = field(default_factory=common_pb2.TokenUsage)
    cost_usd: float = 0.0


async def decompose(
    provider: ModelProvider,
    task: str,
    config: common_pb2.SwarmConfig,
    *,
    price: ModelPrice | None,
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Decomposition:
    """One model call (plus retries of transient failures) -> a draft plan."""
    prompt = build_decomposition_prompt(task, config.strategy, config.max_subagents)
    request = CompletionRequest(
        messages=[Message("user", prompt)],
        temperature=decomposition_temperature(config.model),
        # No max_tokens: the server's own limit fits its context; a fixed figure did not.
    )
    out = Decomposition(draft=DraftPlan([], common_pb2.PLAN_SOURCE_SINGLE))
    attempts = 1 + config.max_retries
    for attempt in range(attempts):
        out.steps += 1
        try:
            response = await provider.complete(request)
        except ProviderError as exc:
            transient = exc.transient or is_transient_error(exc.message)
            if transient and attempt + 1 < attempts:
                delay = backoff.delay_ms(attempt)
                log.info("decomposition call failed (%s); retrying in %.0f ms", exc.message, delay)
                await sleep(delay / 1000)
                continue
            kind = "transient" if transient else "permanent"
            out.draft = _fallback(
                task, f"the decomposition model call failed ({kind} error: {exc.message})"
            )
            return out
        except Exception as exc:  # a provider bug must not take the swarm down
            log.exception("decomposition call raised")
            out.draft = _fallback(
                task, f"the decomposition model call raised {type(exc).__name__}: {exc}"
            )
            return out
        usage = response.usage
        out.usage.prompt_tokens += usage.prompt_tokens
        out.usage.completion_tokens += usage.completion_tokens
        out.usage.total_tokens += usage.total_tokens or (
            usage.prompt_tokens + usage.completion_tokens
        )
        out.usage.cache_read_tokens += usage.cache_read_tokens
        out.usage.cache_write_tokens += usage.cache_write_tokens
        out.cost_usd += cost_of(price, usage.prompt_tokens, usage.completion_tokens)
        out.draft = plan_from_model_output(response.message.content or "", task)
        return out
    raise AssertionError("unreachable")  # pragma: no cover


def _fallback(task: str, why: str) -> DraftPlan:
    sub = single_subtask_plan(task)
    warning = PlanWarning(
        "decomposition_fallback", f"{why}; the whole task runs as a single subtask instead", sub.id
    )
    return DraftPlan([sub], common_pb2.PLAN_SOURCE_SINGLE, [warning])
