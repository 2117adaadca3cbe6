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

class SwarmView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWARM_VIEW_UNSPECIFIED: _ClassVar[SwarmView]
    SWARM_VIEW_BASIC: _ClassVar[SwarmView]
    SWARM_VIEW_FULL: _ClassVar[SwarmView]
SWARM_VIEW_UNSPECIFIED: SwarmView
SWARM_VIEW_BASIC: SwarmView
SWARM_VIEW_FULL: SwarmView

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
    __slots__ = ("swarm_id", "view")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    view: SwarmView
    def __init__(self, swarm_id: _Optional[str] = ..., view: _Optional[_Union[SwarmView, str]] = ...) -> None: ...

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
    __slots__ = ("swarm_id", "subtask_id", "view")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    view: SwarmView
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., view: _Optional[_Union[SwarmView, str]] = ...) -> None: ...

class GetSubTaskResponse(_message.Message):
    __slots__ = ("subtask", "swarm_state")
    SUBTASK_FIELD_NUMBER: _ClassVar[int]
    SWARM_STATE_FIELD_NUMBER: _ClassVar[int]
    subtask: _common_pb2.SubTaskState
    swarm_state: _common_pb2.SwarmState
    def __init__(self, subtask: _Optional[_Union[_common_pb2.SubTaskState, _Mapping]] = ..., swarm_state: _Optional[_Union[_common_pb2.SwarmState, str]] = ...) -> None: ...

class ListSubTasksRequest(_message.Message):
    __slots__ = ("swarm_id", "page_size", "page_token", "statuses", "view")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.SubTaskStatus]
    view: SwarmView
    def __init__(self, swarm_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_common_pb2.SubTaskStatus, str]]] = ..., view: _Optional[_Union[SwarmView, str]] = ...) -> None: ...

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
