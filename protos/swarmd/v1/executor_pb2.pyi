from swarmd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleBranchRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id", "repo_path", "branch", "base_commit", "checks", "check_timeout_ms", "promoted_subtask_id")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    REPO_PATH_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    repo_path: str
    branch: str
    base_commit: str
    checks: _containers.RepeatedCompositeFieldContainer[_common_pb2.HealthCheckSpec]
    check_timeout_ms: int
    promoted_subtask_id: str
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., repo_path: _Optional[str] = ..., branch: _Optional[str] = ..., base_commit: _Optional[str] = ..., checks: _Optional[_Iterable[_Union[_common_pb2.HealthCheckSpec, _Mapping]]] = ..., check_timeout_ms: _Optional[int] = ..., promoted_subtask_id: _Optional[str] = ...) -> None: ...

class SampleBranchResponse(_message.Message):
    __slots__ = ("observation",)
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    observation: _common_pb2.BranchObservation
    def __init__(self, observation: _Optional[_Union[_common_pb2.BranchObservation, _Mapping]] = ...) -> None: ...

class DependencyResult(_message.Message):
    __slots__ = ("subtask_id", "name", "result", "success", "error", "commit", "merge_pending")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    MERGE_PENDING_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    name: str
    result: str
    success: bool
    error: str
    commit: str
    merge_pending: bool
    def __init__(self, subtask_id: _Optional[str] = ..., name: _Optional[str] = ..., result: _Optional[str] = ..., success: _Optional[bool] = ..., error: _Optional[str] = ..., commit: _Optional[str] = ..., merge_pending: _Optional[bool] = ...) -> None: ...

class Workspace(_message.Message):
    __slots__ = ("repo_path", "base_commit", "worktree", "auto_merge", "branch")
    REPO_PATH_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_FIELD_NUMBER: _ClassVar[int]
    AUTO_MERGE_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    repo_path: str
    base_commit: str
    worktree: bool
    auto_merge: bool
    branch: str
    def __init__(self, repo_path: _Optional[str] = ..., base_commit: _Optional[str] = ..., worktree: _Optional[bool] = ..., auto_merge: _Optional[bool] = ..., branch: _Optional[str] = ...) -> None: ...

class ExecuteSubTaskRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask", "config", "attempt", "dependencies", "workspace", "orchestrator_address", "result_store_address", "max_tokens", "max_cost_usd", "cache_key", "heartbeat_interval_ms", "reattach_window_ms", "subagent_token", "speculative")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATOR_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_STORE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    CACHE_KEY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    REATTACH_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SPECULATIVE_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask: _common_pb2.SubTask
    config: _common_pb2.SwarmConfig
    attempt: int
    dependencies: _containers.RepeatedCompositeFieldContainer[DependencyResult]
    workspace: Workspace
    orchestrator_address: str
    result_store_address: str
    max_tokens: int
    max_cost_usd: float
    cache_key: str
    heartbeat_interval_ms: int
    reattach_window_ms: int
    subagent_token: str
    speculative: SpeculativeRun
    def __init__(self, swarm_id: _Optional[str] = ..., subtask: _Optional[_Union[_common_pb2.SubTask, _Mapping]] = ..., config: _Optional[_Union[_common_pb2.SwarmConfig, _Mapping]] = ..., attempt: _Optional[int] = ..., dependencies: _Optional[_Iterable[_Union[DependencyResult, _Mapping]]] = ..., workspace: _Optional[_Union[Workspace, _Mapping]] = ..., orchestrator_address: _Optional[str] = ..., result_store_address: _Optional[str] = ..., max_tokens: _Optional[int] = ..., max_cost_usd: _Optional[float] = ..., cache_key: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., reattach_window_ms: _Optional[int] = ..., subagent_token: _Optional[str] = ..., speculative: _Optional[_Union[SpeculativeRun, _Mapping]] = ...) -> None: ...

class SpeculativeRun(_message.Message):
    __slots__ = ("subtask_id", "variant", "strategy")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    variant: int
    strategy: str
    def __init__(self, subtask_id: _Optional[str] = ..., variant: _Optional[int] = ..., strategy: _Optional[str] = ...) -> None: ...

class AttachSubTaskRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id", "attempt", "after_sequence", "heartbeat_interval_ms")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    attempt: int
    after_sequence: int
    heartbeat_interval_ms: int
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., attempt: _Optional[int] = ..., after_sequence: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class ExecuteSubTaskResponse(_message.Message):
    __slots__ = ("event", "result", "heartbeat", "sequence")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.SwarmEvent
    result: _common_pb2.SubTaskResult
    heartbeat: _common_pb2.StreamHeartbeat
    sequence: int
    def __init__(self, event: _Optional[_Union[_common_pb2.SwarmEvent, _Mapping]] = ..., result: _Optional[_Union[_common_pb2.SubTaskResult, _Mapping]] = ..., heartbeat: _Optional[_Union[_common_pb2.StreamHeartbeat, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class AttachSubTaskResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: ExecuteSubTaskResponse
    def __init__(self, message: _Optional[_Union[ExecuteSubTaskResponse, _Mapping]] = ...) -> None: ...

class ExecutorServiceCancelSubTaskRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id", "reason")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    reason: str
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExecutorServiceCancelSubTaskResponse(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    def __init__(self, cancelled: _Optional[bool] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExecutorPluginInfo(_message.Message):
    __slots__ = ("name", "description", "distribution", "capacity", "in_flight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    distribution: str
    capacity: int
    in_flight: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., distribution: _Optional[str] = ..., capacity: _Optional[int] = ..., in_flight: _Optional[int] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("executors", "default_executor", "in_flight", "version")
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    executors: _containers.RepeatedCompositeFieldContainer[ExecutorPluginInfo]
    default_executor: str
    in_flight: int
    version: str
    def __init__(self, executors: _Optional[_Iterable[_Union[ExecutorPluginInfo, _Mapping]]] = ..., default_executor: _Optional[str] = ..., in_flight: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class CheckModelRequest(_message.Message):
    __slots__ = ("model", "executor_options")
    class ExecutorOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    executor_options: _containers.ScalarMap[str, str]
    def __init__(self, model: _Optional[str] = ..., executor_options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CheckModelResponse(_message.Message):
    __slots__ = ("problem", "providers")
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    problem: str
    providers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, problem: _Optional[str] = ..., providers: _Optional[_Iterable[str]] = ...) -> None: ...
