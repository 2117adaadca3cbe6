import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from swarmd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_OUTCOME_UNSPECIFIED: _ClassVar[CallOutcome]
    CALL_OUTCOME_SUCCESS: _ClassVar[CallOutcome]
    CALL_OUTCOME_RATE_LIMITED: _ClassVar[CallOutcome]
    CALL_OUTCOME_ERROR: _ClassVar[CallOutcome]
    CALL_OUTCOME_ABANDONED: _ClassVar[CallOutcome]

class ClaimOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_OUTCOME_UNSPECIFIED: _ClassVar[ClaimOutcome]
    CLAIM_OUTCOME_WON: _ClassVar[ClaimOutcome]
    CLAIM_OUTCOME_LOST: _ClassVar[ClaimOutcome]
    CLAIM_OUTCOME_CHECKS_FAILED: _ClassVar[ClaimOutcome]
CALL_OUTCOME_UNSPECIFIED: CallOutcome
CALL_OUTCOME_SUCCESS: CallOutcome
CALL_OUTCOME_RATE_LIMITED: CallOutcome
CALL_OUTCOME_ERROR: CallOutcome
CALL_OUTCOME_ABANDONED: CallOutcome
CLAIM_OUTCOME_UNSPECIFIED: ClaimOutcome
CLAIM_OUTCOME_WON: ClaimOutcome
CLAIM_OUTCOME_LOST: ClaimOutcome
CLAIM_OUTCOME_CHECKS_FAILED: ClaimOutcome

class SubmitSwarmRequest(_message.Message):
    __slots__ = ("task", "plan", "config", "request_id", "dry_run", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    task: str
    plan: _common_pb2.Plan
    config: _common_pb2.SwarmConfig
    request_id: str
    dry_run: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, task: _Optional[str] = ..., plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ..., config: _Optional[_Union[_common_pb2.SwarmConfig, _Mapping]] = ..., request_id: _Optional[str] = ..., dry_run: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SubmitSwarmResponse(_message.Message):
    __slots__ = ("swarm", "preflight")
    SWARM_FIELD_NUMBER: _ClassVar[int]
    PREFLIGHT_FIELD_NUMBER: _ClassVar[int]
    swarm: _common_pb2.Swarm
    preflight: _common_pb2.PreflightReport
    def __init__(self, swarm: _Optional[_Union[_common_pb2.Swarm, _Mapping]] = ..., preflight: _Optional[_Union[_common_pb2.PreflightReport, _Mapping]] = ...) -> None: ...

class GetSwarmRequest(_message.Message):
    __slots__ = ("swarm_id",)
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    def __init__(self, swarm_id: _Optional[str] = ...) -> None: ...

class GetSwarmResponse(_message.Message):
    __slots__ = ("swarm",)
    SWARM_FIELD_NUMBER: _ClassVar[int]
    swarm: _common_pb2.Swarm
    def __init__(self, swarm: _Optional[_Union[_common_pb2.Swarm, _Mapping]] = ...) -> None: ...

class ListSwarmsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: SwarmFilter
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[_Union[SwarmFilter, _Mapping]] = ..., order_by: _Optional[str] = ...) -> None: ...

class SwarmFilter(_message.Message):
    __slots__ = ("states", "labels", "created_after", "created_before")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.SwarmState]
    labels: _containers.ScalarMap[str, str]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.SwarmState, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SwarmSummary(_message.Message):
    __slots__ = ("id", "task", "state", "subtask_count", "completed", "failed", "execution_time_ms", "cancelled", "skipped", "created_at", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    task: str
    state: _common_pb2.SwarmState
    subtask_count: int
    completed: int
    failed: int
    execution_time_ms: int
    cancelled: int
    skipped: int
    created_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., task: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.SwarmState, str]] = ..., subtask_count: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., execution_time_ms: _Optional[int] = ..., cancelled: _Optional[int] = ..., skipped: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListSwarmsResponse(_message.Message):
    __slots__ = ("swarms", "next_page_token")
    SWARMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    swarms: _containers.RepeatedCompositeFieldContainer[SwarmSummary]
    next_page_token: str
    def __init__(self, swarms: _Optional[_Iterable[_Union[SwarmSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSubTaskRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ...) -> None: ...

class GetSubTaskResponse(_message.Message):
    __slots__ = ("subtask", "swarm_state")
    SUBTASK_FIELD_NUMBER: _ClassVar[int]
    SWARM_STATE_FIELD_NUMBER: _ClassVar[int]
    subtask: _common_pb2.SubTaskState
    swarm_state: _common_pb2.SwarmState
    def __init__(self, subtask: _Optional[_Union[_common_pb2.SubTaskState, _Mapping]] = ..., swarm_state: _Optional[_Union[_common_pb2.SwarmState, str]] = ...) -> None: ...

class ListSubTasksRequest(_message.Message):
    __slots__ = ("swarm_id", "page_size", "page_token", "statuses")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.SubTaskStatus]
    def __init__(self, swarm_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_common_pb2.SubTaskStatus, str]]] = ...) -> None: ...

class ListSubTasksResponse(_message.Message):
    __slots__ = ("subtasks", "next_page_token", "swarm_state")
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SWARM_STATE_FIELD_NUMBER: _ClassVar[int]
    subtasks: _containers.RepeatedCompositeFieldContainer[_common_pb2.SubTaskState]
    next_page_token: str
    swarm_state: _common_pb2.SwarmState
    def __init__(self, subtasks: _Optional[_Iterable[_Union[_common_pb2.SubTaskState, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., swarm_state: _Optional[_Union[_common_pb2.SwarmState, str]] = ...) -> None: ...

class WatchSwarmRequest(_message.Message):
    __slots__ = ("swarm_id", "after_sequence", "history_only", "heartbeat_interval_ms", "subtask_ids", "event_kinds")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ONLY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_KINDS_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    after_sequence: int
    history_only: bool
    heartbeat_interval_ms: int
    subtask_ids: _containers.RepeatedScalarFieldContainer[str]
    event_kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, swarm_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., history_only: _Optional[bool] = ..., heartbeat_interval_ms: _Optional[int] = ..., subtask_ids: _Optional[_Iterable[str]] = ..., event_kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchSwarmResponse(_message.Message):
    __slots__ = ("event", "heartbeat")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.SwarmEvent
    heartbeat: _common_pb2.StreamHeartbeat
    def __init__(self, event: _Optional[_Union[_common_pb2.SwarmEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[_common_pb2.StreamHeartbeat, _Mapping]] = ...) -> None: ...

class CancelSwarmRequest(_message.Message):
    __slots__ = ("swarm_id", "reason")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    reason: str
    def __init__(self, swarm_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelSwarmResponse(_message.Message):
    __slots__ = ("state", "already_finished")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FINISHED_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.SwarmState
    already_finished: bool
    def __init__(self, state: _Optional[_Union[_common_pb2.SwarmState, str]] = ..., already_finished: _Optional[bool] = ...) -> None: ...

class ResumeSwarmRequest(_message.Message):
    __slots__ = ("swarm_id",)
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    def __init__(self, swarm_id: _Optional[str] = ...) -> None: ...

class ResumeSwarmResponse(_message.Message):
    __slots__ = ("swarm", "already_running")
    SWARM_FIELD_NUMBER: _ClassVar[int]
    ALREADY_RUNNING_FIELD_NUMBER: _ClassVar[int]
    swarm: _common_pb2.Swarm
    already_running: bool
    def __init__(self, swarm: _Optional[_Union[_common_pb2.Swarm, _Mapping]] = ..., already_running: _Optional[bool] = ...) -> None: ...

class CancelSubTaskRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id", "reason")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    reason: str
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelSubTaskResponse(_message.Message):
    __slots__ = ("status", "already_finished")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FINISHED_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.SubTaskStatus
    already_finished: bool
    def __init__(self, status: _Optional[_Union[_common_pb2.SubTaskStatus, str]] = ..., already_finished: _Optional[bool] = ...) -> None: ...

class RateLimitKey(_message.Message):
    __slots__ = ("provider", "base_url", "model", "api_key_fingerprint")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    provider: str
    base_url: str
    model: str
    api_key_fingerprint: str
    def __init__(self, provider: _Optional[str] = ..., base_url: _Optional[str] = ..., model: _Optional[str] = ..., api_key_fingerprint: _Optional[str] = ...) -> None: ...

class AcquirePermitRequest(_message.Message):
    __slots__ = ("key", "swarm_id", "subtask_id", "estimated_tokens")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    key: RateLimitKey
    swarm_id: str
    subtask_id: str
    estimated_tokens: int
    def __init__(self, key: _Optional[_Union[RateLimitKey, _Mapping]] = ..., swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., estimated_tokens: _Optional[int] = ...) -> None: ...

class AcquirePermitResponse(_message.Message):
    __slots__ = ("permit_id", "waited_ms", "lease_ms")
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    WAITED_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    permit_id: str
    waited_ms: int
    lease_ms: int
    def __init__(self, permit_id: _Optional[str] = ..., waited_ms: _Optional[int] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class ReportOutcomeRequest(_message.Message):
    __slots__ = ("permit_id", "key", "outcome", "http_status", "headers", "usage", "swarm_id", "subtask_id", "cost_usd")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    permit_id: str
    key: RateLimitKey
    outcome: CallOutcome
    http_status: int
    headers: _containers.ScalarMap[str, str]
    usage: _common_pb2.TokenUsage
    swarm_id: str
    subtask_id: str
    cost_usd: float
    def __init__(self, permit_id: _Optional[str] = ..., key: _Optional[_Union[RateLimitKey, _Mapping]] = ..., outcome: _Optional[_Union[CallOutcome, str]] = ..., http_status: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., usage: _Optional[_Union[_common_pb2.TokenUsage, _Mapping]] = ..., swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class ReportOutcomeResponse(_message.Message):
    __slots__ = ("retry_after_ms",)
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    retry_after_ms: int
    def __init__(self, retry_after_ms: _Optional[int] = ...) -> None: ...

class ReserveBudgetRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id", "tool_calls")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    tool_calls: int
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., tool_calls: _Optional[int] = ...) -> None: ...

class ReserveBudgetResponse(_message.Message):
    __slots__ = ("tool_calls_remaining",)
    TOOL_CALLS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    tool_calls_remaining: int
    def __init__(self, tool_calls_remaining: _Optional[int] = ...) -> None: ...

class ClaimVariantRequest(_message.Message):
    __slots__ = ("swarm_id", "subtask_id", "commit")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    commit: str
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., commit: _Optional[str] = ...) -> None: ...

class ClaimVariantResponse(_message.Message):
    __slots__ = ("outcome", "detail", "winner_subtask_id")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    WINNER_SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    outcome: ClaimOutcome
    detail: str
    winner_subtask_id: str
    def __init__(self, outcome: _Optional[_Union[ClaimOutcome, str]] = ..., detail: _Optional[str] = ..., winner_subtask_id: _Optional[str] = ...) -> None: ...
