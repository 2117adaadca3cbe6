"""The CLI's rendering of speculative races: the event line, the subtask's
variants and the summary's counts."""

from __future__ import annotations

import io

import pytest

from swarmd.clients.cli.render import Progress, format_subtask, format_summary
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(30)


def test_the_decision_the_variants_and_the_counts_are_shown() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False)
    progress.handle(
        common_pb2.SwarmEvent(
            sequence=7,
            speculation_decided=common_pb2.SpeculationDecided(
                subtask_id="feature",
                winner_subtask_id="feature.variant-2",
                branch="swarmd/s/feature.variant-2",
                loser_subtask_ids=["feature.variant-1", "feature.variant-3"],
            ),
        )
    )
    line = out.getvalue()
    assert "#7 subtask feature: feature.variant-2 won the race (swarmd/s/feature.variant-2)" in line
    assert "cancelled: feature.variant-1, feature.variant-3" in line

    state = common_pb2.SubTaskState(
        subtask=common_pb2.SubTask(id="feature", speculate=2), status=common_pb2.SUB_TASK_STATUS_COMPLETED
    )
    state.variants.add(
        variant=1, strategy="minimal-change", model="openai/a", branch="swarmd/s/feature.variant-1",
        status=common_pb2.SUB_TASK_STATUS_CANCELLED, reason="speculative_loser: variant 2 (test-first) won",
    )
    state.variants.add(
        variant=2, strategy="test-first", model="openai/b", branch="swarmd/s/feature.variant-2",
        status=common_pb2.SUB_TASK_STATUS_COMPLETED, winner=True,
    )
    text = format_subtask(state, common_pb2.SWARM_STATE_SUCCEEDED)
    assert "Variant 1 (minimal-change, openai/a): cancelled on swarmd/s/feature.variant-1 - speculative_loser" in text
    assert "Variant 2 (test-first, openai/b): completed (won) on swarmd/s/feature.variant-2" in text

    swarm = common_pb2.Swarm(id="s", state=common_pb2.SWARM_STATE_SUCCEEDED)
    swarm.stats.collapse.kills = 1
    swarm.stats.collapse.speculative_wins = 1
    swarm.stats.collapse.speculative_losers = 2
    assert "1 kills, 0 promotions, 1 speculative wins (2 losers cancelled)" in format_summary(swarm)
