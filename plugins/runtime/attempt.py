"""One sub-agent attempt, from an ``ExecuteSubTaskRequest`` to a ``SubTaskResult``.

This is the whole runtime as an executor plugin uses it (the ``local``
executor runs it as an asyncio task; any other host of the runtime can run
it the same way)::

    result = await run_attempt(request, runtime, emit=events.append)

Steps: resolve the workspace (a git worktree for a mutating subtask with
``workspace.worktree``; the repository itself for read-only subtasks or when
worktrees are off), build the prompts and the tool set, create the provider
through :func:`~swarmd.plugins.providers.factory.create_provider` (record
mode included), connect to the orchestrator (permits, budgets) and the
result store (swarm_share) when their addresses are given, run the
:class:`~swarmd.plugins.runtime.loop.AgentLoop`, then bring the work back:
commit, merge (a conflicted or failed merge makes the result unsuccessful),
attach the patch. Events are emitted as they happen; the result is returned,
never raised: a failure of any step is a failed result with a failure kind.

Executor options: :mod:`swarmd.plugins.runtime.settings`. Bringing the work
back (commit, merge, patch; or keeping the worktree): :mod:`swarmd.plugins.runtime.wrapup`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace

from swarmd.plugins.model import ModelProvider, ProviderError, parse_model_string
from swarmd.plugins.providers.factory import create_provider
from swarmd.plugins.runtime.cache import CacheClient, cache_enabled, cache_key, toolset_version
from swarmd.plugins.runtime.channels import ChannelPool
from swarmd.plugins.runtime.env import scrub_environment
from swarmd.plugins.runtime.events import EventEmitter, EventSink, usage_to_proto
from swarmd.plugins.runtime.loop import AgentLoop, LoopConfig, LoopOutcome, OutcomeKind
from swarmd.plugins.runtime.permits import Governor
from swarmd.plugins.runtime.prompts import (
    DependencyContext,
    build_system_prompt,
    build_user_prompt,
    find_agents_md,
)
from swarmd.plugins.runtime.settings import RuntimeSettings, SettingsError
from swarmd.plugins.runtime.share import ShareClient
from swarmd.plugins.runtime.speculative import variant_claim
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.runtime.wrapup import CancelToken, Finish, cancelled_outcome, uncancel, wrap_up
from swarmd.plugins.sandbox import Sandbox, SandboxUnavailable, probe
from swarmd.plugins.tool import ToolContext
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["CancelToken", "Runtime", "RuntimeSettings", "SettingsError", "run_attempt"]

log = logging.getLogger(__name__)



@dataclass
class Runtime:
    """What an attempt needs from its host."""

    plugins: Any  # swarmd.plugins.manager.Plugins (providers and tools)
    channels: ChannelPool = field(default_factory=ChannelPool)
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    options: Mapping[str, str] = field(default_factory=dict)
    #: Name reported in AgentStarted.executor.
    executor_name: str = "local"
    #: Environment for tool subprocesses before scrubbing (default: os.environ).
    environ: Mapping[str, str] | None = None
    #: Makes the worktree manager for a repository (tests may substitute).
    worktree_manager: Callable[[Path], Any] | None = None
    #: HTTP clients the providers of all attempts share (an
    #: :class:`~swarmd.plugins.providers.http_clients.HttpClientPool` the host
    #: closes); ``None``: each provider has its own client.
    http_clients: Any = None


#: The bubblewrap paths :func:`probe` has answered for (its answer is cached).
_PROBED: set[str | None] = set()


def _default_worktree_manager(repo: Path) -> Any:
    from swarmd.plugins.runtime.worktree import WorktreeManager

    return WorktreeManager(repo)


def _checkout_policy(settings: RuntimeSettings) -> Any:
    from swarmd.plugins.runtime.worktree.lazy import CheckoutPolicy

    return CheckoutPolicy.from_options(settings.worktree_options)


def _files_gate(worktree: Any) -> Any:
    """What tool calls wait for: the worktree's files written in the background, if they are."""
    ready = getattr(worktree, "ready", None)
    if ready is None:
        return None
    from swarmd.plugins.runtime.worktree.deferred import gate

    return gate(ready)


def _worktree_files(worktree: Any) -> Any:
    """The lazy worktree's files for the tools, None for a full checkout."""
    if worktree is None:
        return None
    from swarmd.plugins.runtime.worktree.lazy import files_for, is_lazy

    return files_for(worktree.path) if is_lazy(worktree.path) else None


def _failed(error: str, kind: common_pb2.FailureKind = common_pb2.FAILURE_KIND_PERMANENT) -> LoopOutcome:
    return LoopOutcome(OutcomeKind.FAILED, error=error, failure_kind=kind)


async def run_attempt(
    request: executor_pb2.ExecuteSubTaskRequest,
    runtime: Runtime,
    *,
    emit: EventSink | None = None,
    cancel: CancelToken | None = None,
) -> common_pb2.SubTaskResult:
    """Run one attempt; events go to ``emit``; returns exactly one result.

    Cancelling the task running this coroutine after ``cancel.request()``
    ends the attempt at its next await with a CANCELLED result (the worktree
    is kept); any other cancellation propagates.
    """
    started = time.monotonic()
    subtask = request.subtask
    events = EventEmitter(request.swarm_id, subtask.id, emit)
    with runtime.tracer.start_as_current_span(
        "swarmd.subtask.attempt",
        attributes={
            "swarmd.swarm_id": request.swarm_id,
            "swarmd.subtask_id": subtask.id,
            "swarmd.subtask.name": subtask.name or subtask.id,
            "swarmd.attempt": request.attempt or 1,
            "swarmd.read_only": subtask.read_only,
            "swarmd.executor": runtime.executor_name,
        },
    ) as span:
        finish = await _attempt(request, runtime, events, cancel or CancelToken())
        outcome = finish.outcome
        success = outcome.success
        span.set_attribute("swarmd.success", success)
        span.set_attribute("swarmd.steps", outcome.steps)
        span.set_attribute("swarmd.tool_calls", outcome.tool_calls)
        if not success:
            span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.error[:200]))
    for warning in finish.warnings:
        events.warning(warning.code, warning.message)
    if finish.merge.outcome != common_pb2.MERGE_OUTCOME_UNSPECIFIED and finish.merge.outcome != (
        common_pb2.MERGE_OUTCOME_NOT_APPLICABLE
    ):
        events.merge_completed(finish.merge)
    if outcome.error:
        events.agent_error(outcome.error, outcome.failure_kind)
    events.agent_output(outcome.output)
    events.agent_complete(success=success, steps=outcome.steps)
    result = common_pb2.SubTaskResult(
        subtask_id=subtask.id,
        subagent_id=f"agent-{subtask.id}",
        success=success,
        result=outcome.output,
        steps=outcome.steps,
        tool_calls=outcome.tool_calls,
        execution_time_ms=int((time.monotonic() - started) * 1000),
        error=outcome.error,
        artifacts=finish.artifacts,
        retry_count=max(0, (request.attempt or 1) - 1),
        status=finish.status,
        usage=usage_to_proto(outcome.usage),
        cost_usd=outcome.cost_usd,
        merge=finish.merge,
        failure_kind=common_pb2.FAILURE_KIND_UNSPECIFIED if success else outcome.failure_kind,
        cache_key=finish.cache_key or request.cache_key,
        cached=finish.cached,
        worktree_path=finish.worktree_path,
    )
    if success and finish.cache_key and not finish.cached:
        await _cache_store(request, runtime, finish, result)
    return result


async def _attempt(
    request: executor_pb2.ExecuteSubTaskRequest, runtime: Runtime, events: EventEmitter, cancel: CancelToken
) -> Finish:
    subtask = request.subtask
    workspace = request.workspace
    config = request.config
    agent_name = f"agent-{subtask.id}"
    not_applicable = common_pb2.MergeResult(outcome=common_pb2.MERGE_OUTCOME_NOT_APPLICABLE)

    def started(worktree_path: str = "") -> None:
        events.agent_started(
            agent_name=agent_name,
            specialty=subtask.specialty,
            attempt=request.attempt or 1,
            worktree_path=worktree_path,
            executor=runtime.executor_name,
        )

    try:
        settings = RuntimeSettings.resolve(runtime.options, dict(config.executor_options))
    except SettingsError as exc:
        started()
        return Finish(_failed(str(exc)), merge=not_applicable)

    repo_text = workspace.repo_path or config.repo_path
    repo = Path(repo_text) if repo_text else None
    if repo is None or not repo.is_dir():
        started()
        where = repo_text or "(empty)"
        return Finish(
            _failed(f"workspace.repo_path {where} is not a directory on this executor's host"), merge=not_applicable
        )

    manager: Any = None
    worktree: Any = None
    if workspace.worktree and not subtask.read_only:
        factory = runtime.worktree_manager or _default_worktree_manager
        try:
            manager = factory(repo)
            if hasattr(manager, "checkout_policy"):
                manager.checkout_policy = _checkout_policy(settings)
            if hasattr(manager, "git_engine"):
                manager.git_engine = settings.worktree_options.get("worktree.git_engine") or None
            if hasattr(manager, "defer_checkout"):
                manager.defer_checkout = True  # the first model call does not need the files
            worktree = await manager.create(
                request.swarm_id,
                subtask.id,
                workspace.base_commit or None,
                [d.commit for d in request.dependencies if d.commit],
            )
        except asyncio.CancelledError:
            if not cancel.requested:
                raise
            uncancel()
            started()
            return Finish(cancelled_outcome(cancel), status=common_pb2.SUB_TASK_STATUS_CANCELLED, merge=not_applicable)
        except Exception as exc:
            started()
            return Finish(_failed(f"Failed to create required worktree for mutating subtask: {exc}"), merge=not_applicable)
    workdir = Path(worktree.path) if worktree is not None else repo
    started(str(worktree.path) if worktree is not None else "")

    claim = variant_claim(request, runtime.channels)
    key, base_tree, cached = await _cache_lookup(request, runtime, settings, repo, manager, worktree, events)
    if cached is not None:
        outcome = LoopOutcome(OutcomeKind.COMPLETED, output=cached.result)
        finish = await wrap_up(
            request, manager, worktree, outcome, cancel, events, commit_ignored=settings.commit_ignored, claim=claim
        )
        finish.cache_key, finish.base_tree, finish.cached = key, base_tree, finish.outcome.success
        return finish

    try:
        provider = create_provider(
            runtime.plugins,
            config.model,
            key=subtask.id,
            subtask_name=subtask.name,
            options=settings.provider_options,
            record_path=settings.record_path,
            http_clients=runtime.http_clients,
        )
    except ProviderError as exc:
        outcome = _failed(str(exc))
        return await wrap_up(request, manager, worktree, outcome, cancel, events, commit_ignored=settings.commit_ignored)
    except Exception as exc:  # a provider's constructor rejecting its options
        outcome = _failed(f"cannot create model provider for {config.model!r}: {type(exc).__name__}: {exc}")
        return await wrap_up(request, manager, worktree, outcome, cancel, events, commit_ignored=settings.commit_ignored)

    try:
        bwrap = settings.sandbox.bwrap or None
        if settings.sandbox.mode != "off" and bwrap not in _PROBED:
            await asyncio.to_thread(probe, bwrap)  # cached; off the event loop
            _PROBED.add(bwrap)
        sandbox = Sandbox(settings.sandbox, workdir, swarm_id=request.swarm_id)
    except SandboxUnavailable as exc:
        await provider.aclose()
        return await wrap_up(request, manager, worktree, _failed(str(exc)), cancel)
    try:
        loop = _build_loop(request, runtime, settings, provider, workdir, worktree, events, sandbox)
        try:
            outcome = await loop.run()
        except asyncio.CancelledError:
            if not cancel.requested:
                raise
            uncancel()
            outcome = loop.outcome(OutcomeKind.CANCELLED, f"Sub-agent cancelled: {cancel.reason}")
    finally:
        try:
            await provider.aclose()
        except Exception:
            log.exception("closing provider %s failed", config.model)
    finish = await wrap_up(
        request, manager, worktree, outcome, cancel, events, commit_ignored=settings.commit_ignored, claim=claim
    )
    finish.cache_key, finish.base_tree = key, base_tree
    return finish


async def _cache_lookup(
    request: executor_pb2.ExecuteSubTaskRequest,
    runtime: Runtime,
    settings: RuntimeSettings,
    repo: Path,
    manager: Any,
    worktree: Any,
    events: EventEmitter,
) -> tuple[str, str, common_pb2.SubTaskResult | None]:
    """Key, base tree and (on a usable hit) the cached result; ("", "", None) when off.

    The cache applies only where the repository state is known: a worktree's
    deterministic base, or the swarm's base commit for a read-only subtask.
    """
    if not request.result_store_address or not cache_enabled(request.config):
        return "", "", None
    try:
        if worktree is not None:
            base_tree = await manager.tree_hash(worktree.base_commit)
        elif request.workspace.base_commit:
            base_tree = await _default_worktree_manager(repo).tree_hash(request.workspace.base_commit)
        else:
            return "", "", None
    except Exception as exc:
        log.warning("no cache for %s: cannot read the base tree: %s", request.subtask.id, exc)
        return "", "", None
    provider, model = parse_model_string(request.config.model)
    tools = [e.cls for e in runtime.plugins.tools if not request.subtask.read_only or e.cls.read_only]
    key = cache_key(request, provider=provider or "", model=model, toolset=toolset_version(tools), base_tree=base_tree)
    client = CacheClient(runtime.channels.get(request.result_store_address), rpc_timeout=settings.rpc_timeout_secs)
    entry = await client.get_entry(key)
    hit = entry is not None
    if entry is not None and worktree is not None and entry.patch and not await manager.apply_patch(worktree, entry.patch):
        log.info("cache entry %s for %s no longer applies: a miss", key[:12], request.subtask.id)
        hit = False
    events.cache_lookup(hit=hit, key=key)
    return key, base_tree, (entry.result if hit and entry is not None else None)


async def _cache_store(
    request: executor_pb2.ExecuteSubTaskRequest, runtime: Runtime, finish: Finish, result: common_pb2.SubTaskResult
) -> None:
    patch = b"".join(a.content for a in finish.artifacts if a.artifact_type == "patch")
    settings = RuntimeSettings.resolve(runtime.options, dict(request.config.executor_options))
    client = CacheClient(runtime.channels.get(request.result_store_address), rpc_timeout=settings.rpc_timeout_secs)
    await client.put(
        finish.cache_key,
        result,
        patch=patch,
        base_tree=finish.base_tree,
        task_name=request.subtask.name or request.subtask.id,
        ttl_secs=int(request.config.cache_ttl_secs or 0),
    )


def _build_loop(
    request: executor_pb2.ExecuteSubTaskRequest,
    runtime: Runtime,
    settings: RuntimeSettings,
    provider: ModelProvider,
    workdir: Path,
    worktree: Any,
    events: EventEmitter,
    sandbox: Sandbox,
) -> AgentLoop:
    subtask = request.subtask
    config = request.config
    services: dict[str, Any] = {}
    if request.result_store_address:
        services["share"] = ShareClient(
            runtime.channels.get(request.result_store_address),
            scope=request.swarm_id,
            producer=subtask.id,
            rpc_timeout=settings.rpc_timeout_secs,
        )
    env = scrub_environment(os.environ if runtime.environ is None else runtime.environ)
    ctx = ToolContext(
        workdir=workdir.resolve(),
        swarm_id=request.swarm_id,
        subtask_id=subtask.id,
        env=env,
        services=services,
        sandbox=sandbox,
        files=_worktree_files(worktree),
    )
    toolbox = Toolbox.from_registry(
        runtime.plugins.tools, ctx, read_only=subtask.read_only, timeout=settings.tool_timeout_secs
    )
    toolbox.gate = _files_gate(worktree)
    if "bash" in toolbox and sandbox.unconfined_reason is not None:
        events.warning(
            "bash_unconfined",
            f"{sandbox.describe()}; its commands can read and write whatever the executor's user can "
            "(set bash.sandbox=on to refuse to run unconfined)",
        )
    system_prompt = build_system_prompt(
        subtask_id=subtask.id,
        specialty=subtask.specialty,
        working_dir=str(ctx.workdir),
        tools=toolbox.specs(),
        read_only=subtask.read_only,
        worktree_branch=worktree.branch if worktree is not None else "",
        agents_md=find_agents_md(ctx.workdir, ctx.workdir if worktree is not None else None),
    )
    user_prompt = build_user_prompt(
        subtask.instruction,
        [DependencyContext(d.name or d.subtask_id, d.result, d.success, d.error) for d in request.dependencies],
        carried_over=getattr(worktree, "carried_over", ""),
    )
    governor = None
    if request.orchestrator_address:
        governor = Governor(
            runtime.channels.get(request.orchestrator_address),
            swarm_id=request.swarm_id,
            subtask_id=subtask.id,
            key=provider.rate_limit_key(),
            rpc_timeout=settings.rpc_timeout_secs,
            acquire_timeout=float(config.subtask_timeout_secs or 3600),
        )
    loop_config = LoopConfig(
        max_steps=subtask.max_steps or config.max_steps_per_subagent or 100,
        idle_timeout_secs=float(config.subagent_timeout_secs or 600),
        call_timeout_secs=settings.call_timeout_secs,
        context_window=settings.context_window,
        max_output_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
        max_total_tokens=int(request.max_tokens),
        max_cost_usd=float(request.max_cost_usd),
        price_prompt_per_mtok=settings.price_prompt_per_mtok,
        price_completion_per_mtok=settings.price_completion_per_mtok,
        tool_output_limit=settings.tool_output_limit,
    )
    return AgentLoop(
        provider,
        toolbox,
        system_prompt=system_prompt,
        user_prompt=user_prompt,
        config=loop_config,
        events=events,
        governor=governor,
        tracer=runtime.tracer,
    )
