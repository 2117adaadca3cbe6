"""What the scheduling code sees of a live swarm run, as narrow protocols.

:class:`~.run.SwarmRun` owns a live swarm; :mod:`.scheduling` dispatches its
subtasks and :mod:`.attempts` reports each attempt back into it. Those two
take a :class:`LiveRun` instead of the whole run class, so the modules form a
line (run -> scheduling -> attempts -> live_run) with no import back up, not
even for type checking. ``SwarmRun`` satisfies ``LiveRun`` structurally, and
its scheduler satisfies :class:`CommitBoard`.
"""

from __future__ import annotations

from typing import Protocol

from opentelemetry import context as otel_context

from swarmd.services.orchestrator.budgets import BudgetLedger
from swarmd.services.orchestrator.committed import EarlyCommit
from swarmd.services.orchestrator.context import RunContext
from swarmd.services.orchestrator.events import SwarmEventLog
from swarmd.services.orchestrator.persistence import StateWriter
from swarmd.v1 import common_pb2


class CommitBoard(Protocol):
    """The scheduler's record of work subtasks committed before their merge."""

    def committed_early(self, sid: str) -> EarlyCommit | None:
        """The commit a running ``sid`` reported before its merge, None once it is terminal."""
        ...

    def forget_commit(self, sid: str) -> None:
        """A new attempt of ``sid`` began: its earlier commit is no base for dependents."""
        ...

    def work_committed(self, sid: str, event: common_pb2.WorkCommitted) -> None:
        """``sid`` committed its work: dependents waiting only on committed work may start."""
        ...


class LiveRun(Protocol):
    """The parts of a live swarm run that scheduling and attempt reporting use."""

    @property
    def id(self) -> str:
        """The swarm's id."""
        ...

    @property
    def ctx(self) -> RunContext:
        """The orchestrator's shared services (store, executor, governor, clock)."""
        ...

    @property
    def swarm(self) -> common_pb2.Swarm:
        """The live Swarm message."""
        ...

    @property
    def config(self) -> common_pb2.SwarmConfig:
        """The swarm's configuration."""
        ...

    @property
    def states(self) -> dict[str, common_pb2.SubTaskState]:
        """Each subtask's live state, by subtask id."""
        ...

    @property
    def log(self) -> SwarmEventLog:
        """The swarm's event log."""
        ...

    @property
    def writer(self) -> StateWriter:
        """Saves subtask states to the result store."""
        ...

    @property
    def ledger(self) -> BudgetLedger:
        """The swarm's token and cost budgets."""
        ...

    @property
    def scheduler(self) -> CommitBoard:
        """The run's scheduler, as far as attempts consult it."""
        ...

    @property
    def cancelling(self) -> bool:
        """The swarm is being cancelled."""
        ...

    def span_context(self) -> otel_context.Context | None:
        """Context whose parent is the swarm's span (for subtask spans)."""
        ...

    def emit_update(self, state: common_pb2.SubTaskState, *, attempt: int = 0) -> None:
        """Publish a subtask's new state as an event."""
        ...
