"""Speculative branches: one subtask raced as several variants.

:mod:`.variants` says what a variant is (its id, its strategy prompt, how
many a subtask runs as); :mod:`.race` runs them against each other, decides
the winner when a variant's committed work claims it (``ClaimVariant``) and
cancels the losers. The scheduler runs a speculative subtask through a
:class:`~.race.SpeculativeDispatch` instead of an ordinary dispatch; nothing
else of the swarm sees the variants but their events and the subtask's
``variants`` list.
"""

from __future__ import annotations

from swarmd.services.orchestrator.speculation.judging import SwarmBranches
from swarmd.services.orchestrator.speculation.race import (
    DispatchFactory,
    Running,
    SpeculativeDispatch,
    claim_variant,
)
from swarmd.services.orchestrator.speculation.variants import (
    LOSER_REASON,
    MAX_VARIANTS,
    STRATEGIES,
    count_speculation,
    parent_of,
    subtask_of,
    variant_id,
    variants_of,
)

__all__ = [
    "LOSER_REASON",
    "MAX_VARIANTS",
    "STRATEGIES",
    "DispatchFactory",
    "Running",
    "SpeculativeDispatch",
    "SwarmBranches",
    "claim_variant",
    "count_speculation",
    "parent_of",
    "subtask_of",
    "variant_id",
    "variants_of",
]
