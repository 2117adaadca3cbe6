"""The collapse controller: samples running branches, scores them, kills
clearly broken ones and promotes the best.

:mod:`.policy` is the pure part (settings, per-branch state, the score and
the decisions, from observations and a clock); :mod:`.controller` runs it
on an interval against a swarm, samples through the executor service
(which owns the worktrees) and acts on the decisions through callables the
swarm hands it.
"""

from __future__ import annotations

from swarmd.services.orchestrator.collapse.controller import (
    CollapseController,
    CollapseHost,
    judgeable,
)
from swarmd.services.orchestrator.collapse.policy import (
    CollapsePolicy,
    CollapseSettings,
    Observation,
)

__all__ = ["CollapseController", "CollapseHost", "CollapsePolicy", "CollapseSettings", "Observation", "judgeable"]
