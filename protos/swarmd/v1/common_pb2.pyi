import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubTaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUB_TASK_STATUS_UNSPECIFIED: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_PENDING: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_BLOCKED: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_RUNNING: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_COMPLETED: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_FAILED: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_CANCELLED: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_TIMED_OUT: _ClassVar[SubTaskStatus]
    SUB_TASK_STATUS_SKIPPED: _ClassVar[SubTaskStatus]

class SwarmState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWARM_STATE_UNSPECIFIED: _ClassVar[SwarmState]
    SWARM_STATE_PLANNING: _ClassVar[SwarmState]
    SWARM_STATE_RUNNING: _ClassVar[SwarmState]
    SWARM_STATE_SUCCEEDED: _ClassVar[SwarmState]
    SWARM_STATE_FAILED: _ClassVar[SwarmState]
    SWARM_STATE_CANCELLED: _ClassVar[SwarmState]
    SWARM_STATE_INTERRUPTED: _ClassVar[SwarmState]

class DecompositionStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECOMPOSITION_STRATEGY_UNSPECIFIED: _ClassVar[DecompositionStrategy]
    DECOMPOSITION_STRATEGY_AUTOMATIC: _ClassVar[DecompositionStrategy]
    DECOMPOSITION_STRATEGY_BY_DOMAIN: _ClassVar[DecompositionStrategy]
    DECOMPOSITION_STRATEGY_BY_DATA: _ClassVar[DecompositionStrategy]
    DECOMPOSITION_STRATEGY_BY_STAGE: _ClassVar[DecompositionStrategy]
    DECOMPOSITION_STRATEGY_NONE: _ClassVar[DecompositionStrategy]

class DependencyFailurePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPENDENCY_FAILURE_POLICY_UNSPECIFIED: _ClassVar[DependencyFailurePolicy]
    DEPENDENCY_FAILURE_POLICY_SKIP: _ClassVar[DependencyFailurePolicy]
    DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY: _ClassVar[DependencyFailurePolicy]

class PlanSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_SOURCE_UNSPECIFIED: _ClassVar[PlanSource]
    PLAN_SOURCE_EXPLICIT: _ClassVar[PlanSource]
    PLAN_SOURCE_MODEL: _ClassVar[PlanSource]
    PLAN_SOURCE_SINGLE: _ClassVar[PlanSource]

class FailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_KIND_UNSPECIFIED: _ClassVar[FailureKind]
    FAILURE_KIND_TRANSIENT: _ClassVar[FailureKind]
    FAILURE_KIND_PERMANENT: _ClassVar[FailureKind]
    FAILURE_KIND_MAX_STEPS: _ClassVar[FailureKind]
    FAILURE_KIND_BUDGET_EXHAUSTED: _ClassVar[FailureKind]
    FAILURE_KIND_TIMEOUT: _ClassVar[FailureKind]
    FAILURE_KIND_CANCELLED: _ClassVar[FailureKind]
    FAILURE_KIND_DEPENDENCY_FAILED: _ClassVar[FailureKind]

class MergeOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MERGE_OUTCOME_UNSPECIFIED: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_NOT_APPLICABLE: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_NO_CHANGES: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_MERGED: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_CONFLICTED: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_FAILED: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_KEPT: _ClassVar[MergeOutcome]

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_PASS: _ClassVar[HealthStatus]
    HEALTH_STATUS_FAIL: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNKNOWN: _ClassVar[HealthStatus]

class PreflightSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREFLIGHT_SEVERITY_UNSPECIFIED: _ClassVar[PreflightSeverity]
    PREFLIGHT_SEVERITY_INFO: _ClassVar[PreflightSeverity]
    PREFLIGHT_SEVERITY_WARNING: _ClassVar[PreflightSeverity]
    PREFLIGHT_SEVERITY_ERROR: _ClassVar[PreflightSeverity]
SUB_TASK_STATUS_UNSPECIFIED: SubTaskStatus
SUB_TASK_STATUS_PENDING: SubTaskStatus
SUB_TASK_STATUS_BLOCKED: SubTaskStatus
SUB_TASK_STATUS_RUNNING: SubTaskStatus
SUB_TASK_STATUS_COMPLETED: SubTaskStatus
SUB_TASK_STATUS_FAILED: SubTaskStatus
SUB_TASK_STATUS_CANCELLED: SubTaskStatus
SUB_TASK_STATUS_TIMED_OUT: SubTaskStatus
SUB_TASK_STATUS_SKIPPED: SubTaskStatus
SWARM_STATE_UNSPECIFIED: SwarmState
SWARM_STATE_PLANNING: SwarmState
SWARM_STATE_RUNNING: SwarmState
SWARM_STATE_SUCCEEDED: SwarmState
SWARM_STATE_FAILED: SwarmState
SWARM_STATE_CANCELLED: SwarmState
SWARM_STATE_INTERRUPTED: SwarmState
DECOMPOSITION_STRATEGY_UNSPECIFIED: DecompositionStrategy
DECOMPOSITION_STRATEGY_AUTOMATIC: DecompositionStrategy
DECOMPOSITION_STRATEGY_BY_DOMAIN: DecompositionStrategy
DECOMPOSITION_STRATEGY_BY_DATA: DecompositionStrategy
DECOMPOSITION_STRATEGY_BY_STAGE: DecompositionStrategy
DECOMPOSITION_STRATEGY_NONE: DecompositionStrategy
DEPENDENCY_FAILURE_POLICY_UNSPECIFIED: DependencyFailurePolicy
DEPENDENCY_FAILURE_POLICY_SKIP: DependencyFailurePolicy
DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY: DependencyFailurePolicy
PLAN_SOURCE_UNSPECIFIED: PlanSource
PLAN_SOURCE_EXPLICIT: PlanSource
PLAN_SOURCE_MODEL: PlanSource
PLAN_SOURCE_SINGLE: PlanSource
FAILURE_KIND_UNSPECIFIED: FailureKind
FAILURE_KIND_TRANSIENT: FailureKind
FAILURE_KIND_PERMANENT: FailureKind
FAILURE_KIND_MAX_STEPS: FailureKind
FAILURE_KIND_BUDGET_EXHAUSTED: FailureKind
FAILURE_KIND_TIMEOUT: FailureKind
FAILURE_KIND_CANCELLED: FailureKind
FAILURE_KIND_DEPENDENCY_FAILED: FailureKind
MERGE_OUTCOME_UNSPECIFIED: MergeOutcome
MERGE_OUTCOME_NOT_APPLICABLE: MergeOutcome
MERGE_OUTCOME_NO_CHANGES: MergeOutcome
MERGE_OUTCOME_MERGED: MergeOutcome
MERGE_OUTCOME_CONFLICTED: MergeOutcome
MERGE_OUTCOME_FAILED: MergeOutcome
MERGE_OUTCOME_KEPT: MergeOutcome
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_PASS: HealthStatus
HEALTH_STATUS_FAIL: HealthStatus
HEALTH_STATUS_UNKNOWN: HealthStatus
PREFLIGHT_SEVERITY_UNSPECIFIED: PreflightSeverity
PREFLIGHT_SEVERITY_INFO: PreflightSeverity
PREFLIGHT_SEVERITY_WARNING: PreflightSeverity
PREFLIGHT_SEVERITY_ERROR: PreflightSeverity

class SubTask(_message.Message):
    __slots__ = ("id", "name", "instruction", "specialty", "dependencies", "priority", "read_only", "max_steps", "stage", "labels", "speculate")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    SPECIALTY_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SPECULATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    instruction: str
    specialty: str
    dependencies: _containers.RepeatedScalarFieldContainer[str]
    priority: int
    read_only: bool
    max_steps: int
    stage: int
    labels: _containers.ScalarMap[str, str]
    speculate: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., instruction: _Optional[str] = ..., specialty: _Optional[str] = ..., dependencies: _Optional[_Iterable[str]] = ..., priority: _Optional[int] = ..., read_only: _Optional[bool] = ..., max_steps: _Optional[int] = ..., stage: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., speculate: _Optional[int] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("subtasks", "collapse")
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_FIELD_NUMBER: _ClassVar[int]
    subtasks: _containers.RepeatedCompositeFieldContainer[SubTask]
    collapse: CollapseConfig
    def __init__(self, subtasks: _Optional[_Iterable[_Union[SubTask, _Mapping]]] = ..., collapse: _Optional[_Union[CollapseConfig, _Mapping]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cache_read_tokens: _Optional[int] = ..., cache_write_tokens: _Optional[int] = ...) -> None: ...

class ConflictingFile(_message.Message):
    __slots__ = ("path", "diff")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    path: str
    diff: str
    def __init__(self, path: _Optional[str] = ..., diff: _Optional[str] = ...) -> None: ...

class MergeResult(_message.Message):
    __slots__ = ("outcome", "branch", "commit", "merge_commit", "conflicts", "files_changed", "summary", "target_branch")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    MERGE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    FILES_CHANGED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TARGET_BRANCH_FIELD_NUMBER: _ClassVar[int]
    outcome: MergeOutcome
    branch: str
    commit: str
    merge_commit: str
    conflicts: _containers.RepeatedCompositeFieldContainer[ConflictingFile]
    files_changed: int
    summary: str
    target_branch: str
    def __init__(self, outcome: _Optional[_Union[MergeOutcome, str]] = ..., branch: _Optional[str] = ..., commit: _Optional[str] = ..., merge_commit: _Optional[str] = ..., conflicts: _Optional[_Iterable[_Union[ConflictingFile, _Mapping]]] = ..., files_changed: _Optional[int] = ..., summary: _Optional[str] = ..., target_branch: _Optional[str] = ...) -> None: ...

class SwarmArtifact(_message.Message):
    __slots__ = ("artifact_type", "name", "content", "source_subagent", "mime_type")
    ARTIFACT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SUBAGENT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    artifact_type: str
    name: str
    content: bytes
    source_subagent: str
    mime_type: str
    def __init__(self, artifact_type: _Optional[str] = ..., name: _Optional[str] = ..., content: _Optional[bytes] = ..., source_subagent: _Optional[str] = ..., mime_type: _Optional[str] = ...) -> None: ...

class SubTaskResult(_message.Message):
    __slots__ = ("subtask_id", "subagent_id", "success", "result", "steps", "tool_calls", "execution_time_ms", "error", "artifacts", "retry_count", "status", "usage", "cost_usd", "merge", "failure_kind", "cached", "cache_key", "worktree_path")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_KIND_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    CACHE_KEY_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    subagent_id: str
    success: bool
    result: str
    steps: int
    tool_calls: int
    execution_time_ms: int
    error: str
    artifacts: _containers.RepeatedCompositeFieldContainer[SwarmArtifact]
    retry_count: int
    status: SubTaskStatus
    usage: TokenUsage
    cost_usd: float
    merge: MergeResult
    failure_kind: FailureKind
    cached: bool
    cache_key: str
    worktree_path: str
    def __init__(self, subtask_id: _Optional[str] = ..., subagent_id: _Optional[str] = ..., success: _Optional[bool] = ..., result: _Optional[str] = ..., steps: _Optional[int] = ..., tool_calls: _Optional[int] = ..., execution_time_ms: _Optional[int] = ..., error: _Optional[str] = ..., artifacts: _Optional[_Iterable[_Union[SwarmArtifact, _Mapping]]] = ..., retry_count: _Optional[int] = ..., status: _Optional[_Union[SubTaskStatus, str]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., merge: _Optional[_Union[MergeResult, _Mapping]] = ..., failure_kind: _Optional[_Union[FailureKind, str]] = ..., cached: _Optional[bool] = ..., cache_key: _Optional[str] = ..., worktree_path: _Optional[str] = ...) -> None: ...

class SwarmConfig(_message.Message):
    __slots__ = ("max_subagents", "max_steps_per_subagent", "max_total_tool_calls", "max_total_tokens", "max_cost_usd", "max_tokens_per_subtask", "max_cost_per_subtask_usd", "subagent_timeout_secs", "subtask_timeout_secs", "model", "strategy", "executor", "max_concurrent", "request_delay_ms", "worktree_enabled", "auto_merge", "cache_enabled", "max_retries", "base_delay_ms", "max_delay_ms", "dependency_failure_policy", "repo_path", "executor_options", "cache_ttl_secs", "collapse", "speculate", "speculate_models")
    class ExecutorOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MAX_SUBAGENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_PER_SUBAGENT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOTAL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_PER_SUBTASK_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_SUBTASK_USD_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    AUTO_MERGE_FIELD_NUMBER: _ClassVar[int]
    CACHE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    BASE_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCY_FAILURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    REPO_PATH_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_TTL_SECS_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_FIELD_NUMBER: _ClassVar[int]
    SPECULATE_FIELD_NUMBER: _ClassVar[int]
    SPECULATE_MODELS_FIELD_NUMBER: _ClassVar[int]
    max_subagents: int
    max_steps_per_subagent: int
    max_total_tool_calls: int
    max_total_tokens: int
    max_cost_usd: float
    max_tokens_per_subtask: int
    max_cost_per_subtask_usd: float
    subagent_timeout_secs: int
    subtask_timeout_secs: int
    model: str
    strategy: DecompositionStrategy
    executor: str
    max_concurrent: int
    request_delay_ms: int
    worktree_enabled: bool
    auto_merge: bool
    cache_enabled: bool
    max_retries: int
    base_delay_ms: int
    max_delay_ms: int
    dependency_failure_policy: DependencyFailurePolicy
    repo_path: str
    executor_options: _containers.ScalarMap[str, str]
    cache_ttl_secs: int
    collapse: CollapseConfig
    speculate: int
    speculate_models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, max_subagents: _Optional[int] = ..., max_steps_per_subagent: _Optional[int] = ..., max_total_tool_calls: _Optional[int] = ..., max_total_tokens: _Optional[int] = ..., max_cost_usd: _Optional[float] = ..., max_tokens_per_subtask: _Optional[int] = ..., max_cost_per_subtask_usd: _Optional[float] = ..., subagent_timeout_secs: _Optional[int] = ..., subtask_timeout_secs: _Optional[int] = ..., model: _Optional[str] = ..., strategy: _Optional[_Union[DecompositionStrategy, str]] = ..., executor: _Optional[str] = ..., max_concurrent: _Optional[int] = ..., request_delay_ms: _Optional[int] = ..., worktree_enabled: _Optional[bool] = ..., auto_merge: _Optional[bool] = ..., cache_enabled: _Optional[bool] = ..., max_retries: _Optional[int] = ..., base_delay_ms: _Optional[int] = ..., max_delay_ms: _Optional[int] = ..., dependency_failure_policy: _Optional[_Union[DependencyFailurePolicy, str]] = ..., repo_path: _Optional[str] = ..., executor_options: _Optional[_Mapping[str, str]] = ..., cache_ttl_secs: _Optional[int] = ..., collapse: _Optional[_Union[CollapseConfig, _Mapping]] = ..., speculate: _Optional[int] = ..., speculate_models: _Optional[_Iterable[str]] = ...) -> None: ...

class HealthCheckSpec(_message.Message):
    __slots__ = ("name", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CollapseConfig(_message.Message):
    __slots__ = ("enabled", "checks", "interval_ms", "warmup_ms", "max_consecutive_failures", "soft_prune", "check_timeout_ms")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    SOFT_PRUNE_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    checks: _containers.RepeatedCompositeFieldContainer[HealthCheckSpec]
    interval_ms: int
    warmup_ms: int
    max_consecutive_failures: int
    soft_prune: bool
    check_timeout_ms: int
    def __init__(self, enabled: _Optional[bool] = ..., checks: _Optional[_Iterable[_Union[HealthCheckSpec, _Mapping]]] = ..., interval_ms: _Optional[int] = ..., warmup_ms: _Optional[int] = ..., max_consecutive_failures: _Optional[int] = ..., soft_prune: _Optional[bool] = ..., check_timeout_ms: _Optional[int] = ...) -> None: ...

class BranchObservation(_message.Message):
    __slots__ = ("subtask_id", "branch", "health", "detail", "check_duration_ms", "changed_files", "changed_lines", "resource_health_score", "infra_unhealthy_signals")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CHECK_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FILES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_LINES_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_HEALTH_SCORE_FIELD_NUMBER: _ClassVar[int]
    INFRA_UNHEALTHY_SIGNALS_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    branch: str
    health: HealthStatus
    detail: str
    check_duration_ms: int
    changed_files: _containers.RepeatedScalarFieldContainer[str]
    changed_lines: int
    resource_health_score: float
    infra_unhealthy_signals: int
    def __init__(self, subtask_id: _Optional[str] = ..., branch: _Optional[str] = ..., health: _Optional[_Union[HealthStatus, str]] = ..., detail: _Optional[str] = ..., check_duration_ms: _Optional[int] = ..., changed_files: _Optional[_Iterable[str]] = ..., changed_lines: _Optional[int] = ..., resource_health_score: _Optional[float] = ..., infra_unhealthy_signals: _Optional[int] = ...) -> None: ...

class BranchEvaluation(_message.Message):
    __slots__ = ("observation", "compile_health", "test_health", "contract_alignment", "diff_conflict_risk", "velocity", "resource", "score", "consecutive_failures", "invariant_breaks", "warming_up")
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    COMPILE_HEALTH_FIELD_NUMBER: _ClassVar[int]
    TEST_HEALTH_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    DIFF_CONFLICT_RISK_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    INVARIANT_BREAKS_FIELD_NUMBER: _ClassVar[int]
    WARMING_UP_FIELD_NUMBER: _ClassVar[int]
    observation: BranchObservation
    compile_health: float
    test_health: float
    contract_alignment: float
    diff_conflict_risk: float
    velocity: float
    resource: float
    score: float
    consecutive_failures: int
    invariant_breaks: int
    warming_up: bool
    def __init__(self, observation: _Optional[_Union[BranchObservation, _Mapping]] = ..., compile_health: _Optional[float] = ..., test_health: _Optional[float] = ..., contract_alignment: _Optional[float] = ..., diff_conflict_risk: _Optional[float] = ..., velocity: _Optional[float] = ..., resource: _Optional[float] = ..., score: _Optional[float] = ..., consecutive_failures: _Optional[int] = ..., invariant_breaks: _Optional[int] = ..., warming_up: _Optional[bool] = ...) -> None: ...

class CollapseKill(_message.Message):
    __slots__ = ("subtask_id", "branch", "reason")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    branch: str
    reason: str
    def __init__(self, subtask_id: _Optional[str] = ..., branch: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CollapseEvaluated(_message.Message):
    __slots__ = ("tick", "evaluations", "kills", "promoted_subtask_id", "promotion_changed", "spared")
    TICK_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    KILLS_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CHANGED_FIELD_NUMBER: _ClassVar[int]
    SPARED_FIELD_NUMBER: _ClassVar[int]
    tick: int
    evaluations: _containers.RepeatedCompositeFieldContainer[BranchEvaluation]
    kills: _containers.RepeatedCompositeFieldContainer[CollapseKill]
    promoted_subtask_id: str
    promotion_changed: bool
    spared: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tick: _Optional[int] = ..., evaluations: _Optional[_Iterable[_Union[BranchEvaluation, _Mapping]]] = ..., kills: _Optional[_Iterable[_Union[CollapseKill, _Mapping]]] = ..., promoted_subtask_id: _Optional[str] = ..., promotion_changed: _Optional[bool] = ..., spared: _Optional[_Iterable[str]] = ...) -> None: ...

class RateLimitStats(_message.Message):
    __slots__ = ("key", "total_requests", "rate_limit_hits", "in_flight", "concurrency_limit", "current_delay_ms", "requests_per_minute", "total_wait_ms", "remaining_requests", "remaining_tokens")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_HITS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    key: str
    total_requests: int
    rate_limit_hits: int
    in_flight: int
    concurrency_limit: int
    current_delay_ms: int
    requests_per_minute: float
    total_wait_ms: int
    remaining_requests: int
    remaining_tokens: int
    def __init__(self, key: _Optional[str] = ..., total_requests: _Optional[int] = ..., rate_limit_hits: _Optional[int] = ..., in_flight: _Optional[int] = ..., concurrency_limit: _Optional[int] = ..., current_delay_ms: _Optional[int] = ..., requests_per_minute: _Optional[float] = ..., total_wait_ms: _Optional[int] = ..., remaining_requests: _Optional[int] = ..., remaining_tokens: _Optional[int] = ...) -> None: ...

class CacheStats(_message.Message):
    __slots__ = ("hits", "misses", "evictions", "expired_removed", "current_entries", "current_bytes", "hit_rate")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_REMOVED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    evictions: int
    expired_removed: int
    current_entries: int
    current_bytes: int
    hit_rate: float
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ..., evictions: _Optional[int] = ..., expired_removed: _Optional[int] = ..., current_entries: _Optional[int] = ..., current_bytes: _Optional[int] = ..., hit_rate: _Optional[float] = ...) -> None: ...

class StageStats(_message.Message):
    __slots__ = ("stage", "subagent_count", "max_steps", "total_steps", "execution_time_ms", "completed", "failed", "cancelled", "skipped")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    stage: int
    subagent_count: int
    max_steps: int
    total_steps: int
    execution_time_ms: int
    completed: int
    failed: int
    cancelled: int
    skipped: int
    def __init__(self, stage: _Optional[int] = ..., subagent_count: _Optional[int] = ..., max_steps: _Optional[int] = ..., total_steps: _Optional[int] = ..., execution_time_ms: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class SwarmStats(_message.Message):
    __slots__ = ("subagents_spawned", "subagents_completed", "subagents_failed", "total_tool_calls", "critical_path_length", "execution_time_ms", "sequential_time_estimate_ms", "speedup_factor", "stages", "rate_limits", "cache", "total_steps", "critical_path_time_ms", "critical_path", "critical_steps", "usage", "cost_usd", "subagents_cancelled", "subagents_skipped", "retries", "orchestrator_steps", "critical_path_steps", "collapse")
    SUBAGENTS_SPAWNED_FIELD_NUMBER: _ClassVar[int]
    SUBAGENTS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    SUBAGENTS_FAILED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_LENGTH_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_TIME_ESTIMATE_MS_FIELD_NUMBER: _ClassVar[int]
    SPEEDUP_FACTOR_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    SUBAGENTS_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    SUBAGENTS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATOR_STEPS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_STEPS_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_FIELD_NUMBER: _ClassVar[int]
    subagents_spawned: int
    subagents_completed: int
    subagents_failed: int
    total_tool_calls: int
    critical_path_length: int
    execution_time_ms: int
    sequential_time_estimate_ms: int
    speedup_factor: float
    stages: _containers.RepeatedCompositeFieldContainer[StageStats]
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimitStats]
    cache: CacheStats
    total_steps: int
    critical_path_time_ms: int
    critical_path: _containers.RepeatedScalarFieldContainer[str]
    critical_steps: int
    usage: TokenUsage
    cost_usd: float
    subagents_cancelled: int
    subagents_skipped: int
    retries: int
    orchestrator_steps: int
    critical_path_steps: int
    collapse: CollapseStats
    def __init__(self, subagents_spawned: _Optional[int] = ..., subagents_completed: _Optional[int] = ..., subagents_failed: _Optional[int] = ..., total_tool_calls: _Optional[int] = ..., critical_path_length: _Optional[int] = ..., execution_time_ms: _Optional[int] = ..., sequential_time_estimate_ms: _Optional[int] = ..., speedup_factor: _Optional[float] = ..., stages: _Optional[_Iterable[_Union[StageStats, _Mapping]]] = ..., rate_limits: _Optional[_Iterable[_Union[RateLimitStats, _Mapping]]] = ..., cache: _Optional[_Union[CacheStats, _Mapping]] = ..., total_steps: _Optional[int] = ..., critical_path_time_ms: _Optional[int] = ..., critical_path: _Optional[_Iterable[str]] = ..., critical_steps: _Optional[int] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., subagents_cancelled: _Optional[int] = ..., subagents_skipped: _Optional[int] = ..., retries: _Optional[int] = ..., orchestrator_steps: _Optional[int] = ..., critical_path_steps: _Optional[int] = ..., collapse: _Optional[_Union[CollapseStats, _Mapping]] = ...) -> None: ...

class CollapseStats(_message.Message):
    __slots__ = ("evaluations", "kills", "promotions", "promoted_subtask_id", "speculative_wins", "speculative_losers")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    KILLS_FIELD_NUMBER: _ClassVar[int]
    PROMOTIONS_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    SPECULATIVE_WINS_FIELD_NUMBER: _ClassVar[int]
    SPECULATIVE_LOSERS_FIELD_NUMBER: _ClassVar[int]
    evaluations: int
    kills: int
    promotions: int
    promoted_subtask_id: str
    speculative_wins: int
    speculative_losers: int
    def __init__(self, evaluations: _Optional[int] = ..., kills: _Optional[int] = ..., promotions: _Optional[int] = ..., promoted_subtask_id: _Optional[str] = ..., speculative_wins: _Optional[int] = ..., speculative_losers: _Optional[int] = ...) -> None: ...

class SpeculativeVariant(_message.Message):
    __slots__ = ("variant", "subtask_id", "strategy", "branch", "status", "reason", "commit", "winner", "model")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    variant: int
    subtask_id: str
    strategy: str
    branch: str
    status: SubTaskStatus
    reason: str
    commit: str
    winner: bool
    model: str
    def __init__(self, variant: _Optional[int] = ..., subtask_id: _Optional[str] = ..., strategy: _Optional[str] = ..., branch: _Optional[str] = ..., status: _Optional[_Union[SubTaskStatus, str]] = ..., reason: _Optional[str] = ..., commit: _Optional[str] = ..., winner: _Optional[bool] = ..., model: _Optional[str] = ...) -> None: ...

class SpeculationDecided(_message.Message):
    __slots__ = ("subtask_id", "winner_subtask_id", "branch", "commit", "detail", "loser_subtask_ids")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    WINNER_SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LOSER_SUBTASK_IDS_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    winner_subtask_id: str
    branch: str
    commit: str
    detail: str
    loser_subtask_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subtask_id: _Optional[str] = ..., winner_subtask_id: _Optional[str] = ..., branch: _Optional[str] = ..., commit: _Optional[str] = ..., detail: _Optional[str] = ..., loser_subtask_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubTaskState(_message.Message):
    __slots__ = ("subtask", "status", "attempt", "agent_name", "current_tool", "steps", "tool_calls", "started_at", "finished_at", "status_reason", "result", "on_critical_path", "variants")
    SUBTASK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_TOOL_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ON_CRITICAL_PATH_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    subtask: SubTask
    status: SubTaskStatus
    attempt: int
    agent_name: str
    current_tool: str
    steps: int
    tool_calls: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    status_reason: str
    result: SubTaskResult
    on_critical_path: bool
    variants: _containers.RepeatedCompositeFieldContainer[SpeculativeVariant]
    def __init__(self, subtask: _Optional[_Union[SubTask, _Mapping]] = ..., status: _Optional[_Union[SubTaskStatus, str]] = ..., attempt: _Optional[int] = ..., agent_name: _Optional[str] = ..., current_tool: _Optional[str] = ..., steps: _Optional[int] = ..., tool_calls: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_reason: _Optional[str] = ..., result: _Optional[_Union[SubTaskResult, _Mapping]] = ..., on_critical_path: _Optional[bool] = ..., variants: _Optional[_Iterable[_Union[SpeculativeVariant, _Mapping]]] = ...) -> None: ...

class Swarm(_message.Message):
    __slots__ = ("id", "task", "state", "config", "subtasks", "stats", "result", "error", "created_at", "started_at", "finished_at", "plan_source", "last_sequence", "base_commit", "stage_count", "labels", "owner", "request_digests", "tenant")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class RequestDigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PLAN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    STAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    task: str
    state: SwarmState
    config: SwarmConfig
    subtasks: _containers.RepeatedCompositeFieldContainer[SubTaskState]
    stats: SwarmStats
    result: str
    error: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    plan_source: PlanSource
    last_sequence: int
    base_commit: str
    stage_count: int
    labels: _containers.ScalarMap[str, str]
    owner: SwarmOwner
    request_digests: _containers.ScalarMap[str, str]
    tenant: str
    def __init__(self, id: _Optional[str] = ..., task: _Optional[str] = ..., state: _Optional[_Union[SwarmState, str]] = ..., config: _Optional[_Union[SwarmConfig, _Mapping]] = ..., subtasks: _Optional[_Iterable[_Union[SubTaskState, _Mapping]]] = ..., stats: _Optional[_Union[SwarmStats, _Mapping]] = ..., result: _Optional[str] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., plan_source: _Optional[_Union[PlanSource, str]] = ..., last_sequence: _Optional[int] = ..., base_commit: _Optional[str] = ..., stage_count: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., owner: _Optional[_Union[SwarmOwner, _Mapping]] = ..., request_digests: _Optional[_Mapping[str, str]] = ..., tenant: _Optional[str] = ...) -> None: ...

class SwarmOwner(_message.Message):
    __slots__ = ("host", "pid", "address", "embedded", "instance_id")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDED_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    host: str
    pid: int
    address: str
    embedded: bool
    instance_id: str
    def __init__(self, host: _Optional[str] = ..., pid: _Optional[int] = ..., address: _Optional[str] = ..., embedded: _Optional[bool] = ..., instance_id: _Optional[str] = ...) -> None: ...

class PreflightIssue(_message.Message):
    __slots__ = ("severity", "category", "message", "suggestion")
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    severity: PreflightSeverity
    category: str
    message: str
    suggestion: str
    def __init__(self, severity: _Optional[_Union[PreflightSeverity, str]] = ..., category: _Optional[str] = ..., message: _Optional[str] = ..., suggestion: _Optional[str] = ...) -> None: ...

class PreflightReport(_message.Message):
    __slots__ = ("is_valid", "issues", "estimated_prompt_tokens", "estimated_completion_tokens", "is_git_repo", "current_branch", "uncommitted_changes", "context_window")
    IS_VALID_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IS_GIT_REPO_FIELD_NUMBER: _ClassVar[int]
    CURRENT_BRANCH_FIELD_NUMBER: _ClassVar[int]
    UNCOMMITTED_CHANGES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    is_valid: bool
    issues: _containers.RepeatedCompositeFieldContainer[PreflightIssue]
    estimated_prompt_tokens: int
    estimated_completion_tokens: int
    is_git_repo: bool
    current_branch: str
    uncommitted_changes: int
    context_window: int
    def __init__(self, is_valid: _Optional[bool] = ..., issues: _Optional[_Iterable[_Union[PreflightIssue, _Mapping]]] = ..., estimated_prompt_tokens: _Optional[int] = ..., estimated_completion_tokens: _Optional[int] = ..., is_git_repo: _Optional[bool] = ..., current_branch: _Optional[str] = ..., uncommitted_changes: _Optional[int] = ..., context_window: _Optional[int] = ...) -> None: ...

class SwarmStarted(_message.Message):
    __slots__ = ("task", "total_subtasks")
    TASK_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    task: str
    total_subtasks: int
    def __init__(self, task: _Optional[str] = ..., total_subtasks: _Optional[int] = ...) -> None: ...

class SwarmDecomposed(_message.Message):
    __slots__ = ("subtasks", "plan_source", "stage_count", "max_steps")
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    PLAN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    STAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    subtasks: _containers.RepeatedCompositeFieldContainer[SubTask]
    plan_source: PlanSource
    stage_count: int
    max_steps: int
    def __init__(self, subtasks: _Optional[_Iterable[_Union[SubTask, _Mapping]]] = ..., plan_source: _Optional[_Union[PlanSource, str]] = ..., stage_count: _Optional[int] = ..., max_steps: _Optional[int] = ...) -> None: ...

class SubTaskUpdate(_message.Message):
    __slots__ = ("subtask_id", "name", "status", "agent_name", "reason", "attempt")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    name: str
    status: SubTaskStatus
    agent_name: str
    reason: str
    attempt: int
    def __init__(self, subtask_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[SubTaskStatus, str]] = ..., agent_name: _Optional[str] = ..., reason: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class AgentStarted(_message.Message):
    __slots__ = ("subtask_id", "agent_name", "specialty", "attempt", "worktree_path", "executor")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    SPECIALTY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    agent_name: str
    specialty: str
    attempt: int
    worktree_path: str
    executor: str
    def __init__(self, subtask_id: _Optional[str] = ..., agent_name: _Optional[str] = ..., specialty: _Optional[str] = ..., attempt: _Optional[int] = ..., worktree_path: _Optional[str] = ..., executor: _Optional[str] = ...) -> None: ...

class AgentToolCall(_message.Message):
    __slots__ = ("subtask_id", "tool_name", "step")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    tool_name: str
    step: int
    def __init__(self, subtask_id: _Optional[str] = ..., tool_name: _Optional[str] = ..., step: _Optional[int] = ...) -> None: ...

class AgentToolCallDetail(_message.Message):
    __slots__ = ("subtask_id", "tool_name", "input_preview", "output_preview", "success", "duration_ms", "step")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    tool_name: str
    input_preview: str
    output_preview: str
    success: bool
    duration_ms: int
    step: int
    def __init__(self, subtask_id: _Optional[str] = ..., tool_name: _Optional[str] = ..., input_preview: _Optional[str] = ..., output_preview: _Optional[str] = ..., success: _Optional[bool] = ..., duration_ms: _Optional[int] = ..., step: _Optional[int] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("subtask_id", "role", "content", "is_tool_call", "step")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IS_TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    role: str
    content: str
    is_tool_call: bool
    step: int
    def __init__(self, subtask_id: _Optional[str] = ..., role: _Optional[str] = ..., content: _Optional[str] = ..., is_tool_call: _Optional[bool] = ..., step: _Optional[int] = ...) -> None: ...

class AgentStep(_message.Message):
    __slots__ = ("subtask_id", "step", "usage", "finish_reason", "duration_ms")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    step: int
    usage: TokenUsage
    finish_reason: str
    duration_ms: int
    def __init__(self, subtask_id: _Optional[str] = ..., step: _Optional[int] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., finish_reason: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class AgentComplete(_message.Message):
    __slots__ = ("subtask_id", "success", "steps")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    success: bool
    steps: int
    def __init__(self, subtask_id: _Optional[str] = ..., success: _Optional[bool] = ..., steps: _Optional[int] = ...) -> None: ...

class AgentOutput(_message.Message):
    __slots__ = ("subtask_id", "output")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    output: str
    def __init__(self, subtask_id: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...

class AgentError(_message.Message):
    __slots__ = ("subtask_id", "error", "failure_kind")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILURE_KIND_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    error: str
    failure_kind: FailureKind
    def __init__(self, subtask_id: _Optional[str] = ..., error: _Optional[str] = ..., failure_kind: _Optional[_Union[FailureKind, str]] = ...) -> None: ...

class RetryScheduled(_message.Message):
    __slots__ = ("subtask_id", "next_attempt", "delay_ms", "reason")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    next_attempt: int
    delay_ms: int
    reason: str
    def __init__(self, subtask_id: _Optional[str] = ..., next_attempt: _Optional[int] = ..., delay_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class MergeCompleted(_message.Message):
    __slots__ = ("subtask_id", "merge")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    merge: MergeResult
    def __init__(self, subtask_id: _Optional[str] = ..., merge: _Optional[_Union[MergeResult, _Mapping]] = ...) -> None: ...

class CacheLookup(_message.Message):
    __slots__ = ("subtask_id", "hit", "key")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    HIT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    hit: bool
    key: str
    def __init__(self, subtask_id: _Optional[str] = ..., hit: _Optional[bool] = ..., key: _Optional[str] = ...) -> None: ...

class WorkCommitted(_message.Message):
    __slots__ = ("subtask_id", "commit", "branch", "output", "attempt")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    commit: str
    branch: str
    output: str
    attempt: int
    def __init__(self, subtask_id: _Optional[str] = ..., commit: _Optional[str] = ..., branch: _Optional[str] = ..., output: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class RateLimited(_message.Message):
    __slots__ = ("subtask_id", "key", "waited_ms", "http_status")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    WAITED_MS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    key: str
    waited_ms: int
    http_status: int
    def __init__(self, subtask_id: _Optional[str] = ..., key: _Optional[str] = ..., waited_ms: _Optional[int] = ..., http_status: _Optional[int] = ...) -> None: ...

class StageComplete(_message.Message):
    __slots__ = ("stage", "completed", "failed", "cancelled", "skipped")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    stage: int
    completed: int
    failed: int
    cancelled: int
    skipped: int
    def __init__(self, stage: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class SwarmComplete(_message.Message):
    __slots__ = ("success", "stats", "state", "result")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    success: bool
    stats: SwarmStats
    state: SwarmState
    result: str
    def __init__(self, success: _Optional[bool] = ..., stats: _Optional[_Union[SwarmStats, _Mapping]] = ..., state: _Optional[_Union[SwarmState, str]] = ..., result: _Optional[str] = ...) -> None: ...

class SwarmError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class SwarmWarning(_message.Message):
    __slots__ = ("code", "message", "subtask_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    subtask_id: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., subtask_id: _Optional[str] = ...) -> None: ...

class StreamHeartbeat(_message.Message):
    __slots__ = ("time", "last_sequence", "interval_ms")
    TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    last_sequence: int
    interval_ms: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sequence: _Optional[int] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class SwarmEvent(_message.Message):
    __slots__ = ("swarm_id", "sequence", "time", "started", "decomposed", "subtask_update", "agent_started", "agent_tool_call", "agent_tool_call_detail", "agent_message", "agent_complete", "agent_output", "agent_error", "stage_complete", "complete", "error", "warning", "agent_step", "retry_scheduled", "merge_completed", "cache_lookup", "rate_limited", "work_committed", "collapse_evaluated", "speculation_decided")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    DECOMPOSED_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_UPDATE_FIELD_NUMBER: _ClassVar[int]
    AGENT_STARTED_FIELD_NUMBER: _ClassVar[int]
    AGENT_TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    AGENT_TOOL_CALL_DETAIL_FIELD_NUMBER: _ClassVar[int]
    AGENT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    AGENT_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ERROR_FIELD_NUMBER: _ClassVar[int]
    STAGE_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    AGENT_STEP_FIELD_NUMBER: _ClassVar[int]
    RETRY_SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    MERGE_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    CACHE_LOOKUP_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITED_FIELD_NUMBER: _ClassVar[int]
    WORK_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    SPECULATION_DECIDED_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    started: SwarmStarted
    decomposed: SwarmDecomposed
    subtask_update: SubTaskUpdate
    agent_started: AgentStarted
    agent_tool_call: AgentToolCall
    agent_tool_call_detail: AgentToolCallDetail
    agent_message: AgentMessage
    agent_complete: AgentComplete
    agent_output: AgentOutput
    agent_error: AgentError
    stage_complete: StageComplete
    complete: SwarmComplete
    error: SwarmError
    warning: SwarmWarning
    agent_step: AgentStep
    retry_scheduled: RetryScheduled
    merge_completed: MergeCompleted
    cache_lookup: CacheLookup
    rate_limited: RateLimited
    work_committed: WorkCommitted
    collapse_evaluated: CollapseEvaluated
    speculation_decided: SpeculationDecided
    def __init__(self, swarm_id: _Optional[str] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[SwarmStarted, _Mapping]] = ..., decomposed: _Optional[_Union[SwarmDecomposed, _Mapping]] = ..., subtask_update: _Optional[_Union[SubTaskUpdate, _Mapping]] = ..., agent_started: _Optional[_Union[AgentStarted, _Mapping]] = ..., agent_tool_call: _Optional[_Union[AgentToolCall, _Mapping]] = ..., agent_tool_call_detail: _Optional[_Union[AgentToolCallDetail, _Mapping]] = ..., agent_message: _Optional[_Union[AgentMessage, _Mapping]] = ..., agent_complete: _Optional[_Union[AgentComplete, _Mapping]] = ..., agent_output: _Optional[_Union[AgentOutput, _Mapping]] = ..., agent_error: _Optional[_Union[AgentError, _Mapping]] = ..., stage_complete: _Optional[_Union[StageComplete, _Mapping]] = ..., complete: _Optional[_Union[SwarmComplete, _Mapping]] = ..., error: _Optional[_Union[SwarmError, _Mapping]] = ..., warning: _Optional[_Union[SwarmWarning, _Mapping]] = ..., agent_step: _Optional[_Union[AgentStep, _Mapping]] = ..., retry_scheduled: _Optional[_Union[RetryScheduled, _Mapping]] = ..., merge_completed: _Optional[_Union[MergeCompleted, _Mapping]] = ..., cache_lookup: _Optional[_Union[CacheLookup, _Mapping]] = ..., rate_limited: _Optional[_Union[RateLimited, _Mapping]] = ..., work_committed: _Optional[_Union[WorkCommitted, _Mapping]] = ..., collapse_evaluated: _Optional[_Union[CollapseEvaluated, _Mapping]] = ..., speculation_decided: _Optional[_Union[SpeculationDecided, _Mapping]] = ...) -> None: ...
