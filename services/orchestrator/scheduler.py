"""Dependency-driven dispatch order, without stage barriers.

The seed ran stage after stage, so one slow subtask held back every
subtask of the next stage, including those that did not depend on it. Here
a subtask becomes ready the moment its *own* dependencies are resolved:

* :class:`DependencyTracker` counts each subtask's unresolved dependencies
  and says, when one finishes, which dependents became ready and which must
  be skipped (policy SKIP) or run anyway with the failure in their context
  (policy RUN_ANYWAY);
* :class:`ReadyQueue` orders ready subtasks critical-path first (the longest
  chain of subtasks still ahead of them), then by priority, then plan order;
* :class:`Stagger` keeps a minimum gap between two dispatches
  (``request_delay_ms``), so a burst of ready subtasks does not hit the model
  provider at the same instant.

The concurrency cap itself is enforced by the swarm run, which owns the
running tasks.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from swarmd.services.orchestrator.validation import remaining_chain_lengths
from swarmd.v1 import common_pb2

__all__ = ["DependencyTracker", "ReadyQueue", "Resolution", "Stagger"]


class ReadyQueue:
    """Ready subtask ids, best first; removal is lazy (heap entries are skipped)."""

    def __init__(self, subtasks: Sequence[common_pb2.SubTask]) -> None:
        chains = remaining_chain_lengths(subtasks)
        self._key = {s.id: (-chains[s.id], -s.priority, index) for index, s in enumerate(subtasks)}
        self._heap: list[tuple[tuple[int, int, int], str]] = []
        self._members: set[str] = set()

    def push(self, subtask_id: str) -> None:
        if subtask_id in self._members:
            return
        self._members.add(subtask_id)
        heapq.heappush(self._heap, (self._key[subtask_id], subtask_id))

    def remove(self, subtask_id: str) -> bool:
        """Take a subtask out (e.g. it was cancelled while waiting); True when it was in."""
        if subtask_id in self._members:
            self._members.discard(subtask_id)
            return True
        return False

    def pop(self) -> str:
        while self._heap:
            _, subtask_id = heapq.heappop(self._heap)
            if subtask_id in self._members:
                self._members.discard(subtask_id)
                return subtask_id
        raise IndexError("pop from an empty ReadyQueue")

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, subtask_id: object) -> bool:
        return subtask_id in self._members


@dataclass
class Resolution:
    """What finishing one subtask changes for its dependents."""

    ready: list[str]
    skip: list[str]


class DependencyTracker:
    """Unresolved dependencies per subtask, and what to do when one resolves."""

    def __init__(
        self,
        subtasks: Sequence[common_pb2.SubTask],
        policy: common_pb2.DependencyFailurePolicy,
    ) -> None:
        self.run_anyway = policy == common_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY
        self._waiting: dict[str, set[str]] = {s.id: set(s.dependencies) for s in subtasks}
        self._dependents: dict[str, list[str]] = {s.id: [] for s in subtasks}
        for s in subtasks:
            for dep in s.dependencies:
                self._dependents[dep].append(s.id)
        self._resolved: set[str] = set()

    def roots(self) -> list[str]:
        """Subtasks with no dependency at all, in plan order."""
        return [sid for sid, deps in self._waiting.items() if not deps]

    def waiting_on(self, subtask_id: str) -> set[str]:
        return set(self._waiting[subtask_id])

    def dependents(self, subtask_id: str) -> list[str]:
        return list(self._dependents[subtask_id])

    def resolve(self, subtask_id: str, succeeded: bool, finished: Iterable[str] = ()) -> Resolution:
        """``subtask_id`` reached a terminal status.

        Dependents in ``finished`` (already terminal, e.g. cancelled while
        blocked) are left alone. Returns the dependents that are now ready and
        those to skip; the caller skips them and resolves each in turn (so a
        skip propagates down the graph).
        """
        out = Resolution([], [])
        if subtask_id in self._resolved:
            return out
        self._resolved.add(subtask_id)
        done = set(finished)
        for dependent in self._dependents[subtask_id]:
            if dependent in done or dependent in self._resolved:
                continue
            if not succeeded and not self.run_anyway:
                out.skip.append(dependent)
                continue
            waiting = self._waiting[dependent]
            waiting.discard(subtask_id)
            if not waiting:
                out.ready.append(dependent)
        return out

    @classmethod
    def restore(
        cls,
        subtasks: Sequence[common_pb2.SubTask],
        policy: common_pb2.DependencyFailurePolicy,
        terminal: Mapping[str, bool],
    ) -> DependencyTracker:
        """A tracker for a resumed swarm: ``terminal`` maps finished subtask ids
        to whether they succeeded; their effect on dependents is replayed."""
        tracker = cls(subtasks, policy)
        for sid, ok in terminal.items():
            tracker._resolved.add(sid)
            for dependent in tracker._dependents[sid]:
                if ok or tracker.run_anyway:
                    tracker._waiting[dependent].discard(sid)
        return tracker


class Stagger:
    """At least ``gap`` seconds between two dispatches (the first goes at once)."""

    def __init__(
        self,
        gap: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gap = gap
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    async def wait(self) -> None:
        if self._last is not None and self.gap > 0:
            delay = self._last + self.gap - self._clock()
            if delay > 0:
                await self._sleep(delay)
        self._last = self._clock()
