"""Everything checked before a swarm is accepted.

:func:`prepare_submission` validates a SubmitSwarm request and builds the
swarm it describes, refusing bad input with INVALID_ARGUMENT before anything
starts: the config (defaults filled in), the task text, the labels, an
explicit plan (strictly: see :mod:`.validation`), the model string (``provider/model``;
a provider must be creatable here when the model is to decompose, and the
executor service must be able to create it for the sub-agents: its
CheckModel RPC, see :func:`_check_model`), the executor plugin name (asked
of the executor service) and the pre-flight report
(workspace, configuration, token estimate; see :mod:`.preflight`). An
unreachable executor is UNAVAILABLE. A dry run decomposes right away, so
its answer shows the plan, and is never refused for pre-flight errors: the
report says what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from swarmd.plugins import ModelProvider, model_spec_problem, parse_model_string
from swarmd.plugins.manager import Plugins
from swarmd.services.config import OrchestratorSettings
from swarmd.services.errors import (
    AlreadyExists,
    DeadlineExceeded,
    InvalidArgument,
    SwarmdError,
    Unavailable,
)
from swarmd.services.orchestrator.budgets import find_price
from swarmd.services.orchestrator.collapse.config import choose_collapse
from swarmd.services.orchestrator.decomposer import (
    create_decomposition_provider,
    decompose,
    decomposition_settings,
)
from swarmd.services.orchestrator.options import check_client_options
from swarmd.services.orchestrator.peers import ExecutorClient
from swarmd.services.orchestrator.planning import (
    PlanWarning,
    classify_read_only,
    single_subtask_plan,
)
from swarmd.services.orchestrator.preflight import GitInfo, PreflightBuilder, inspect_git
from swarmd.services.orchestrator.retry import Backoff
from swarmd.services.orchestrator.swarm_config import effective_config
from swarmd.services.orchestrator.validation import (
    MAX_LABEL_KEY_CHARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_TASK_CHARS,
    assign_stages,
    check_variant_ids,
    repair_model_plan,
    validate_explicit_plan,
)
from swarmd.v1 import common_pb2, orchestrator_pb2

__all__ = [
    "Submission",
    "SubmissionDeps",
    "check_same_request",
    "prepare_submission",
    "request_digests",
]

_DESCRIBE_TIMEOUT_SECS = 5.0


@dataclass
class SubmissionDeps:
    """What checking a submission needs from the orchestrator."""

    plugins: Plugins
    settings: OrchestratorSettings
    executor: ExecutorClient
    rng: random.Random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    cwd: str | None = None


@dataclass
class Submission:
    """An accepted request: the swarm (PLANNING), its report and its plan if known."""

    swarm: common_pb2.Swarm
    report: common_pb2.PreflightReport
    subtasks: list[common_pb2.SubTask] | None
    stage_count: int
    source: common_pb2.PlanSource
    #: The provider that will decompose (task text, not yet planned).
    provider: ModelProvider | None
    warnings: list[PlanWarning] = field(default_factory=list)

    def dry_run_swarm(self) -> common_pb2.Swarm:
        """The swarm as a dry run shows it: planned, nothing running, and no
        id, since nothing is stored that GetSwarm could find."""
        swarm = self.swarm
        swarm.id = ""
        swarm.plan_source = self.source
        swarm.stage_count = self.stage_count
        for sub in self.subtasks or []:
            state = swarm.subtasks.add(subtask=sub, agent_name=f"agent-{sub.id}")
            state.status = (
                common_pb2.SUB_TASK_STATUS_BLOCKED
                if sub.dependencies
                else common_pb2.SUB_TASK_STATUS_PENDING
            )
        return swarm

    async def close_provider(self) -> None:
        if self.provider is not None:
            provider, self.provider = self.provider, None
            with contextlib.suppress(Exception):
                await provider.aclose()


#: The SubmitSwarmRequest fields a request_id binds, what the swarm does:
#: reusing the key with any of them different is refused. Labels are
#: bookkeeping and may differ on a retry (the first swarm's are kept).
_IDEMPOTENT_FIELDS = ("task", "plan", "config")


def request_digests(request: orchestrator_pb2.SubmitSwarmRequest) -> dict[str, str]:
    """Hex SHA-256 of each field a request_id binds (see Swarm.request_digests)."""
    digests = {}
    for name in _IDEMPOTENT_FIELDS:
        part = orchestrator_pb2.SubmitSwarmRequest()
        if name == "task":
            part.task = request.task
        else:
            getattr(part, name).CopyFrom(getattr(request, name))
        digests[name] = hashlib.sha256(part.SerializeToString(deterministic=True)).hexdigest()
    return digests


def check_same_request(
    request: orchestrator_pb2.SubmitSwarmRequest, existing: common_pb2.Swarm
) -> None:
    """AlreadyExists when ``existing`` was created under the same request_id by a
    request that differs from ``request`` (swarms stored without digests pass)."""
    if not existing.request_digests:
        return
    mine = request_digests(request)
    differ = [n for n in _IDEMPOTENT_FIELDS if existing.request_digests.get(n, mine[n]) != mine[n]]
    if differ:
        raise AlreadyExists(
            f"request_id {request.request_id!r} was first used for swarm {existing.id} with a "
            f"different {', '.join(differ)}; use a new request_id for a different request",
            field="request_id",
            metadata={"swarm_id": existing.id, "fields": ",".join(differ)},
        )


def check_labels(labels: Mapping[str, str], what: str) -> None:
    """Refuse too many, empty or oversized labels."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"{what}: at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if "\x00" in key or "\x00" in value:
            raise InvalidArgument(f"{what}: label {key[:40]!r} contains a NUL byte", field=what)
        if not key or len(key) > MAX_LABEL_KEY_CHARS:
            raise InvalidArgument(
                f"{what}: label key {key[:40]!r} must be 1-{MAX_LABEL_KEY_CHARS} characters"
            )
        if len(value) > MAX_LABEL_VALUE_CHARS:
            raise InvalidArgument(
                f"{what}: label {key!r} value is longer than {MAX_LABEL_VALUE_CHARS} characters"
            )


def _summarise_plan(subtasks: list[common_pb2.SubTask]) -> str:
    names = ", ".join(s.name for s in subtasks[:5]) + (", ..." if len(subtasks) > 5 else "")
    return f"explicit plan of {len(subtasks)} subtask(s): {names}"


async def _check_workspace(config: common_pb2.SwarmConfig, builder: PreflightBuilder) -> GitInfo:
    if not os.path.isdir(config.repo_path):
        builder.error(
            "workspace",
            f"repo_path {config.repo_path} does not exist or is not a directory",
            "Point config.repo_path at the repository to work on",
        )
        return GitInfo()
    git = await inspect_git(config.repo_path)
    builder.workspace(config.repo_path, git, config.worktree_enabled)
    return git


async def _check_executor(
    deps: SubmissionDeps, config: common_pb2.SwarmConfig, builder: PreflightBuilder
) -> str:
    """Refuse an unknown executor plugin; return why the executor is
    unreachable ("" when it answered)."""
    address = deps.settings.executor_address
    try:
        described = await deps.executor.describe(
            timeout=min(deps.settings.rpc_timeout_secs, _DESCRIBE_TIMEOUT_SECS)
        )
    except (Unavailable, DeadlineExceeded) as exc:
        message = f"the executor service at {address} cannot be reached: {exc.message}"
        builder.error(
            "executor", message, "Start the executor service or fix orchestrator.executor_address"
        )
        return message
    except SwarmdError as exc:
        builder.warning(
            "executor", f"the executor service at {address} could not be described: {exc.message}"
        )
        return ""
    names = [e.name for e in described.executors]
    if not config.executor:
        builder.info(
            "executor",
            f"no executor plugin named; the executor service's default "
            f"{described.default_executor!r} runs the subtasks",
        )
    elif config.executor not in names:
        available = ", ".join(names) or "none"
        raise InvalidArgument(
            f"config.executor: unknown executor plugin {config.executor!r} (available at {address}: {available})"
        )
    return ""


async def _check_model(
    deps: SubmissionDeps, config: common_pb2.SwarmConfig, builder: PreflightBuilder, model: str
) -> None:
    """Refuse a model the executor's sub-agents cannot use (see CheckModel).

    The executor service answers because the provider plugins, their options
    and files such as replay cassettes are where the sub-agents run, which
    may be another host than the orchestrator's.
    """
    address = deps.settings.executor_address
    try:
        reply = await deps.executor.check_model(
            model, dict(config.executor_options), timeout=deps.settings.rpc_timeout_secs
        )
    except InvalidArgument as exc:
        raise InvalidArgument(f"{_field_of(config, model)}: {exc.message}") from None
    except SwarmdError as exc:
        builder.warning(
            "provider",
            f"the executor service at {address} could not check model {model!r} "
            f"({exc.code.name}: {exc.message}); sub-agents fail if they cannot use it",
        )
        return
    if reply.problem:
        raise InvalidArgument(
            f"{_field_of(config, model)}: {reply.problem} (checked by the executor service at {address})"
        )


def _field_of(config: common_pb2.SwarmConfig, model: str) -> str:
    if model == config.model or model not in config.speculate_models:
        return "config.model"
    return f"config.speculate_models[{list(config.speculate_models).index(model)}]"


async def prepare_submission(
    deps: SubmissionDeps, request: orchestrator_pb2.SubmitSwarmRequest, swarm_id: str, tenant: str = ""
) -> Submission:
    """Validate ``request`` (for ``tenant``'s allowlist) and build its swarm; raise on bad input."""
    config = effective_config(request.config, cwd=deps.cwd)
    choose_collapse(config, request.plan)
    allowed = [*deps.settings.client_executor_options, *deps.settings.tenant_executor_options.get(tenant, ())]
    check_client_options(config, allowed)
    problem = model_spec_problem(config.model)
    if problem:
        raise InvalidArgument(f"config.model: {problem}")
    for i, model in enumerate(config.speculate_models):
        problem = model_spec_problem(model)
        if problem:
            raise InvalidArgument(f"config.speculate_models[{i}]: {problem}", field="config.speculate_models")
    task = request.task
    if len(task) > MAX_TASK_CHARS:
        raise InvalidArgument(f"task is {len(task)} characters (max {MAX_TASK_CHARS})")
    if "\x00" in task:
        raise InvalidArgument("task contains a NUL byte", field="task")
    check_labels(request.labels, "labels")
    has_plan = len(request.plan.subtasks) > 0
    if not has_plan and not task.strip():
        raise InvalidArgument(
            "task is empty and no plan was given: submit task text or an explicit plan"
        )

    swarm = common_pb2.Swarm(
        id=swarm_id, state=common_pb2.SWARM_STATE_PLANNING, labels=dict(request.labels)
    )
    swarm.created_at.GetCurrentTime()
    if request.request_id:
        swarm.request_digests.update(request_digests(request))
    sub = Submission(
        swarm, common_pb2.PreflightReport(), None, 0, common_pb2.PLAN_SOURCE_UNSPECIFIED, None
    )
    if has_plan:
        sub.subtasks, sub.stage_count = validate_explicit_plan(request.plan, config.max_subagents)
        check_variant_ids(sub.subtasks, config)
        sub.source = common_pb2.PLAN_SOURCE_EXPLICIT
        task = task or _summarise_plan(sub.subtasks)
    elif config.strategy == common_pb2.DECOMPOSITION_STRATEGY_NONE:
        sub.subtasks = [single_subtask_plan(task, read_only=classify_read_only(task, "", None))]
        sub.stage_count = assign_stages(sub.subtasks)
        sub.source = common_pb2.PLAN_SOURCE_SINGLE
    else:
        sub.provider = create_decomposition_provider(
            deps.plugins, config, deps.settings.decomposition_options
        )
    swarm.task = task
    try:
        await _check(deps, request, sub, config)
    except BaseException:
        await sub.close_provider()
        raise
    swarm.config.CopyFrom(config)
    return sub


async def _check(
    deps: SubmissionDeps,
    request: orchestrator_pb2.SubmitSwarmRequest,
    sub: Submission,
    config: common_pb2.SwarmConfig,
) -> None:
    builder = PreflightBuilder()
    git = await _check_workspace(config, builder)
    sub.swarm.base_commit = git.head
    if config.worktree_enabled and not (git.is_repo and git.head):
        config.worktree_enabled = False
        # Outside git the pre-flight report holds an error instead: the swarm is refused.
        if git.is_repo:
            sub.warnings.append(
                PlanWarning(
                    "worktrees_disabled",
                    f"{config.repo_path} has no commits yet; worktree isolation is disabled and "
                    "every sub-agent works in that directory",
                )
            )
    builder.configuration(config)
    unreachable = await _check_executor(deps, config, builder)
    if not unreachable:
        for model in dict.fromkeys([config.model, *config.speculate_models]):
            await _check_model(deps, config, builder, model)
    if request.dry_run and sub.provider is not None:
        await _decompose_now(deps, sub, config)
    builder.tokens(
        sub.subtasks
        if sub.subtasks is not None
        else [common_pb2.SubTask(instruction=sub.swarm.task)]
    )
    for warning in sub.warnings:
        builder.warning("dependencies" if "dependency" in warning.code else "plan", warning.message)
    sub.report = builder.finish()
    if not request.dry_run:
        if unreachable:
            raise Unavailable(unreachable)
        if not sub.report.is_valid:
            errors = [
                i.message
                for i in sub.report.issues
                if i.severity == common_pb2.PREFLIGHT_SEVERITY_ERROR
            ]
            raise InvalidArgument("pre-flight check failed: " + "; ".join(errors))


async def _decompose_now(
    deps: SubmissionDeps, sub: Submission, config: common_pb2.SwarmConfig
) -> None:
    """A dry run shows the plan: decompose at once (and release the provider)."""
    assert sub.provider is not None
    provider_name, model = parse_model_string(config.model)
    try:
        decomposition = await decompose(
            sub.provider,
            sub.swarm.task,
            config,
            price=find_price(deps.settings.prices, provider_name or "", model),
            backoff=Backoff(config.base_delay_ms, config.max_delay_ms, deps.rng),
            sleep=deps.sleep,
            call_timeout_secs=decomposition_settings(
                deps.settings.decomposition_options, config
            ).call_timeout_secs,
        )
    finally:
        await sub.close_provider()
    sub.subtasks, sub.stage_count, repairs = repair_model_plan(
        decomposition.draft.subtasks, config.max_subagents
    )
    sub.source = decomposition.draft.source
    sub.warnings[:0] = [*decomposition.draft.warnings, *repairs]
    sub.swarm.stats.orchestrator_steps = decomposition.steps
    sub.swarm.stats.retries = decomposition.retries
    sub.swarm.stats.usage.CopyFrom(decomposition.usage)
