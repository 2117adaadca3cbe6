"""Scoring and decisions of the collapse controller (pure: observations in, a tick out).

The score is the seed's (weights and terms), with ``compile_health`` and
``test_health`` taken from the branch's real health checks (1 pass, 0 fail,
0.5 unknown) instead of a constant:

    weighted = 0.29*compile + 0.14*test + 0.18*contract_alignment
             + 0.14*(1 - diff_conflict_risk) + 0.08*velocity + 0.17*resource
    score    = clamp(weighted - clamp(0.1 * (invariant_breaks + consecutive_failures), 0, 0.6), 0, 1)

The seed's decisions killed a branch on one failed compile at the first
tick, so in a repository its check did not fit every branch died but one.
Here:

* nothing counts during a branch's warm-up (``warmup_secs``, 30 s: a branch
  mid-edit often does not build);
* a kill needs ``max_consecutive_failures`` (3) FAILs in a row after it; a
  PASS resets the count; UNKNOWN (timeout, nothing to check) neither counts
  nor resets;
* resource failures (``min_resource_health_score``) and infrastructure
  signals kill as in the seed, after the warm-up too;
* never every branch: a branch is killed only while a healthy peer exists (a
  running branch that is not marked and whose last check did not fail, or a
  completed branch whose last check passed). When every branch fails, the
  check is more likely wrong than all of them: none is killed;
* soft pruning of the worst branch is off unless configured;
* the promoted branch is the best scoring survivor (ties: the smaller id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from swarmd.v1 import common_pb2

__all__ = ["BranchState", "CollapsePolicy", "CollapseSettings", "Evaluation", "Kill", "Observation", "Tick"]

PASS = common_pb2.HEALTH_STATUS_PASS
FAIL = common_pb2.HEALTH_STATUS_FAIL

W_COMPILE, W_TEST, W_CONTRACT, W_CONFLICT, W_VELOCITY, W_RESOURCE = 0.29, 0.14, 0.18, 0.14, 0.08, 0.17


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, x))


@dataclass(frozen=True)
class CollapseSettings:
    """The controller's knobs (``CollapseConfig`` with its defaults filled in)."""

    interval_secs: float = 5.0
    warmup_secs: float = 30.0
    max_consecutive_failures: int = 3
    soft_prune: bool = False
    check_timeout_secs: float = 120.0
    max_invariant_breaks: int = 3
    max_consecutive_resource_failures: int = 2
    min_resource_health_score: float = 0.35
    min_collapse_score: float = 0.30
    min_score_gap_for_prune: float = 0.15

    @classmethod
    def from_proto(cls, config: common_pb2.CollapseConfig) -> CollapseSettings:
        return cls(
            interval_secs=(config.interval_ms or 5000) / 1000,
            warmup_secs=(config.warmup_ms if config.warmup_ms > 0 else 30_000) / 1000,
            max_consecutive_failures=config.max_consecutive_failures or 3,
            soft_prune=config.soft_prune,
            check_timeout_secs=(config.check_timeout_ms or 120_000) / 1000,
        )


@dataclass(frozen=True)
class Observation:
    """One sample of a running branch, with when it started running."""

    subtask_id: str
    health: int  # common_pb2.HealthStatus
    started_at: float
    changed_files: frozenset[str] = frozenset()
    changed_lines: int = 0
    resource_health_score: float = 1.0
    infra_unhealthy_signals: int = 0
    branch: str = ""

    @classmethod
    def from_proto(cls, obs: common_pb2.BranchObservation, started_at: float) -> Observation:
        return cls(
            subtask_id=obs.subtask_id,
            health=obs.health,
            started_at=started_at,
            changed_files=frozenset(obs.changed_files),
            changed_lines=obs.changed_lines,
            resource_health_score=obs.resource_health_score,
            infra_unhealthy_signals=obs.infra_unhealthy_signals,
            branch=obs.branch,
        )


@dataclass
class BranchState:
    """What the policy remembers of a branch between ticks."""

    first_seen_at: float
    consecutive_failures: int = 0
    consecutive_resource_failures: int = 0
    invariant_breaks: int = 0


@dataclass(frozen=True)
class Evaluation:
    """The score vector of one branch at one tick."""

    subtask_id: str
    compile_health: float
    test_health: float
    contract_alignment: float
    diff_conflict_risk: float
    velocity: float
    resource: float
    score: float
    consecutive_failures: int
    invariant_breaks: int
    warming_up: bool


@dataclass(frozen=True)
class Kill:
    """A branch to kill, and why."""

    subtask_id: str
    reason: str


@dataclass(frozen=True)
class Tick:
    """The decisions of one tick."""

    evaluations: list[Evaluation]
    kills: list[Kill]
    promoted: str | None
    #: Branches that met a kill threshold but were spared (no healthy peer).
    spared: list[str] = field(default_factory=list)


def conflict_risk(mine: frozenset[str], others: Sequence[frozenset[str]]) -> float:
    """Share of my files other branches change too (summed over them), in [0, 1]."""
    if not mine:
        return 0.0
    return _clamp(sum(len(mine & theirs) for theirs in others) / len(mine))


def _health_value(health: int) -> float:
    return 1.0 if health == PASS else 0.0 if health == FAIL else 0.5


class CollapsePolicy:
    """Per-branch state and the tick's decisions (see the module docstring)."""

    def __init__(self, settings: CollapseSettings) -> None:
        self.settings = settings
        self.states: dict[str, BranchState] = {}

    def _update(self, obs: Observation, now: float) -> tuple[BranchState, bool]:
        s = self.settings
        state = self.states.setdefault(obs.subtask_id, BranchState(first_seen_at=obs.started_at))
        warming = now - state.first_seen_at < s.warmup_secs
        if obs.health == PASS:
            state.consecutive_failures = 0
        elif obs.health == FAIL and not warming:
            state.consecutive_failures += 1
        if warming:
            return state, True
        if obs.resource_health_score < s.min_resource_health_score:
            state.consecutive_resource_failures += 1
        else:
            state.consecutive_resource_failures = 0
        state.invariant_breaks += obs.infra_unhealthy_signals
        return state, False

    def _score(self, obs: Observation, state: BranchState, others: list[frozenset[str]], now: float, warming: bool) -> Evaluation:
        health = _health_value(obs.health)
        risk = conflict_risk(obs.changed_files, others)
        alignment = (1.0 - risk) * health
        elapsed = max(1.0, now - state.first_seen_at)
        velocity = _clamp(obs.changed_lines / elapsed / 20.0)
        resource = _clamp(obs.resource_health_score)
        weighted = (
            W_COMPILE * health
            + W_TEST * health
            + W_CONTRACT * alignment
            + W_CONFLICT * (1.0 - risk)
            + W_VELOCITY * velocity
            + W_RESOURCE * resource
        )
        penalty = _clamp(0.1 * (state.invariant_breaks + state.consecutive_failures), 0.0, 0.6)
        return Evaluation(
            subtask_id=obs.subtask_id,
            compile_health=health,
            test_health=health,
            contract_alignment=alignment,
            diff_conflict_risk=risk,
            velocity=velocity,
            resource=resource,
            score=_clamp(weighted - penalty),
            consecutive_failures=state.consecutive_failures,
            invariant_breaks=state.invariant_breaks,
            warming_up=warming,
        )

    def _threshold(self, state: BranchState, obs: Observation) -> str | None:
        s = self.settings
        if (
            state.consecutive_failures >= s.max_consecutive_failures
            or state.consecutive_resource_failures >= s.max_consecutive_resource_failures
            or state.invariant_breaks >= s.max_invariant_breaks
        ):
            return (
                "collapse: policy threshold exceeded (consecutive_failures="
                f"{state.consecutive_failures}/{s.max_consecutive_failures}, "
                f"consecutive_resource_failures={state.consecutive_resource_failures}, "
                f"invariant_breaks={state.invariant_breaks}, "
                f"resource_health_score={obs.resource_health_score:.3f})"
            )
        return None

    def evaluate(
        self,
        observations: Sequence[Observation],
        now: float,
        *,
        running: set[str] | None = None,
        completed_peers: int = 0,
    ) -> Tick:
        """Update the branches' state from this tick's samples and decide.

        ``observations`` are the branches sampled this tick; ``running`` the
        branches still running (default: those sampled; the state of any
        other is forgotten); ``completed_peers`` counts completed branches
        whose last check passed (healthy peers for the never-kill-all rule).
        """
        present = {o.subtask_id for o in observations} | (running or set())
        for gone in set(self.states) - present:
            del self.states[gone]
        updated = [(o, *self._update(o, now)) for o in observations]
        evaluations: list[Evaluation] = []
        marked: dict[str, str] = {}
        for obs, state, warming in updated:
            others = [o.changed_files for o in observations if o.subtask_id != obs.subtask_id]
            evaluations.append(self._score(obs, state, others, now, warming))
            reason = None if warming else self._threshold(state, obs)
            if reason is not None:
                marked[obs.subtask_id] = reason
        healthy = completed_peers + sum(
            1 for o in observations if o.subtask_id not in marked and o.health != FAIL
        )
        kills: list[Kill] = []
        spared: list[str] = []
        if healthy == 0:
            spared = sorted(marked)
        else:
            kills = [Kill(sid, marked[sid]) for sid in sorted(marked)]
        by_score = sorted(
            (e for e in evaluations if e.subtask_id not in marked or e.subtask_id in spared),
            key=lambda e: (-e.score, e.subtask_id),
        )
        if self.settings.soft_prune and not spared and len(by_score) > 1:
            best, worst = by_score[0], by_score[-1]
            gap = best.score - worst.score
            if not worst.warming_up and worst.score <= self.settings.min_collapse_score and gap >= self.settings.min_score_gap_for_prune:
                kills.append(Kill(worst.subtask_id, f"collapse: low coherence pruned (score={worst.score:.3f}, best={best.score:.3f}, gap={gap:.3f})"))
                by_score.pop()
        for kill in kills:
            self.states.pop(kill.subtask_id, None)
        return Tick(evaluations, kills, by_score[0].subtask_id if by_score else None, spared)
