"""Read-side RPCs beyond GetSwarm: ListSwarms, GetSubTask, ListSubTasks.

Live swarms are answered from their run's snapshot, the others from the
result store. Listings page with keyset tokens (:mod:`.paging`): a
ListSwarms token holds the last swarm's ``created_at`` and id, so swarms
submitted between two page requests neither repeat an item nor hide one; a
ListSubTasks token holds the plan position to continue after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from swarmd.services.errors import InvalidArgument, NotFound
from swarmd.services.orchestrator.paging import (
    MAX_PAGE,
    decode_token,
    encode_token,
    page_size,
    request_digest,
)
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.services.orchestrator.run import SwarmRun
from swarmd.services.orchestrator.speculation.variants import subtask_of
from swarmd.services.orchestrator.stats import count_outcomes
from swarmd.services.orchestrator.validation import (
    MAX_LABEL_KEY_CHARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    validate_id,
)
from swarmd.v1 import common_pb2, orchestrator_pb2, result_store_pb2

__all__ = ["SwarmQueries", "check_view", "event_filter", "subtask_in_view", "summary", "swarm_in_view"]

#: Accepted ListSwarms.order_by values, and whether each lists oldest first.
_ORDERS = {"": False, "created_at desc": False, "created_at": True, "created_at asc": True}
_MIN_TS_SECS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_TS_SECS = 253402300799  # 9999-12-31T23:59:59Z


def check_view(view: int) -> bool:
    """True for the basic view; INVALID_ARGUMENT for a value that is no view."""
    if view not in orchestrator_pb2.SwarmView.values():
        raise InvalidArgument(f"view: {view} is not a SwarmView", field="view")
    return view == orchestrator_pb2.SWARM_VIEW_BASIC


def subtask_in_view(state: common_pb2.SubTaskState, view: int) -> common_pb2.SubTaskState:
    """``state`` as ``view`` shows it (a copy when anything is left out)."""
    if not check_view(view):
        return state
    basic = common_pb2.SubTaskState()
    basic.CopyFrom(state)
    basic.result.ClearField("result")
    basic.result.ClearField("artifacts")
    return basic


def swarm_in_view(swarm: common_pb2.Swarm, view: int) -> common_pb2.Swarm:
    """``swarm`` as ``view`` shows it (a copy when anything is left out)."""
    if not check_view(view):
        return swarm
    basic = common_pb2.Swarm()
    basic.CopyFrom(swarm)
    basic.ClearField("result")
    for state in basic.subtasks:
        state.result.ClearField("result")
        state.result.ClearField("artifacts")
    return basic


def summary(swarm: common_pb2.Swarm) -> orchestrator_pb2.SwarmSummary:
    """The listing entry of ``swarm``."""
    counts = count_outcomes(swarm.subtasks)
    entry = orchestrator_pb2.SwarmSummary(
        id=swarm.id,
        task=swarm.task[:200],
        state=swarm.state,
        subtask_count=len(swarm.subtasks),
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled,
        skipped=counts.skipped,
        execution_time_ms=swarm.stats.execution_time_ms,
        labels=swarm.labels,
    )
    if swarm.HasField("created_at"):
        entry.created_at.CopyFrom(swarm.created_at)
    return entry


def _check_timestamp(field: str, ts: object) -> int:
    seconds, nanos = ts.seconds, ts.nanos  # type: ignore[attr-defined]
    if not _MIN_TS_SECS <= seconds <= _MAX_TS_SECS or not 0 <= nanos <= 999_999_999:
        raise InvalidArgument(
            f"{field}: seconds={seconds} nanos={nanos} is not a valid Timestamp", field=field
        )
    return int(ts.ToMicroseconds())  # type: ignore[attr-defined]


def _store_request(
    request: orchestrator_pb2.ListSwarmsRequest,
) -> result_store_pb2.ListSwarmStatesRequest:
    """The store query a ListSwarms request stands for (without cursor and limit)."""
    order = request.order_by.strip().lower()
    order = " ".join(order.split())
    if order not in _ORDERS:
        raise InvalidArgument(
            f"order_by {request.order_by[:80]!r} is not supported: use \"created_at desc\" "
            "(newest first, the default) or \"created_at asc\" (oldest first)",
            field="order_by",
        )
    flt = request.filter
    for i, state in enumerate(flt.states):
        if state not in common_pb2.SwarmState.values() or state == common_pb2.SWARM_STATE_UNSPECIFIED:
            raise InvalidArgument(
                f"filter.states[{i}]: {state} is not a swarm state", field=f"filter.states[{i}]"
            )
    if len(flt.labels) > MAX_LABELS:
        raise InvalidArgument(f"filter.labels: at most {MAX_LABELS} labels", field="filter.labels")
    for key, value in flt.labels.items():
        if not key or len(key) > MAX_LABEL_KEY_CHARS or len(value) > MAX_LABEL_VALUE_CHARS:
            raise InvalidArgument(
                f"filter.labels: key {key[:40]!r} must be 1-{MAX_LABEL_KEY_CHARS} characters "
                f"and its value at most {MAX_LABEL_VALUE_CHARS}",
                field="filter.labels",
            )
    after = (
        _check_timestamp("filter.created_after", flt.created_after)
        if flt.HasField("created_after")
        else 0
    )
    before = (
        _check_timestamp("filter.created_before", flt.created_before)
        if flt.HasField("created_before")
        else 0
    )
    if flt.HasField("created_after") and flt.HasField("created_before") and before <= after:
        raise InvalidArgument(
            "filter.created_before must be later than filter.created_after",
            field="filter.created_before",
        )
    query = result_store_pb2.ListSwarmStatesRequest(
        states=sorted(set(flt.states)), labels=flt.labels, oldest_first=_ORDERS[order]
    )
    if flt.HasField("created_after"):
        query.created_after.CopyFrom(flt.created_after)
    if flt.HasField("created_before"):
        query.created_before.CopyFrom(flt.created_before)
    return query


#: The kinds of event a watch may ask for: SwarmEvent's ``kind`` oneof fields.
EVENT_KINDS = frozenset(
    f.name for f in common_pb2.SwarmEvent.DESCRIPTOR.oneofs_by_name["kind"].fields
)


def event_filter(
    request: orchestrator_pb2.WatchSwarmRequest,
) -> Callable[[common_pb2.SwarmEvent], bool] | None:
    """What a WatchSwarm request's ``subtask_ids`` and ``event_kinds`` let
    through (None: everything). Events naming no subtask concern the whole
    swarm and pass the subtask filter."""
    for i, subtask_id in enumerate(request.subtask_ids):
        validate_id(subtask_id, f"subtask_ids[{i}]")
    for i, kind in enumerate(request.event_kinds):
        if kind not in EVENT_KINDS:
            raise InvalidArgument(
                f"event_kinds[{i}]: {kind[:60]!r} is not an event kind; kinds are the names of "
                f"SwarmEvent's kind fields: {', '.join(sorted(EVENT_KINDS))}",
                field=f"event_kinds[{i}]",
            )
    subtasks = frozenset(request.subtask_ids)
    kinds = frozenset(request.event_kinds)
    if not subtasks and not kinds:
        return None

    def keep(event: common_pb2.SwarmEvent) -> bool:
        kind = event.WhichOneof("kind")
        if kinds and kind not in kinds:
            return False
        if subtasks and kind is not None:
            subtask_id = getattr(getattr(event, kind), "subtask_id", "")
            if subtask_id and subtask_id not in subtasks and subtask_of(subtask_id) not in subtasks:
                return False  # a variant's events come with its subtask's
        return True

    return keep


class SwarmQueries:
    """Answers the read-side RPCs for one orchestrator."""

    def __init__(
        self,
        runs: Mapping[str, SwarmRun],
        store: StoreClient,
        load: Callable[[str], Awaitable[common_pb2.Swarm]],
    ) -> None:
        self._runs = runs
        self._store = store
        self._load = load

    async def swarm(self, swarm_id: str) -> common_pb2.Swarm:
        """The current view of one swarm: live snapshot, else the stored copy."""
        validate_id(swarm_id, "swarm_id")
        run = self._runs.get(swarm_id)
        if run is not None:
            return run.snapshot()
        return await self._load(swarm_id)

    async def list_swarms(
        self, request: orchestrator_pb2.ListSwarmsRequest, *, tenant: str = ""
    ) -> orchestrator_pb2.ListSwarmsResponse:
        """A page of swarms, only ``tenant``'s when set."""
        size = page_size(request.page_size)
        query = _store_request(request)
        query.tenant = tenant
        digest = request_digest(request)
        if request.page_token:
            position = decode_token(request.page_token, "ListSwarms", digest)
            if (
                len(position) != 2
                or type(position[0]) is not int
                or not _MIN_TS_SECS * 10**6 <= position[0] <= _MAX_TS_SECS * 10**6
                or not isinstance(position[1], str)
                or not position[1]
            ):
                raise InvalidArgument("page_token is not a page token of ListSwarms", field="page_token")
            validate_id(position[1], "page_token")
            query.after_created_at.FromMicroseconds(position[0])
            query.after_id = position[1]
        # One more than the page tells whether another follows (the store's own
        # maximum is the same 1000: a full 1000-item page offers a next page).
        query.limit = min(size + 1, MAX_PAGE)
        stored = await self._store.list_swarms(query)
        response = orchestrator_pb2.ListSwarmsResponse()
        states = set(query.states)
        for swarm in stored[:size]:
            run = self._runs.get(swarm.id)
            # A live swarm's state may be ahead of its stored copy.
            current = run.snapshot() if run is not None else swarm
            if states and current.state not in states:
                continue
            response.swarms.append(summary(current))
        if len(stored) > size or len(stored) == size == MAX_PAGE:
            # The position is the last swarm read from the store, listed or
            # not, with the store's sort key.
            last = stored[size - 1]
            response.next_page_token = encode_token(
                "ListSwarms", digest, [last.created_at.ToMicroseconds(), last.id]
            )
        return response

    async def get_subtask(
        self, request: orchestrator_pb2.GetSubTaskRequest
    ) -> orchestrator_pb2.GetSubTaskResponse:
        validate_id(request.swarm_id, "swarm_id")
        validate_id(request.subtask_id, "subtask_id")
        check_view(request.view)
        swarm = await self.swarm(request.swarm_id)
        for state in swarm.subtasks:
            if state.subtask.id == request.subtask_id:
                return orchestrator_pb2.GetSubTaskResponse(
                    subtask=subtask_in_view(state, request.view), swarm_state=swarm.state
                )
        raise NotFound(f"swarm {request.swarm_id!r} has no subtask {request.subtask_id!r}")

    async def list_subtasks(
        self, request: orchestrator_pb2.ListSubTasksRequest
    ) -> orchestrator_pb2.ListSubTasksResponse:
        validate_id(request.swarm_id, "swarm_id")
        size = page_size(request.page_size)
        check_view(request.view)
        for i, status in enumerate(request.statuses):
            if (
                status not in common_pb2.SubTaskStatus.values()
                or status == common_pb2.SUB_TASK_STATUS_UNSPECIFIED
            ):
                raise InvalidArgument(
                    f"statuses[{i}]: {status} is not a subtask status", field=f"statuses[{i}]"
                )
        digest = request_digest(request)
        start = 0
        if request.page_token:
            position = decode_token(request.page_token, "ListSubTasks", digest)
            if len(position) != 1 or type(position[0]) is not int or position[0] < 0:
                raise InvalidArgument("page_token is not a page token of ListSubTasks", field="page_token")
            start = position[0]
        swarm = await self.swarm(request.swarm_id)
        wanted = set(request.statuses)
        response = orchestrator_pb2.ListSubTasksResponse(swarm_state=swarm.state)
        # Plan order is fixed once planned (subtasks are only ever appended),
        # so a position stays valid while the swarm runs.
        index = start
        while index < len(swarm.subtasks) and len(response.subtasks) < size:
            state = swarm.subtasks[index]
            index += 1
            if not wanted or state.status in wanted:
                response.subtasks.append(subtask_in_view(state, request.view))
        if any(not wanted or s.status in wanted for s in swarm.subtasks[index:]):
            response.next_page_token = encode_token("ListSubTasks", digest, [index])
        return response
