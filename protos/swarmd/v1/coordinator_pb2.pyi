from swarmd.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
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
    __slots__ = ("swarm_id", "subtask_id", "commit", "branch")
    SWARM_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    swarm_id: str
    subtask_id: str
    commit: str
    branch: str
    def __init__(self, swarm_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., commit: _Optional[str] = ..., branch: _Optional[str] = ...) -> None: ...

class ClaimVariantResponse(_message.Message):
    __slots__ = ("outcome", "detail", "winner_subtask_id")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    WINNER_SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    outcome: ClaimOutcome
    detail: str
    winner_subtask_id: str
    def __init__(self, outcome: _Optional[_Union[ClaimOutcome, str]] = ..., detail: _Optional[str] = ..., winner_subtask_id: _Optional[str] = ...) -> None: ...
