"""Replaying what a previous orchestrator journaled into the result store.

:func:`replay_journal` runs once when an orchestrator starts, before any
swarm is resumed (see :mod:`.resume`), so the store says what the previous
orchestrator saw: every event it had numbered and the last state it saved.
Replay is idempotent and may be interrupted and run again:

* events are appended after the store's last sequence of the swarm; those
  the store already holds are skipped, and a refusal as out of order (the
  store took part of a batch before its reply was lost) is reconciled by
  reading the store's last sequence again. An event the store refuses for
  its content is replaced by a stub, as :class:`~.events.SwarmEventLog`
  does. Journaled events that cannot follow the store's log (the store lost
  events it had confirmed) are logged and dropped.
* state saves are sent oldest first (a whole-swarm save, then the subtask
  saves made after it), so the newest state wins.

Each entry leaves the journal once the store has confirmed it. An
unreachable store raises (:class:`~swarmd.services.errors.Unavailable` or
another :class:`~swarmd.services.errors.SwarmdError`); the caller retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from swarmd.services.errors import (
    SWARM_FINISHED,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from swarmd.services.orchestrator.events import BATCH_BYTES, stub_event
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.v1 import common_pb2

__all__ = ["ReplayReport", "replay_journal"]

log = logging.getLogger(__name__)

_BATCH_EVENTS = 500
_COMMIT_WAIT_SECS = 10.0


@dataclass
class ReplayReport:
    """What one replay sent to the store."""

    events: int = 0
    states: int = 0
    dropped: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.events or self.states or self.dropped)


async def _store_last(store: StoreClient, swarm_id: str) -> int:
    _, last = await store.read_events(swarm_id, 0, 1)
    return last


def _batch(events: list[common_pb2.SwarmEvent], limit: int) -> list[common_pb2.SwarmEvent]:
    batch: list[common_pb2.SwarmEvent] = []
    size = 0
    for event in events[:limit]:
        size += event.ByteSize()
        if batch and size > BATCH_BYTES:
            break
        batch.append(event)
    return batch


async def _replay_events(
    journal: Journal, store: StoreClient, swarm_id: str, report: ReplayReport
) -> None:
    events = journal.left_events[swarm_id]
    last = await _store_last(store, swarm_id)
    limit = _BATCH_EVENTS
    while True:
        events = [e for e in events if e.sequence > last]
        journal.left_events[swarm_id] = events
        if not events:
            break
        if events[0].sequence != last + 1:
            log.error(
                "swarm %s: journaled events %d..%d cannot follow the store's log, which ends at %d; "
                "they are dropped",
                swarm_id,
                events[0].sequence,
                events[-1].sequence,
                last,
            )
            report.dropped += len(events)
            last = events[-1].sequence
            continue
        batch = _batch(events, limit)
        try:
            stored = await store.append_events(swarm_id, batch)
        except FailedPrecondition as exc:
            if exc.reason == SWARM_FINISHED:
                log.error("swarm %s: %s; %d journaled events dropped", swarm_id, exc.message, len(events))
                report.dropped += len(events)
                break
            last = await _store_last(store, swarm_id)
            continue
        except (InvalidArgument, ResourceExhausted) as exc:
            if len(batch) > 1:
                limit = max(1, len(batch) // 2)
            else:
                events[0] = stub_event(batch[0], exc.message)
            continue
        report.events += len(batch)
        last = max(last, stored)
        limit = _BATCH_EVENTS
    journal.events_stored(swarm_id, last)
    del journal.left_events[swarm_id]


async def _replay_states(journal: Journal, store: StoreClient, report: ReplayReport) -> None:
    while journal.left_states:
        version, swarm_id, subtask_id, state = journal.left_states[0]
        try:
            if isinstance(state, common_pb2.Swarm):
                await store.save_swarm(state)
            else:
                await store.save_subtask(swarm_id, state)
            report.states += 1
        except NotFound:
            log.error(
                "swarm %s: the journaled state of subtask %s has no swarm in the store; dropped",
                swarm_id,
                subtask_id,
            )
            report.dropped += 1
        except (InvalidArgument, ResourceExhausted) as exc:
            log.error("swarm %s: the store refused a journaled state save: %s", swarm_id, exc.message)
            report.dropped += 1
        journal.state_stored(swarm_id, subtask_id, version)
        journal.left_states.pop(0)


async def replay_journal(journal: Journal, store: StoreClient) -> ReplayReport:
    """Send what a previous orchestrator left in ``journal`` to ``store``
    (events first, then state saves), and commit the journal."""
    report = ReplayReport()
    for swarm_id in sorted(journal.left_events):
        await _replay_events(journal, store, swarm_id, report)
    await _replay_states(journal, store, report)
    await journal.flush(_COMMIT_WAIT_SECS)  # the drops; a slow disk commits them later
    if report.anything:
        log.warning(
            "replayed the orchestrator journal %s into the result store: %d events, "
            "%d state saves (%d dropped)",
            journal.path,
            report.events,
            report.states,
            report.dropped,
        )
    return report
