"""Asking the model for a plan (the orchestrator's only model call).

:func:`create_decomposition_provider` runs at submission, so a bad model
string is refused with INVALID_ARGUMENT before the swarm is accepted;
:func:`decompose` runs in the background while the swarm is PLANNING and
never fails: transient provider errors (and a call that outlives
``call_timeout_secs``) are retried with the swarm's backoff, each retry
announced through ``on_retry``, and anything else falls back to a single
subtask with a warning that says why.

The call is configured like a sub-agent's model calls, through the same
:class:`~swarmd.plugins.runtime.attempt.RuntimeSettings` rules: the
orchestrator's ``decomposition_options`` setting plays the part of the
executor service's ``executor.options`` (``provider.base_url``,
``provider.timeout``, ``provider.api_key``, ``call_timeout_secs``...), and
the swarm's ``executor_options`` override them, with the same limits (a
swarm may not set the API key, and one that picks its own base URL does not
get the service's key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from swarmd.plugins import CompletionRequest, Message, ModelProvider, ProviderError
from swarmd.plugins.manager import Plugins
from swarmd.plugins.providers.factory import create_provider
from swarmd.plugins.runtime.settings import RuntimeSettings, SettingsError
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

__all__ = [
    "Decomposition",
    "OnRetry",
    "create_decomposition_provider",
    "decompose",
    "decomposition_settings",
]

#: Told of each retry: (next attempt, 1-based; delay in ms; why).
OnRetry = Callable[[int, float, str], None]

log = logging.getLogger(__name__)

def decomposition_settings(
    service_options: Mapping[str, str], config: common_pb2.SwarmConfig
) -> RuntimeSettings:
    """The decomposition call's settings; INVALID_ARGUMENT on a bad option."""
    try:
        return RuntimeSettings.resolve(service_options, dict(config.executor_options))
    except SettingsError as exc:
        raise InvalidArgument(f"config.executor_options: {exc}") from None


def create_decomposition_provider(
    plugins: Plugins,
    config: common_pb2.SwarmConfig,
    service_options: Mapping[str, str] | None = None,
) -> ModelProvider:
    """The provider that decomposes for this swarm; INVALID_ARGUMENT when the
    model string names no usable provider or an option is bad."""
    settings = decomposition_settings(service_options or {}, config)
    try:
        return create_provider(
            plugins,
            config.model,
            key="orchestrator",
            options=settings.provider_options,
            record_path=settings.record_path,
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
    #: Calls made again after a transient failure (``steps - 1`` at most).
    retries: int = 0
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
    call_timeout_secs: float = RuntimeSettings.call_timeout_secs,
    on_retry: OnRetry | None = None,
) -> Decomposition:
    """One model call (plus retries of transient failures) -> a draft plan.

    Each call is bounded by ``call_timeout_secs`` (a timeout is transient);
    ``on_retry`` hears of every retry before its backoff.
    """
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
            # asyncio.timeout, not wait_for (which can swallow a cancellation on 3.11).
            async with asyncio.timeout(call_timeout_secs):
                response = await provider.complete(request)
        except (ProviderError, TimeoutError) as exc:
            if isinstance(exc, ProviderError):
                message = exc.message
                transient = exc.transient or is_transient_error(message)
            else:
                message = f"no answer within call_timeout_secs={call_timeout_secs:g}s"
                transient = True
            if transient and attempt + 1 < attempts:
                delay = backoff.delay_ms(attempt)
                log.info("decomposition call failed (%s); retrying in %.0f ms", message, delay)
                out.retries += 1
                if on_retry is not None:
                    on_retry(attempt + 2, delay, message)
                await sleep(delay / 1000)
                continue
            kind = "transient" if transient else "permanent"
            out.draft = _fallback(
                task, f"the decomposition model call failed ({kind} error: {message})"
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
