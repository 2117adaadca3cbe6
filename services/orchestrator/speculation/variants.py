"""What a speculative variant is: its id, its strategy prompt, its request.

A subtask with ``speculate: N`` (N > 1) runs as N variants, each a sub-agent
with the subtask's instruction followed by one strategy prompt of
:data:`STRATEGIES` (variant ``n`` takes the ``(n - 1) % len`` -th), on its own
worktree and branch. A variant's id is ``<subtask>.variant-<n>``: the
executor keys attempts, worktrees, events and merge trailers by it, so the
variants never share anything; the spend RPCs map it back to its subtask,
whose budgets it spends.

Why strategies and not N copies of one prompt: identical prompts at the same
temperature tend to produce the same mistake N times; distinct approaches
make it likelier that one of them passes the checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from swarmd.v1 import common_pb2

__all__ = [
    "LOSER_REASON",
    "MAX_VARIANTS",
    "STRATEGIES",
    "Strategy",
    "attempt_ids",
    "count_speculation",
    "parent_of",
    "model_of",
    "settle_by_merge",
    "strategy_of",
    "subtask_of",
    "variant_id",
    "variant_subtask",
    "variants_of",
]

#: Most variants one subtask may ask for (each is a sub-agent and a worktree).
MAX_VARIANTS = 8

#: The reason a variant that did not win is cancelled with (a prefix).
LOSER_REASON = "speculative_loser"

_SEPARATOR = ".variant-"


@dataclass(frozen=True)
class Strategy:
    """One way of going about the same instruction."""

    name: str
    prompt: str


STRATEGIES: tuple[Strategy, ...] = (
    Strategy(
        "minimal-change",
        "Make the smallest change that does what is asked: touch as few files and lines as "
        "possible, keep the existing structure and names, add nothing that is not needed.",
    ),
    Strategy(
        "test-first",
        "Work test first: write or extend a test that shows what is asked, run it and see it "
        "fail, then change the code until it passes, and run the tests again at the end.",
    ),
    Strategy(
        "clean-rewrite",
        "Rewrite the code concerned cleanly: where the existing code makes the change awkward, "
        "restructure it into the shape the change calls for rather than patching around it.",
    ),
    Strategy(
        "careful-review",
        "Read the surrounding code and its callers first, list what the change could break, "
        "make the change, then review your own diff line by line and fix what you find.",
    ),
)


def variants_of(config: common_pb2.SwarmConfig, sub: common_pb2.SubTask) -> int:
    """How many variants ``sub`` runs as (1 = no speculation): its own
    ``speculate``, else the swarm's; read-only subtasks and swarms without
    worktrees run one sub-agent (variants need a branch each)."""
    wanted = sub.speculate or config.speculate
    if wanted <= 1 or sub.read_only or not config.worktree_enabled:
        return 1
    return min(wanted, MAX_VARIANTS)


def variant_id(subtask_id: str, variant: int) -> str:
    """``<subtask>.variant-<n>``."""
    return f"{subtask_id}{_SEPARATOR}{variant}"


def subtask_of(sid: str) -> str:
    """The subtask an id stands for: the speculative subtask of a variant id,
    any other id itself (ids of that shape are reserved for variants)."""
    parent, sep, number = sid.rpartition(_SEPARATOR)
    return parent if sep and parent and number.isdigit() else sid


def parent_of(states: Mapping[str, common_pb2.SubTaskState], sid: str) -> tuple[str, int] | None:
    """(subtask, variant number) when ``sid`` is a variant of a speculative subtask of ``states``."""
    parent, sep, number = sid.rpartition(_SEPARATOR)
    if not sep or not number.isdigit() or parent not in states:
        return None
    variant = int(number)
    state = states[parent]
    if not 1 <= variant <= max(state.subtask.speculate, len(state.variants)):
        return None
    return parent, variant


def attempt_ids(state: common_pb2.SubTaskState) -> list[str]:
    """The ids a subtask's attempts ran under on the executor: its variants'
    (as last recorded) when it was raced, else its own."""
    return [v.subtask_id for v in state.variants] or [state.subtask.id]


def strategy_of(variant: int) -> Strategy:
    return STRATEGIES[(variant - 1) % len(STRATEGIES)]


def model_of(config: common_pb2.SwarmConfig, variant: int) -> str:
    """The model a variant runs: ``speculate_models`` in turn, else the swarm's."""
    models = config.speculate_models
    return models[(variant - 1) % len(models)] if models else config.model


def variant_subtask(sub: common_pb2.SubTask, variant: int) -> common_pb2.SubTask:
    """The subtask a variant's sub-agent is given: its own id, the instruction
    with the strategy prompt, no speculation of its own."""
    strategy = strategy_of(variant)
    copy = common_pb2.SubTask()
    copy.CopyFrom(sub)
    copy.id = variant_id(sub.id, variant)
    copy.name = f"{sub.name or sub.id} (variant {variant}: {strategy.name})"
    copy.instruction = f"{sub.instruction.rstrip()}\n\nApproach ({strategy.name}): {strategy.prompt}"
    copy.speculate = 0
    return copy


def count_speculation(stats: common_pb2.CollapseStats, states: Iterable[common_pb2.SubTaskState]) -> None:
    """Races won and losers cancelled over a swarm's subtasks, into ``stats``
    (left unset when the swarm raced nothing)."""
    wins = losers = 0
    for state in states:
        wins += any(v.winner for v in state.variants)
        losers += sum(1 for v in state.variants if v.reason.startswith(LOSER_REASON))
    if wins or losers:
        stats.speculative_wins, stats.speculative_losers = wins, losers


def settle_by_merge(state: common_pb2.SubTaskState, branch: str, commit: str) -> None:
    """A raced subtask found merged on the user's branch (from ``branch``, its
    work ``commit``): the variant it came from won, the variants that had not
    ended lost -- as the race had decided before its orchestrator went away."""
    winner = next(
        (v for v in state.variants if branch == v.branch or branch.startswith(f"{v.branch}@")), None
    )
    if winner is None:
        return
    winner.winner = True
    winner.status = common_pb2.SUB_TASK_STATUS_COMPLETED
    winner.branch, winner.commit, winner.reason = branch, commit, ""
    ended = (common_pb2.SUB_TASK_STATUS_COMPLETED, common_pb2.SUB_TASK_STATUS_FAILED, common_pb2.SUB_TASK_STATUS_CANCELLED)
    for variant in state.variants:
        if variant is not winner and variant.status not in ended:
            variant.status = common_pb2.SUB_TASK_STATUS_CANCELLED
            variant.reason = f"{LOSER_REASON}: variant {winner.variant} ({winner.strategy}) won"
