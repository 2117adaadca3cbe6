"""What the collapse controller judges of a swarm: its subtasks' branches and
its speculative subtasks' variants.

A speculative subtask has no branch of its own; its running variants do,
and the controller judges them like any other branch: sampled on an
interval, killed after repeated failures past the warm-up -- cancelled
through the variant's own dispatch with the controller's ``collapse: ...``
reason, so the race goes on without it -- and never once its work is
committed (it is claiming the race, or it won). The "never kill every
branch" rule counts the variants with the swarm's other branches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from swarmd.services.orchestrator.collapse import judgeable
from swarmd.services.orchestrator.speculation.race import Running, SpeculativeDispatch
from swarmd.services.orchestrator.speculation.variants import parent_of
from swarmd.v1 import common_pb2

__all__ = ["SwarmBranches"]


@dataclass(frozen=True)
class SwarmBranches:
    """The controller's view of one live swarm's branches (see the module docstring)."""

    config: common_pb2.SwarmConfig
    states: Mapping[str, common_pb2.SubTaskState]
    #: The scheduler's running dispatches, by subtask id.
    dispatches: Mapping[str, Running]
    #: The commit a subtask reported before its merge (None until it did).
    committed: Callable[[str], object | None]
    #: The swarm's cancel path for one subtask (id, reason).
    cancel_subtask: Callable[[str, str], object]

    def _race(self, sid: str) -> SpeculativeDispatch | None:
        found = parent_of(self.states, sid)
        race = self.dispatches.get(found[0]) if found is not None else None
        return race if isinstance(race, SpeculativeDispatch) else None

    def candidates(self) -> list[str]:
        """Running branches the controller may judge: subtasks' and variants'."""
        stopping = {sid: d.cancelling for sid, d in self.dispatches.items()}
        ids = judgeable(self.config, self.states, stopping, self.committed)
        if self.config.worktree_enabled:
            for dispatch in self.dispatches.values():
                if isinstance(dispatch, SpeculativeDispatch):
                    ids.extend(dispatch.judgeable_variants())
        return ids

    def status(self, sid: str) -> int:
        """A subtask's status, or a variant's (``SubTaskStatus``)."""
        state = self.states.get(sid)
        if state is not None:
            return state.status
        race = self._race(sid)
        return race.variant_state(sid).status if race is not None else common_pb2.SUB_TASK_STATUS_UNSPECIFIED

    def cancel(self, sid: str, reason: str) -> object:
        """Cancel a subtask through the swarm's cancel path, or one variant through its dispatch."""
        if sid in self.states:
            return self.cancel_subtask(sid, reason)
        race = self._race(sid)
        return race.cancel_variant(sid, reason) if race is not None else None
