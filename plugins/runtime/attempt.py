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

Executor options (the executor service's ``executor.options``, overridden per
swarm by ``config.executor_options``):

``provider.<name>``
    an option for the model provider, e.g. ``provider.base_url``,
    ``provider.timeout``, ``provider.cassette_dir``. A swarm may not set
    ``provider.api_key``/``provider.api_key_env``, and a swarm that sets its
    own ``provider.base_url`` does not get the service's API key.
``record`` (alias ``record_path``)
    record every model response into this cassette (record mode; what
    ``swarmd run --record`` sets).
``context_window`` (128000), ``max_output_tokens`` (unset: none is sent, the
server's own default applies), ``call_timeout_secs``
(120), ``temperature`` (provider default), ``tool_output_limit`` (6000),
``price_prompt_per_mtok``/``price_completion_per_mtok`` (0: cost unknown; the
orchestrator prices calls from its own table), ``rpc_timeout_secs`` (30),
``tool_timeout_secs`` (120: how long one tool call may run unless its own
arguments allow more, as bash's ``timeout`` does).
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
from swarmd.plugins.runtime.share import ShareClient
from swarmd.plugins.runtime.toolbox import DEFAULT_TOOL_TIMEOUT_SECS, Toolbox
from swarmd.plugins.tool import ToolContext
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["CancelToken", "Runtime", "RuntimeSettings", "SettingsError", "run_attempt"]

log = logging.getLogger(__name__)

MAX_PATCH_BYTES = 8 * 1024 * 1024
SWARM_FORBIDDEN = ("provider.api_key", "provider.api_key_env", "provider.use_env_key")


_NUMBERS: tuple[tuple[str, type[int] | type[float]], ...] = (
    ("context_window", int),
    ("max_output_tokens", int),
    ("call_timeout_secs", float),
    ("temperature", float),
    ("tool_output_limit", int),
    ("price_prompt_per_mtok", float),
    ("price_completion_per_mtok", float),
    ("rpc_timeout_secs", float),
    ("tool_timeout_secs", float),
)
_ZERO_OK = frozenset({"max_output_tokens", "temperature", "price_prompt_per_mtok", "price_completion_per_mtok"})


class SettingsError(ValueError):
    """An executor option has a bad value."""


@dataclass
class RuntimeSettings:
    """Executor options as the runtime uses them (see the module docstring)."""

    provider_options: dict[str, str] = field(default_factory=dict)
    record_path: str | None = None
    context_window: int = 128_000
    max_output_tokens: int = 0  # 0: unset
    call_timeout_secs: float = 120.0
    temperature: float | None = None
    tool_output_limit: int = 6000
    price_prompt_per_mtok: float = 0.0
    price_completion_per_mtok: float = 0.0
    rpc_timeout_secs: float = 30.0
    tool_timeout_secs: float = DEFAULT_TOOL_TIMEOUT_SECS

    @classmethod
    def resolve(cls, service: Mapping[str, str], swarm: Mapping[str, str] | None = None) -> RuntimeSettings:
        """Merge service-level and per-swarm options; raises :class:`SettingsError`."""
        swarm = swarm or {}
        for name in swarm:
            if name in SWARM_FORBIDDEN:
                raise SettingsError(f"executor option {name} may only be set in the executor service's settings")
        merged = {**service, **swarm}
        out = cls()
        out.provider_options = {k[len("provider.") :]: v for k, v in merged.items() if k.startswith("provider.")}
        swarm_url = swarm.get("provider.base_url")
        if swarm_url and swarm_url != service.get("provider.base_url"):
            out.provider_options["use_env_key"] = "false"
        out.record_path = merged.get("record") or merged.get("record_path") or None
        for name, kind in _NUMBERS:
            raw = merged.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"executor option {name}={raw!r} is not a valid {kind.__name__}") from None
            if value < 0 or (value == 0 and name not in _ZERO_OK):
                raise SettingsError(f"executor option {name}={raw!r} must be positive")
            setattr(out, name, value)
        return out


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


class CancelToken:
    """Set by whoever cancels an attempt on purpose, before cancelling its task.

    Only a cancellation with the token set becomes a CANCELLED result;
    any other (the host shutting down) propagates.
    """

    def __init__(self) -> None:
        self.reason = ""
        self.requested = False

    def request(self, reason: str = "") -> None:
        self.requested = True
        self.reason = reason or "cancelled"


def _default_worktree_manager(repo: Path) -> Any:
    from swarmd.plugins.runtime.worktree import WorktreeManager

    return WorktreeManager(repo)


@dataclass
class _Finish:
    """The pieces of a result assembled as the attempt goes."""

    outcome: LoopOutcome
    status: int = common_pb2.SUB_TASK_STATUS_FAILED
    merge: common_pb2.MergeResult = field(default_factory=common_pb2.MergeResult)
    worktree_path: str = ""
    artifacts: list[common_pb2.SwarmArtifact] = field(default_factory=list)
    cache_key: str = ""
    base_tree: str = ""
    cached: bool = False


_STATUS = {
    OutcomeKind.COMPLETED: common_pb2.SUB_TASK_STATUS_COMPLETED,
    OutcomeKind.MAX_STEPS: common_pb2.SUB_TASK_STATUS_FAILED,
    OutcomeKind.TIMED_OUT: common_pb2.SUB_TASK_STATUS_TIMED_OUT,
    OutcomeKind.FAILED: common_pb2.SUB_TASK_STATUS_FAILED,
    OutcomeKind.BUDGET_EXHAUSTED: common_pb2.SUB_TASK_STATUS_FAILED,
    OutcomeKind.CANCELLED: common_pb2.SUB_TASK_STATUS_CANCELLED,
}


def _failed(error: str, kind: int = common_pb2.FAILURE_KIND_PERMANENT) -> LoopOutcome:
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
) -> _Finish:
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
        return _Finish(_failed(str(exc)), merge=not_applicable)

    repo_text = workspace.repo_path or config.repo_path
    repo = Path(repo_text) if repo_text else None
    if repo is None or not repo.is_dir():
        started()
        where = repo_text or "(empty)"
        return _Finish(
            _failed(f"workspace.repo_path {where} is not a directory on this executor's host"), merge=not_applicable
        )

    manager: Any = None
    worktree: Any = None
    if workspace.worktree and not subtask.read_only:
        factory = runtime.worktree_manager or _default_worktree_manager
        try:
            manager = factory(repo)
            worktree = await manager.create(
                request.swarm_id,
                subtask.id,
                workspace.base_commit or None,
                [d.commit for d in request.dependencies if d.commit],
            )
        except asyncio.CancelledError:
            if not cancel.requested:
                raise
            _uncancel()
            started()
            return _Finish(_cancelled_outcome(cancel), status=common_pb2.SUB_TASK_STATUS_CANCELLED, merge=not_applicable)
        except Exception as exc:
            started()
            return _Finish(_failed(f"Failed to create required worktree for mutating subtask: {exc}"), merge=not_applicable)
    workdir = Path(worktree.path) if worktree is not None else repo
    started(str(worktree.path) if worktree is not None else "")

    key, base_tree, cached = await _cache_lookup(request, runtime, settings, repo, manager, worktree, events)
    if cached is not None:
        outcome = LoopOutcome(OutcomeKind.COMPLETED, output=cached.result)
        finish = await _wrap_up(request, manager, worktree, outcome, cancel)
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
        return await _wrap_up(request, manager, worktree, outcome, cancel)
    except Exception as exc:  # a provider's constructor rejecting its options
        outcome = _failed(f"cannot create model provider for {config.model!r}: {type(exc).__name__}: {exc}")
        return await _wrap_up(request, manager, worktree, outcome, cancel)

    try:
        loop = _build_loop(request, runtime, settings, provider, workdir, worktree, events)
        try:
            outcome = await loop.run()
        except asyncio.CancelledError:
            if not cancel.requested:
                raise
            _uncancel()
            outcome = loop.outcome(OutcomeKind.CANCELLED, f"Sub-agent cancelled: {cancel.reason}")
    finally:
        try:
            await provider.aclose()
        except Exception:
            log.exception("closing provider %s failed", config.model)
    finish = await _wrap_up(request, manager, worktree, outcome, cancel)
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
    if hit and worktree is not None and entry.patch and not await manager.apply_patch(worktree, entry.patch):
        log.info("cache entry %s for %s no longer applies: a miss", key[:12], request.subtask.id)
        hit = False
    events.cache_lookup(hit=hit, key=key)
    return key, base_tree, (entry.result if hit and entry is not None else None)


async def _cache_store(
    request: executor_pb2.ExecuteSubTaskRequest, runtime: Runtime, finish: _Finish, result: common_pb2.SubTaskResult
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


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _cancelled_outcome(cancel: CancelToken) -> LoopOutcome:
    return LoopOutcome(
        OutcomeKind.CANCELLED, error=f"Sub-agent cancelled: {cancel.reason}", failure_kind=common_pb2.FAILURE_KIND_CANCELLED
    )


def _build_loop(
    request: executor_pb2.ExecuteSubTaskRequest,
    runtime: Runtime,
    settings: RuntimeSettings,
    provider: ModelProvider,
    workdir: Path,
    worktree: Any,
    events: EventEmitter,
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
        workdir=workdir.resolve(), swarm_id=request.swarm_id, subtask_id=subtask.id, env=env, services=services
    )
    toolbox = Toolbox.from_registry(
        runtime.plugins.tools, ctx, read_only=subtask.read_only, timeout=settings.tool_timeout_secs
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


async def _wrap_up(
    request: executor_pb2.ExecuteSubTaskRequest,
    manager: Any,
    worktree: Any,
    outcome: LoopOutcome,
    cancel: CancelToken,
) -> _Finish:
    """Bring the work back (success) or leave it safely in place (anything else)."""
    finish = _Finish(outcome, status=_STATUS[outcome.kind])
    if worktree is None:
        finish.merge = common_pb2.MergeResult(
            outcome=common_pb2.MERGE_OUTCOME_NOT_APPLICABLE,
            summary="read-only subtask: nothing to merge"
            if request.subtask.read_only
            else "worktrees are off: changes were made in the repository directly",
        )
        return finish
    finish.worktree_path = str(worktree.path)
    try:
        if outcome.kind is OutcomeKind.COMPLETED:
            # The agent finished: a cancel arriving now does not undo the work,
            # so the merge is allowed to complete and its result reported.
            merging = asyncio.ensure_future(_merge_back(request, manager, worktree, finish))
            try:
                await asyncio.shield(merging)
            except asyncio.CancelledError:
                if not cancel.requested:
                    merging.cancel()
                    raise
                _uncancel()
                await merging
        elif outcome.kind is not OutcomeKind.CANCELLED:
            # Not merged: unlock it so a retry can reuse it; it stays when it holds work.
            # (A cancelled attempt's worktree is kept as it is.)
            removed = await manager.remove(worktree)
            finish.worktree_path = "" if removed else str(worktree.path)
    except asyncio.CancelledError:
        if not cancel.requested:
            raise
        _uncancel()
        if finish.outcome.kind is not OutcomeKind.CANCELLED:
            finish.outcome.kind = OutcomeKind.CANCELLED
            finish.outcome.error = f"Sub-agent cancelled: {cancel.reason}"
            finish.outcome.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
            finish.status = common_pb2.SUB_TASK_STATUS_CANCELLED
    except Exception as exc:
        log.exception("bringing back the work of %s failed", request.subtask.id)
        finish.outcome.kind = OutcomeKind.FAILED
        finish.outcome.error = f"Bringing back the work failed: {exc}; worktree {worktree.path} kept"
        finish.outcome.failure_kind = common_pb2.FAILURE_KIND_PERMANENT
        finish.status = common_pb2.SUB_TASK_STATUS_FAILED
        finish.worktree_path = str(worktree.path)
    return finish


async def _merge_back(
    request: executor_pb2.ExecuteSubTaskRequest, manager: Any, worktree: Any, finish: _Finish
) -> None:
    subtask = request.subtask
    title = (subtask.instruction.strip().splitlines() or [""])[0]
    if len(title) > 72:
        title = title[:72].rsplit(" ", 1)[0] + "..."
    message = f"{subtask.name or subtask.id}: {title}".strip()
    commit = await manager.commit(worktree, message)
    if commit:
        try:
            patch = await manager.diff_against_base(worktree, commit)
        except Exception:
            log.exception("cannot compute the patch of %s", subtask.id)
            patch = b""
        if patch and len(patch) <= MAX_PATCH_BYTES:
            finish.artifacts.append(
                common_pb2.SwarmArtifact(
                    artifact_type="patch",
                    name=f"{subtask.id}.patch",
                    content=patch,
                    source_subagent=subtask.id,
                    mime_type="text/x-diff",
                )
            )
    report = await manager.merge(worktree, commit, auto_merge=request.workspace.auto_merge)
    finish.merge = report.to_proto()
    path = getattr(report, "worktree_path", worktree.path)
    finish.worktree_path = str(path) if path else ""
    outcome = str(getattr(report.outcome, "value", report.outcome))
    if outcome in ("conflicted", "failed"):
        files = ", ".join(c.path for c in report.conflicts)
        what = f"Merge conflicted in {files}" if outcome == "conflicted" else "Merge failed"
        finish.outcome.kind = OutcomeKind.FAILED
        finish.outcome.error = f"{what}: {report.summary}"
        finish.outcome.failure_kind = common_pb2.FAILURE_KIND_PERMANENT
        finish.status = common_pb2.SUB_TASK_STATUS_FAILED
