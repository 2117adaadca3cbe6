import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from swarmd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SharedResult(_message.Message):
    __slots__ = ("scope", "key", "producer_id", "value", "type_name", "tags", "published_at", "expires_at")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    scope: str
    key: str
    producer_id: str
    value: _struct_pb2.Value
    type_name: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    published_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, scope: _Optional[str] = ..., key: _Optional[str] = ..., producer_id: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., type_name: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PublishResultRequest(_message.Message):
    __slots__ = ("scope", "key", "producer_id", "value", "tags", "ttl_secs")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECS_FIELD_NUMBER: _ClassVar[int]
    scope: str
    key: str
    producer_id: str
    value: _struct_pb2.Value
    tags: _containers.RepeatedScalarFieldContainer[str]
    ttl_secs: int
    def __init__(self, scope: _Optional[str] = ..., key: _Optional[str] = ..., producer_id: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., ttl_secs: _Optional[int] = ...) -> None: ...

class PublishResultResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: SharedResult
    def __init__(self, result: _Optional[_Union[SharedResult, _Mapping]] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ("scope", "key")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    scope: str
    key: str
    def __init__(self, scope: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetResultResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: SharedResult
    def __init__(self, result: _Optional[_Union[SharedResult, _Mapping]] = ...) -> None: ...

class QueryResultsRequest(_message.Message):
    __slots__ = ("scope", "tags", "prefix", "producer_id", "limit")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    scope: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    prefix: str
    producer_id: str
    limit: int
    def __init__(self, scope: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., prefix: _Optional[str] = ..., producer_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class QueryResultsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SharedResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SharedResult, _Mapping]]] = ...) -> None: ...

class ListResultsRequest(_message.Message):
    __slots__ = ("scope", "limit")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    scope: str
    limit: int
    def __init__(self, scope: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListResultsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SharedResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SharedResult, _Mapping]]] = ...) -> None: ...

class WaitForResultRequest(_message.Message):
    __slots__ = ("scope", "key", "timeout_ms", "follow")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    scope: str
    key: str
    timeout_ms: int
    follow: bool
    def __init__(self, scope: _Optional[str] = ..., key: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class WaitForResultResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: SharedResult
    def __init__(self, result: _Optional[_Union[SharedResult, _Mapping]] = ...) -> None: ...

class CacheEntry(_message.Message):
    __slots__ = ("key", "result", "patch", "base_tree", "task_name", "created_at", "last_access_at", "expires_at", "size_bytes")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    BASE_TREE_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCESS_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    key: str
    result: _common_pb2.SubTaskResult
    patch: bytes
    base_tree: str
    task_name: str
    created_at: _timestamp_pb2.Timestamp
    last_access_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    size_bytes: int
    def __init__(self, key: _Optional[str] = ..., result: _Optional[_Union[_common_pb2.SubTaskResult, _Mapping]] = ..., patch: _Optional[bytes] = ..., base_tree: _Optional[str] = ..., task_name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_access_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class CacheGetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class CacheGetResponse(_message.Message):
    __slots__ = ("hit", "entry")
    HIT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    hit: bool
    entry: CacheEntry
    def __init__(self, hit: _Optional[bool] = ..., entry: _Optional[_Union[CacheEntry, _Mapping]] = ...) -> None: ...

class CachePutRequest(_message.Message):
    __slots__ = ("entry", "ttl_secs")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    TTL_SECS_FIELD_NUMBER: _ClassVar[int]
    entry: CacheEntry
    ttl_secs: int
    def __init__(self, entry: _Optional[_Union[CacheEntry, _Mapping]] = ..., ttl_secs: _Optional[int] = ...) -> None: ...

class CachePutResponse(_message.Message):
    __slots__ = ("evicted",)
    EVICTED_FIELD_NUMBER: _ClassVar[int]
    evicted: int
    def __init__(self, evicted: _Optional[int] = ...) -> None: ...

class GetCacheStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCacheStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: _common_pb2.CacheStats
    def __init__(self, stats: _Optional[_Union[_common_pb2.CacheStats, _Mapping]] = ...) -> None: ...

class ClearCacheRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClearCacheResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class SaveSwarmStateRequest(_message.Message):
    __slots__ = ("swarm",)
    SWARM_FIELD_NUMBER: _ClassVar[int]
    swarm: _common_pb2.Swarm
    def __init__(self, swarm: _Optional[_Union[_common_pb2.Swarm, _Mapping]] = ...) -> None: ...

class SaveSwarmStateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SaveSubTaskStateRequest(_message.Message):
    __slots__ = ("swarm_id", "state")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    state: _common_pb2.SubTaskState
    def __init__(self, swarm_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.SubTaskState, _Mapping]] = ...) -> None: ...

class SaveSubTaskStateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LoadSwarmStateRequest(_message.Message):
    __slots__ = ("swarm_id",)
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    def __init__(self, swarm_id: _Optional[str] = ...) -> None: ...

class LoadSwarmStateResponse(_message.Message):
    __slots__ = ("swarm",)
    SWARM_FIELD_NUMBER: _ClassVar[int]
    swarm: _common_pb2.Swarm
    def __init__(self, swarm: _Optional[_Union[_common_pb2.Swarm, _Mapping]] = ...) -> None: ...

class ListSwarmStatesRequest(_message.Message):
    __slots__ = ("states", "limit", "offset", "labels", "created_after", "created_before", "oldest_first", "after_id", "after_created_at", "tenant")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.SwarmState]
    limit: int
    offset: int
    labels: _containers.ScalarMap[str, str]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    oldest_first: bool
    after_id: str
    after_created_at: _timestamp_pb2.Timestamp
    tenant: str
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.SwarmState, str]]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., oldest_first: _Optional[bool] = ..., after_id: _Optional[str] = ..., after_created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListSwarmStatesResponse(_message.Message):
    __slots__ = ("swarms",)
    SWARMS_FIELD_NUMBER: _ClassVar[int]
    swarms: _containers.RepeatedCompositeFieldContainer[_common_pb2.Swarm]
    def __init__(self, swarms: _Optional[_Iterable[_Union[_common_pb2.Swarm, _Mapping]]] = ...) -> None: ...

class AppendEventsRequest(_message.Message):
    __slots__ = ("swarm_id", "events")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.SwarmEvent]
    def __init__(self, swarm_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_common_pb2.SwarmEvent, _Mapping]]] = ...) -> None: ...

class AppendEventsResponse(_message.Message):
    __slots__ = ("last_sequence",)
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    last_sequence: int
    def __init__(self, last_sequence: _Optional[int] = ...) -> None: ...

class ReadEventsRequest(_message.Message):
    __slots__ = ("swarm_id", "after_sequence", "limit")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    after_sequence: int
    limit: int
    def __init__(self, swarm_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadEventsResponse(_message.Message):
    __slots__ = ("events", "last_sequence")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.SwarmEvent]
    last_sequence: int
    def __init__(self, events: _Optional[_Iterable[_Union[_common_pb2.SwarmEvent, _Mapping]]] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class BlobInfo(_message.Message):
    __slots__ = ("blob_id", "size", "sha256", "media_type")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    size: int
    sha256: str
    media_type: str
    def __init__(self, blob_id: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., media_type: _Optional[str] = ...) -> None: ...

class PutBlobRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: BlobInfo
    chunk: bytes
    def __init__(self, header: _Optional[_Union[BlobInfo, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class PutBlobResponse(_message.Message):
    __slots__ = ("blob",)
    BLOB_FIELD_NUMBER: _ClassVar[int]
    blob: BlobInfo
    def __init__(self, blob: _Optional[_Union[BlobInfo, _Mapping]] = ...) -> None: ...

class GetBlobRequest(_message.Message):
    __slots__ = ("blob_id",)
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    def __init__(self, blob_id: _Optional[str] = ...) -> None: ...

class GetBlobResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: BlobInfo
    chunk: bytes
    def __init__(self, header: _Optional[_Union[BlobInfo, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("id", "swarm_id", "kind", "subtask_id", "detail", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    swarm_id: str
    kind: str
    subtask_id: str
    detail: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., swarm_id: _Optional[str] = ..., kind: _Optional[str] = ..., subtask_id: _Optional[str] = ..., detail: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AppendAuditRecordRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: AuditRecord
    def __init__(self, record: _Optional[_Union[AuditRecord, _Mapping]] = ...) -> None: ...

class AppendAuditRecordResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ListAuditRecordsRequest(_message.Message):
    __slots__ = ("swarm_id", "kind")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    kind: str
    def __init__(self, swarm_id: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class ListAuditRecordsResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...
