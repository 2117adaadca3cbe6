"""Work committed before its merge: the bookkeeping of starting dependents early.

A mutating sub-agent reports ``WorkCommitted`` once its work is committed on
its branch, before the merge into the user's branch. :class:`CommittedWork`
keeps those commits per running subtask, which dependents were started from
which of them, and which of those dependents are being stopped to run again
(their parent finished with another commit, after a retry). The scheduler
(:mod:`.scheduling`) decides when to dispatch; this module only remembers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swarmd.v1 import common_pb2

__all__ = ["CommittedWork", "EarlyCommit"]


@dataclass(frozen=True)
class EarlyCommit:
    """A subtask's committed work, reported before its merge (its WorkCommitted event)."""

    commit: str
    output: str
    attempt: int


class CommittedWork:
    """Commits reported before their merge, and the dependents started from them."""

    def __init__(self) -> None:
        self._committed: dict[str, EarlyCommit] = {}
        #: Dependent -> {dependency: the commit it was started from}.
        self._started_on: dict[str, dict[str, str]] = {}
        #: Dependents being stopped to be dispatched again.
        self._restart: set[str] = set()

    def get(self, sid: str) -> EarlyCommit | None:
        return self._committed.get(sid)

    def record(self, sid: str, event: common_pb2.WorkCommitted) -> None:
        self._committed[sid] = EarlyCommit(event.commit, event.output, event.attempt)

    def forget(self, sid: str) -> None:
        """``sid`` began a new attempt or finished: its reported commit is no base any more."""
        self._committed.pop(sid, None)

    def covers(self, deps: Iterable[str]) -> bool:
        """True when every one of ``deps`` has committed work on record."""
        return all(dep in self._committed for dep in deps)

    def launched(self, sid: str, deps: Iterable[str]) -> None:
        """``sid`` is dispatched while ``deps`` (its unresolved dependencies) are still running."""
        early = {d: self._committed[d].commit for d in deps if d in self._committed}
        if early:
            self._started_on[sid] = early
        else:
            self._started_on.pop(sid, None)

    def started_on_another(self, dependent: str, sid: str, final: str) -> bool:
        """True when ``dependent`` was started from a commit of ``sid`` other than ``final``."""
        used = self._started_on.get(dependent, {}).get(sid)
        return used is not None and used != final

    def restart(self, sid: str) -> None:
        self._restart.add(sid)

    def take_restart(self, sid: str) -> bool:
        """True (once) when ``sid`` was stopped to run again."""
        if sid in self._restart:
            self._restart.discard(sid)
            self._started_on.pop(sid, None)
            return True
        return False
