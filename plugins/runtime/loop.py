"""The sub-agent loop: call the model, run the tools it asks for, repeat.

One :class:`AgentLoop` per attempt. The loop (seed §5, with the v4.7 fixes
and swarmd's rate governor and budgets):

* is **done** when a response carries no tool calls, whatever its
  ``finish_reason`` says (providers return ``stop`` with tool calls); a
  ``length`` cut without tool calls asks the model to continue instead;
* salvages ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``
  markup written as text by models that have no native tool calling;
* counts a **step** per model call; at ``max_steps`` it stops with
  ``MAX_STEPS`` (the orchestrator does not retry that);
* retries a transiently failed model call (5xx, connection refused) in
  place after 0.5, 1, 2, 4, 8 s less up to a quarter of jitter (11 to 15 s
  in all, longer than a model server restart; ``model_retries``,
  ``model_retry_base_secs``/``_max_secs``), so a restart costs a pause, not
  the sub-agent's progress; a timeout or an exactly repeated server error
  (permanent, see the ``openai`` provider) ends the attempt at once;
* bounds each model call (``call_timeout_secs``, default 120 s: a transient
  failure) and each step, model call plus tools (``idle_timeout_secs``:
  ``TIMED_OUT``); time spent waiting for the rate governor does not count
  against the step;
* before each call, checks the subtask's token and cost limits with the
  usage so far, fits the conversation into the context window
  (:mod:`.context`), and when an orchestrator is configured acquires a
  permit; after it, reports the outcome. A 429 is reported as
  ``RATE_LIMITED`` and the call goes back in line: it is never a failure
  and never uses a retry. ``RESOURCE_EXHAUSTED`` ends the attempt with
  ``BUDGET_EXHAUSTED``, keeping what was done;
* reserves tool calls with the orchestrator before running them, then runs
  them in order; every result goes back as a tool message, bounded to
  ``tool_output_limit`` characters;
* emits events as things happen and opens an OpenTelemetry span per model
  call and per tool call.

Cancellation propagates out of :meth:`AgentLoop.run`; :meth:`AgentLoop.outcome`
then describes what was done so far.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelProvider,
    PermanentProviderError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ToolCall,
    TransientProviderError,
    Usage,
)
from swarmd.plugins.runtime import permits
from swarmd.plugins.runtime.context import estimate_request_tokens, fit_context, shrink_tool_output
from swarmd.plugins.runtime.events import EventEmitter
from swarmd.plugins.runtime.permits import BudgetExhausted, Governor, Permit
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.v1 import common_pb2

__all__ = ["AgentLoop", "LoopConfig", "LoopOutcome", "OutcomeKind", "salvage_textual_tool_calls"]

log = logging.getLogger(__name__)

CONTINUE_PROMPT = (
    "Your previous reply was cut off by the output length limit. Continue exactly where you stopped."
)
#: Without a governor, the longest a 429 makes the loop sleep before asking again.
MAX_LOCAL_BACKOFF_SECS = 60.0
#: Output tokens kept free in the context window when no ``max_output_tokens`` is set.
DEFAULT_OUTPUT_RESERVE = 4096


class OutcomeKind(enum.Enum):
    COMPLETED = "completed"
    MAX_STEPS = "max_steps"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CANCELLED = "cancelled"


@dataclass
class LoopConfig:
    """Limits and knobs of one loop."""

    max_steps: int = 100
    #: A step (model call plus its tools) taking longer ends the attempt TIMED_OUT.
    idle_timeout_secs: float = 600.0
    #: One model call taking longer fails the attempt (transient).
    call_timeout_secs: float = 120.0
    context_window: int = 128_000
    #: max_tokens of each completion (also reserved out of the context window);
    #: 0 sends none (the server's default applies) and reserves DEFAULT_OUTPUT_RESERVE.
    max_output_tokens: int = 0
    temperature: float | None = None
    #: In-place retries of a transiently failed model call, and their delays
    #: (doubling from base to max, less up to a quarter of jitter).
    model_retries: int = 5
    model_retry_base_secs: float = 0.5
    model_retry_max_secs: float = 8.0
    #: Token and cost limits of the subtask (0 = unlimited).
    max_total_tokens: int = 0
    max_cost_usd: float = 0.0
    #: Prices in US dollars per million tokens (0 = unknown: cost is not computed).
    price_prompt_per_mtok: float = 0.0
    price_completion_per_mtok: float = 0.0
    #: Characters of a tool output that enter the conversation.
    tool_output_limit: int = 6000

    @property
    def output_reserve(self) -> int:
        """Tokens kept free for the reply when fitting the context."""
        return self.max_output_tokens or DEFAULT_OUTPUT_RESERVE

    def model_retry_delay(self, retry: int) -> float:
        """Seconds before in-place retry ``retry`` (0-based) of a model call."""
        ceiling = min(self.model_retry_max_secs, self.model_retry_base_secs * 2 ** min(retry, 30))
        return random.uniform(0.75 * ceiling, ceiling)

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.price_prompt_per_mtok + usage.completion_tokens * self.price_completion_per_mtok
        ) / 1_000_000


@dataclass
class LoopOutcome:
    """How an attempt's loop ended and what it did."""

    kind: OutcomeKind
    output: str = ""
    steps: int = 0
    tool_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    error: str = ""
    failure_kind: common_pb2.FailureKind = common_pb2.FAILURE_KIND_UNSPECIFIED

    @property
    def success(self) -> bool:
        return self.kind is OutcomeKind.COMPLETED


_TEXT_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def salvage_textual_tool_calls(content: str, known: set[str], step: int) -> tuple[str, list[ToolCall]]:
    """Tool calls a model wrote as ``<tool_call>{json}</tool_call>`` text.

    Only well-formed calls to known tools are taken; the markup is removed
    from the text. Returns (remaining text, calls).
    """
    calls: list[ToolCall] = []

    def take(match: re.Match[str]) -> str:
        try:
            obj = json.loads(match.group(1))
        except ValueError:
            return match.group(0)
        if not isinstance(obj, dict) or obj.get("name") not in known:
            return match.group(0)
        args = obj.get("arguments", obj.get("parameters", {}))
        calls.append(
            ToolCall(f"text_call_{step}_{len(calls)}", obj["name"], args if isinstance(args, str) else json.dumps(args))
        )
        return ""

    remaining = _TEXT_CALL.sub(take, content)
    return (remaining.strip() if calls else content), calls


class _StepTimer:
    """The idle deadline of one step, extendable by time spent in line."""

    def __init__(self, timeout: asyncio.Timeout) -> None:
        self._timeout = timeout

    def extend(self, seconds: float) -> None:
        when = self._timeout.when()
        if when is not None and seconds > 0:
            self._timeout.reschedule(when + seconds)


class AgentLoop:
    """One sub-agent conversation (see the module docstring)."""

    def __init__(
        self,
        provider: ModelProvider,
        toolbox: Toolbox,
        *,
        system_prompt: str,
        user_prompt: str,
        config: LoopConfig | None = None,
        events: EventEmitter | None = None,
        governor: Governor | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.provider = provider
        self.toolbox = toolbox
        self.config = config or LoopConfig()
        self.events = events or EventEmitter("", "", None)
        self.governor = governor
        self.tracer = tracer or trace.NoOpTracer()
        self.messages: list[Message] = [Message("system", system_prompt), Message("user", user_prompt)]
        self.steps = 0
        self.tool_calls = 0
        self.usage = Usage()
        self.cost_usd = 0.0
        self.rate_limit_hits = 0
        self.model_retries = 0  # in-place retries of transiently failed model calls
        self._output: list[str] = []
        self._continuing = False

    @property
    def output(self) -> str:
        return "\n".join(self._output)

    def outcome(self, kind: OutcomeKind, error: str = "", failure_kind: common_pb2.FailureKind | None = None) -> LoopOutcome:
        """An outcome carrying everything done so far."""
        if failure_kind is None:
            failure_kind = {
                OutcomeKind.COMPLETED: common_pb2.FAILURE_KIND_UNSPECIFIED,
                OutcomeKind.MAX_STEPS: common_pb2.FAILURE_KIND_MAX_STEPS,
                OutcomeKind.TIMED_OUT: common_pb2.FAILURE_KIND_TIMEOUT,
                OutcomeKind.FAILED: common_pb2.FAILURE_KIND_PERMANENT,
                OutcomeKind.BUDGET_EXHAUSTED: common_pb2.FAILURE_KIND_BUDGET_EXHAUSTED,
                OutcomeKind.CANCELLED: common_pb2.FAILURE_KIND_CANCELLED,
            }[kind]
        return LoopOutcome(
            kind=kind,
            output=self.output,
            steps=self.steps,
            tool_calls=self.tool_calls,
            usage=Usage(**vars(self.usage)),
            cost_usd=self.cost_usd,
            error=error,
            failure_kind=failure_kind,
        )

    # -- the loop ---------------------------------------------------------------

    async def run(self) -> LoopOutcome:
        cfg = self.config
        while True:
            if self.steps >= cfg.max_steps:
                return self.outcome(OutcomeKind.MAX_STEPS, f"Sub-agent hit max steps ({cfg.max_steps})")
            exhausted = self._budget_left()
            if exhausted:
                return self.outcome(OutcomeKind.BUDGET_EXHAUSTED, exhausted)
            step_timeout = asyncio.timeout(cfg.idle_timeout_secs)
            try:
                async with step_timeout:
                    finished = await self._step(_StepTimer(step_timeout))
            except TimeoutError:
                if not step_timeout.expired():
                    raise
                return self.outcome(
                    OutcomeKind.TIMED_OUT,
                    f"Sub-agent timed out after {cfg.idle_timeout_secs:g}s (a step took longer than that)",
                )
            except BudgetExhausted as exc:
                return self.outcome(OutcomeKind.BUDGET_EXHAUSTED, f"Budget exhausted: {exc}")
            except ProviderError as exc:
                kind = common_pb2.FAILURE_KIND_TRANSIENT if exc.transient else common_pb2.FAILURE_KIND_PERMANENT
                return self.outcome(OutcomeKind.FAILED, str(exc), kind)
            if finished:
                return self.outcome(OutcomeKind.COMPLETED)

    def _budget_left(self) -> str:
        """Why the subtask may not make another call ("" when it may)."""
        cfg = self.config
        if cfg.max_total_tokens and self.usage.total_tokens >= cfg.max_total_tokens:
            return (
                f"Subtask token budget exhausted: used {self.usage.total_tokens} of {cfg.max_total_tokens} tokens"
            )
        if cfg.max_cost_usd and self.cost_usd >= cfg.max_cost_usd:
            return f"Subtask cost budget exhausted: spent ${self.cost_usd:.4f} of ${cfg.max_cost_usd:.4f}"
        return ""

    async def _step(self, timer: _StepTimer) -> bool:
        """One model call and its tools; True when the agent is done."""
        cfg = self.config
        self.steps += 1
        step = self.steps
        specs = self.toolbox.specs()
        report = fit_context(
            self.messages, context_window=cfg.context_window, reserve_tokens=cfg.output_reserve, tools=specs
        )
        if report.changed:
            log.info(
                "context of %s trimmed: %d results cut, %d messages dropped (%d -> %d tokens)",
                self.events.subtask_id,
                report.results_truncated,
                report.messages_dropped,
                report.tokens_before,
                report.tokens_after,
            )
        request = CompletionRequest(
            messages=list(self.messages),
            tools=specs,
            temperature=cfg.temperature,
            max_tokens=cfg.max_output_tokens or None,
        )
        started = time.monotonic()
        response = await self._call_model(request, timer, step)
        duration_ms = int((time.monotonic() - started) * 1000)
        self.events.agent_step(
            step=step, usage=response.usage, finish_reason=response.finish_reason, duration_ms=duration_ms
        )

        message = response.message
        calls = list(message.tool_calls)
        text = message.content or ""
        if not calls and "<tool_call>" in text:
            text, calls = salvage_textual_tool_calls(text, set(self.toolbox.names), step)
            message = Message("assistant", text or None, calls)
        if text.strip():
            if self._continuing and self._output:
                self._output[-1] += text
            else:
                self._output.append(text.strip())
            self.events.agent_message(content=text, is_tool_call=bool(calls), step=step)
        self._continuing = False
        self.messages.append(Message("assistant", text or None, calls))

        if not calls:
            if response.finish_reason == "length":
                self._continuing = True
                self.messages.append(Message("user", CONTINUE_PROMPT))
                return False
            return True

        if self.governor is not None:
            await self.governor.reserve_tools(len(calls))
        for call in calls:
            await self._run_tool(call, step)
        return False

    async def _call_model(self, request: CompletionRequest, timer: _StepTimer, step: int) -> CompletionResponse:
        cfg = self.config
        estimated = estimate_request_tokens(request.messages, request.tools) + cfg.output_reserve
        rate_limited = failures = 0
        retried = 0.0
        while True:
            permit: Permit | None = None
            if self.governor is not None:
                waiting = time.monotonic()
                permit = await self.governor.acquire(estimated)
                timer.extend(time.monotonic() - waiting)
                if permit.waited_ms >= 1000:
                    self.events.rate_limited(key=self.governor.key_text, waited_ms=permit.waited_ms, http_status=0)
            with self.tracer.start_as_current_span(
                "swarmd.model.complete",
                attributes={
                    "gen_ai.system": self.provider.name,
                    "gen_ai.request.model": self.provider.model,
                    "gen_ai.request.max_tokens": cfg.max_output_tokens,
                    "swarmd.model_retry": failures,
                    "swarmd.step": step,
                    "swarmd.estimated_tokens": estimated,
                },
            ) as span:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation that arrives as the call completes.
                    async with asyncio.timeout(cfg.call_timeout_secs):
                        response = await self.provider.complete(request)
                except RateLimitError as exc:
                    rate_limited += 1
                    self.rate_limit_hits += 1
                    span.set_attribute("http.response.status_code", exc.status)
                    span.set_status(Status(StatusCode.ERROR, "rate limited"))
                    await self._report(permit, permits.RATE_LIMITED, exc.status, exc.headers)
                    waited = await self._back_off(exc, rate_limited)
                    timer.extend(waited)
                    key = self.governor.key_text if self.governor else "|".join(self.provider.rate_limit_key())
                    self.events.rate_limited(key=key, waited_ms=int(waited * 1000), http_status=exc.status or 429)
                    continue
                except TimeoutError:
                    await self._report(permit, permits.ERROR, 0, {})
                    raise ProviderTimeoutError(
                        f"model call timed out after {cfg.call_timeout_secs:g}s ({self.provider.name}/{self.provider.model})"
                    ) from None
                except ProviderError as exc:
                    await self._report(permit, permits.ERROR, exc.status, exc.headers)
                    span.set_status(Status(StatusCode.ERROR, exc.message[:200]))
                    if not isinstance(exc, TransientProviderError) or isinstance(exc, ProviderTimeoutError):
                        raise
                    if failures >= cfg.model_retries:
                        if not failures:
                            raise
                        why = f"{exc.message} (still failing after {failures} retries over {retried:.0f}s)"
                        raise TransientProviderError(why, status=exc.status, headers=exc.headers) from exc
                    delay = cfg.model_retry_delay(failures)
                    failures += 1
                    self.model_retries += 1
                    log.warning("model call failed (%s); retry %d of %d in %.1fs", exc, failures, cfg.model_retries, delay)
                    await asyncio.sleep(delay)
                    retried += delay
                    timer.extend(delay)
                    continue
                except asyncio.CancelledError:
                    await self._report_quietly(permit, permits.ABANDONED)
                    raise
                except Exception as exc:
                    await self._report(permit, permits.ERROR, 0, {})
                    log.exception("provider %s crashed", self.provider.name)
                    raise PermanentProviderError(
                        f"provider {self.provider.name} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                cost = self.config.cost(response.usage)
                self.usage += response.usage
                self.cost_usd += cost
                span.set_attribute("http.response.status_code", response.status)
                span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
                span.set_attribute("gen_ai.usage.input_tokens", response.usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", response.usage.completion_tokens)
                span.set_attribute("swarmd.tool_calls", len(response.message.tool_calls))
                await self._report(
                    permit, permits.SUCCESS, response.status, response.headers, usage=response.usage, cost=cost
                )
                return response

    async def _back_off(self, exc: RateLimitError, count: int) -> float:
        """With a governor, just go back in line (it paces); alone, honour Retry-After."""
        if self.governor is not None:
            return 0.0
        delay = exc.retry_after
        if delay is None:
            delay = random.uniform(0, min(MAX_LOCAL_BACKOFF_SECS, 0.5 * 2**count))
        delay = min(max(delay, 0.0), MAX_LOCAL_BACKOFF_SECS)
        await asyncio.sleep(delay)
        return delay

    async def _report(
        self,
        permit: Permit | None,
        outcome: int,
        status: int,
        headers: dict[str, str],
        *,
        usage: Usage | None = None,
        cost: float = 0.0,
    ) -> None:
        if self.governor is not None:
            await self.governor.report(
                permit, outcome, http_status=status, headers=headers, usage=usage, cost_usd=cost
            )

    async def _report_quietly(self, permit: Permit | None, outcome: int) -> None:
        """Report an abandoned call while being cancelled: short and never raising."""
        if self.governor is None:
            return
        try:
            async with asyncio.timeout(2.0):
                await self.governor.report(permit, outcome)
        except (Exception, asyncio.CancelledError):
            pass

    async def _run_tool(self, call: ToolCall, step: int) -> None:
        self.tool_calls += 1
        self.events.agent_tool_call(tool_name=call.name, step=step)
        with self.tracer.start_as_current_span(
            f"swarmd.tool {call.name}",
            attributes={"swarmd.tool.name": call.name, "swarmd.step": step, "swarmd.tool.call_id": call.id},
        ) as span:
            result = await self.toolbox.execute(call.name, call.arguments)
            span.set_attribute("swarmd.tool.success", result.success)
            span.set_attribute("swarmd.tool.output_chars", len(result.output))
            if not result.success:
                span.set_status(Status(StatusCode.ERROR, result.output[:200]))
        self.events.agent_tool_call_detail(
            tool_name=call.name,
            arguments=call.arguments,
            output=result.output,
            success=result.success,
            duration_ms=result.duration_ms,
            step=step,
        )
        content = shrink_tool_output(result.output, self.config.tool_output_limit)
        self.messages.append(Message("tool", content, tool_call_id=call.id, name=call.name))
