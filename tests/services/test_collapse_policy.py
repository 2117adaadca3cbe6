"""The collapse policy on synthetic observations: warm-up, consecutive
failures, never killing every branch, soft pruning off by default, the score."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmd.services.orchestrator.collapse.policy import (
    CollapsePolicy,
    CollapseSettings,
    Observation,
    conflict_risk,
)
from swarmd.v1 import common_pb2

PASS, FAIL, UNKNOWN = common_pb2.HEALTH_STATUS_PASS, common_pb2.HEALTH_STATUS_FAIL, common_pb2.HEALTH_STATUS_UNKNOWN
SETTINGS = CollapseSettings(warmup_secs=30, max_consecutive_failures=3)


def obs(sid: str, health: int, **kw: object) -> Observation:
    return Observation(subtask_id=sid, health=health, started_at=0.0, **kw)  # type: ignore[arg-type]


def run_ticks(policy: CollapsePolicy, healths: dict[str, list[int]], start: float = 0.0, step: float = 5.0) -> list[list[str]]:
    """Feed one observation per branch per tick; return each tick's kills."""
    kills: list[list[str]] = []
    alive = set(healths)
    ticks = max(len(v) for v in healths.values())
    for i in range(ticks):
        now = start + i * step
        tick = policy.evaluate([obs(sid, healths[sid][i]) for sid in sorted(alive)], now)
        kills.append([k.subtask_id for k in tick.kills])
        alive -= set(kills[-1])
    return kills


def test_three_failures_after_the_warmup_kill() -> None:
    policy = CollapsePolicy(SETTINGS)
    kills = run_ticks(policy, {"bad": [FAIL] * 10, "good": [PASS] * 10}, start=0.0)
    flat = [(i, k) for i, ks in enumerate(kills) for k in ks]
    # Ticks at 0,5,...,25 are warm-up; 30, 35, 40 are the three failures.
    assert flat == [(8, "bad")]


def test_a_failure_that_recovers_is_not_killed() -> None:
    policy = CollapsePolicy(SETTINGS)
    pattern = [FAIL, FAIL, PASS, FAIL, FAIL, PASS, FAIL, FAIL, PASS]
    kills = run_ticks(policy, {"flaky": pattern, "good": [PASS] * len(pattern)}, start=40.0)
    assert kills == [[]] * len(pattern)


def test_unknown_neither_counts_nor_resets() -> None:
    policy = CollapsePolicy(SETTINGS)
    kills = run_ticks(policy, {"b": [FAIL, UNKNOWN, FAIL, UNKNOWN, FAIL], "good": [PASS] * 5}, start=40.0)
    assert kills[-1] == ["b"] and not any(kills[:-1])


def test_the_seeds_failure_mode_kills_none() -> None:
    """Every branch fails its check from the first tick on: the check is wrong, not the branches."""
    policy = CollapsePolicy(SETTINGS)
    kills = run_ticks(policy, {s: [FAIL] * 20 for s in ("a", "b", "c")})
    assert kills == [[]] * 20
    tick = policy.evaluate([obs(s, FAIL) for s in "abc"], 200.0)
    assert tick.spared == ["a", "b", "c"] and tick.promoted is not None


def test_a_completed_peer_whose_check_passed_allows_the_kill() -> None:
    policy = CollapsePolicy(SETTINGS)
    for now in (40.0, 45.0):
        assert not policy.evaluate([obs("a", FAIL)], now, completed_peers=1).kills
    assert [k.subtask_id for k in policy.evaluate([obs("a", FAIL)], 50.0, completed_peers=1).kills] == ["a"]


def test_soft_pruning_is_off_unless_configured() -> None:
    weak = obs("weak", UNKNOWN, resource_health_score=0.36, changed_files=frozenset({"x"}))
    strong = obs("strong", PASS, changed_lines=1000)
    others = [obs("x1", UNKNOWN, changed_files=frozenset({"x"})), obs("x2", UNKNOWN, changed_files=frozenset({"x"}))]
    assert not CollapsePolicy(SETTINGS).evaluate([weak, strong, *others], 100.0).kills
    pruning = CollapsePolicy(CollapseSettings(warmup_secs=30, soft_prune=True, min_collapse_score=0.6))
    kills = pruning.evaluate([weak, strong, *others], 100.0).kills
    assert len(kills) == 1 and "low coherence" in kills[0].reason


def test_score_matches_the_seed_for_a_healthy_branch() -> None:
    tick = CollapsePolicy(SETTINGS).evaluate([obs("a", PASS)], 0.0)
    assert abs(tick.evaluations[0].score - (0.29 + 0.14 + 0.18 + 0.14 + 0.17)) < 1e-9
    assert tick.promoted == "a"


def test_conflict_risk() -> None:
    mine = frozenset({"a", "b"})
    assert conflict_risk(frozenset(), [mine]) == 0
    assert conflict_risk(mine, [frozenset({"a"})]) == 0.5
    assert conflict_risk(mine, [mine, mine]) == 1.0


health = st.sampled_from([PASS, FAIL, UNKNOWN])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(health, min_size=4, max_size=4), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=2),
    st.booleans(),
)
def test_invariants_on_random_histories(ticks: list[list[int]], completed: int, prune: bool) -> None:
    """Never every branch; never during the warm-up; a kill only after
    max_consecutive_failures FAILs in a row (or with soft pruning on); scores in [0, 1]."""
    sids = ["a", "b", "c", "d"]
    policy = CollapsePolicy(CollapseSettings(warmup_secs=30, soft_prune=prune))
    alive = set(sids)
    streak = dict.fromkeys(sids, 0)
    for i, row in enumerate(ticks):
        now = i * 5.0
        sample = [obs(s, row[j]) for j, s in enumerate(sids) if s in alive]
        if not sample:
            break
        for o in sample:
            if o.health == PASS:
                streak[o.subtask_id] = 0
            elif o.health == FAIL and now >= 30:
                streak[o.subtask_id] += 1
        tick = policy.evaluate(sample, now, completed_peers=completed)
        killed = {k.subtask_id for k in tick.kills}
        assert all(0.0 <= e.score <= 1.0 for e in tick.evaluations)
        if now < 30:
            assert not killed
        if completed == 0:
            assert killed != {o.subtask_id for o in sample}
        if not prune:
            assert all(streak[s] >= 3 for s in killed)
        assert tick.promoted is None or tick.promoted not in killed
        alive -= killed
