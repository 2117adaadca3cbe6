"""Which branch of a swarm merges first among branches finishing together.

The collapse controller promotes the best-scoring running branch of a swarm
(``SampleBranchRequest.promoted_subtask_id``); the executor service records
it here, and :mod:`.integrate` puts that subtask's merge first in the batch
it lands (the rest stay in their fixed order: swarm, subtask, attempt), so
the promoted branch's changes are on the user's branch before the others'
and a conflict between them fails the others, not it.
"""

from __future__ import annotations

import threading

__all__ = ["forget", "promote", "promoted"]

#: Swarms remembered at most; the oldest promotion is dropped beyond that.
MAX_SWARMS = 1024
_PROMOTED: dict[str, str] = {}
_LOCK = threading.Lock()


def promote(swarm_id: str, subtask_id: str) -> None:
    """Record ``subtask_id`` as the swarm's promoted branch ("" clears it)."""
    with _LOCK:
        _PROMOTED.pop(swarm_id, None)
        if subtask_id:
            _PROMOTED[swarm_id] = subtask_id
            while len(_PROMOTED) > MAX_SWARMS:
                del _PROMOTED[next(iter(_PROMOTED))]


def promoted(swarm_id: str) -> str:
    """The swarm's promoted subtask, "" when none."""
    with _LOCK:
        return _PROMOTED.get(swarm_id, "")


def forget(swarm_id: str) -> None:
    """Drop what is remembered of a swarm."""
    promote(swarm_id, "")
