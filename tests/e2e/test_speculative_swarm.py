"""Speculative variants in a real swarm: embedded services, a real git
repository, the fake model server, a ``command`` health check.

Three variants of one subtask write ``answer.txt``; the check passes only
when it holds ``42``. The variant that writes 42 finishes at once; the
others keep working (one slow listing per model call) until the race is
decided, so the test does not depend on how fast the machine is: the
passing variant wins and merges, the others are cancelled as losers with
their branches kept, and a dependent starts from the winner's commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import AgentTurn, FakeOpenAIServer, Reply, agent_responder
from helpers import git

from swarmd.clients.client import SwarmdClient
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings
from swarmd.services.orchestrator.reconcile import merged_subtasks
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)

TURN_DELAY = 0.05
_ID = re.compile(r"\(ID: ([^)\s]+)\)")
MAX_TURNS = 400

#: Passes only in a worktree whose answer.txt has a line "42".
CHECK = common_pb2.CollapseConfig(
    enabled=True,
    checks=[common_pb2.HealthCheckSpec(name="command", options={"command": "grep -qx 42 answer.txt"})],
    interval_ms=200,
    warmup_ms=600_000,  # the controller judges the dependent only; it never kills here
    check_timeout_ms=20_000,
)


def agents(
    answers: dict[str, str], released: Callable[[], bool], linger: Collection[str], passing_may_finish: Callable[[], bool]
) -> Callable[[Any], Reply]:
    """Variant ``feature.variant-<n>`` writes ``answers[n]`` to answer.txt; one
    that writes 42 finishes once ``passing_may_finish()``, the others in
    ``linger`` list the folder until ``released()``, the rest finish at once.
    The dependent ``after`` reads answer.txt and copies it to after.txt."""

    def act(turn: AgentTurn) -> list[tuple[str, Any]] | None:
        if turn.subtask_id == "after":
            if turn.turn == 1:
                return [("read", {"path": "answer.txt"})]
            if turn.turn == 2:
                seen = "42" if "42" in turn.tool_results[0] else "not 42"
                return [("write", {"path": "after.txt", "content": f"{seen}\n"})]
            return None
        number = turn.subtask_id.rsplit("-", 1)[-1]
        answer = answers[number]
        if turn.turn == 1:
            return [("write", {"path": "answer.txt", "content": f"{answer}\n"})]
        if turn.turn > MAX_TURNS or (answer == "42" and passing_may_finish()):
            return None
        if answer != "42" and (number not in linger or released()):
            return None
        return [("list", {"path": "."})]

    respond = agent_responder(act)
    return lambda body: dataclasses.replace(respond(body), delay=TURN_DELAY)


async def run_swarm(
    tmp_path: Path,
    repo: Path,
    plan: common_pb2.Plan,
    answers: dict[str, str],
    *,
    linger: Collection[str] = ("1", "2", "3"),
    cancel_after_steps: int = 0,
    models: Sequence[str] = (),
    pass_after_variant_1: bool = False,
) -> tuple[common_pb2.Swarm, list[common_pb2.SwarmEvent], set[tuple[str, str]]]:
    """Run the swarm to its end; with ``cancel_after_steps``, cancel the
    speculative subtask once every variant has made that many steps. Also
    returns the (model, subtask id) pairs the model server was asked for.
    With ``pass_after_variant_1`` the passing variant finishes only once
    variant 1 has ended."""
    released = False
    first_done = False
    cancelling: list[asyncio.Task[Any]] = []
    async with FakeOpenAIServer() as server:
        server.fallback = agents(answers, lambda: released, linger, lambda: first_done or not pass_after_variant_1)
        settings = Settings()
        settings.executor.options = {"provider.base_url": server.base_url, "provider.api_key": "test-key"}
        async with EmbeddedSwarmd(settings, db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(
            emb.orchestrator_address
        ) as client:
            reply = await client.submit(
                task="Answer",
                plan=plan,
                config=common_pb2.SwarmConfig(
                    model="openai/fake-model",
                    repo_path=str(repo),
                    request_delay_ms=0,
                    cache_enabled=False,
                    max_retries=0,
                    max_steps_per_subagent=MAX_TURNS + 5,
                    collapse=CHECK,
                    speculate_models=models,
                ),
            )
            events: list[common_pb2.SwarmEvent] = []
            async for event in client.watch(reply.swarm.id):
                events.append(event)
                if event.WhichOneof("kind") == "speculation_decided":
                    released = True
                if event.WhichOneof("kind") == "agent_complete" and event.agent_complete.subtask_id == "feature.variant-1":
                    first_done = True
                steps = Counter(e.agent_step.subtask_id for e in events if e.WhichOneof("kind") == "agent_step")
                variants = [steps[f"feature.variant-{n}"] for n in (1, 2, 3)]
                if cancel_after_steps and not cancelling and min(variants) >= cancel_after_steps:
                    cancelling.append(
                        asyncio.ensure_future(client.cancel_subtask(reply.swarm.id, "feature", "enough of it"))
                    )
            await asyncio.gather(*cancelling)
            swarm = await client.get(reply.swarm.id)
        asked = {(r.json["model"], _ID.search(r.json["messages"][0]["content"]).group(1)) for r in server.requests}  # type: ignore[union-attr]
    return swarm, events, asked


def speculative_plan(*, dependent: bool) -> common_pb2.Plan:
    plan = common_pb2.Plan(
        subtasks=[common_pb2.SubTask(id="feature", instruction="Write the answer to answer.txt.", speculate=3)]
    )
    if dependent:
        plan.subtasks.add(id="after", instruction="Copy the answer to after.txt.", dependencies=["feature"])
    return plan


async def test_the_variant_whose_build_passes_wins_merges_and_its_dependent_starts_from_it(
    tmp_path: Path, git_repo: Path
) -> None:
    models = ("openai/fake-model", "openai/fake-model-b")
    swarm, events, asked = await asyncio.wait_for(
        run_swarm(
            tmp_path, git_repo, speculative_plan(dependent=True), {"1": "41", "2": "42", "3": "43"}, models=models
        ),
        110,
    )
    states = {s.subtask.id: s for s in swarm.subtasks}
    feature = states["feature"]
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, [(s.subtask.id, s.status_reason) for s in swarm.subtasks]
    assert feature.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    variants = {v.variant: v for v in feature.variants}
    assert [v.subtask_id for v in feature.variants] == [f"feature.variant-{n}" for n in (1, 2, 3)]
    assert len({v.strategy for v in feature.variants}) == 3
    # The variants run the models in turn; the others run the swarm's.
    assert [v.model for v in feature.variants] == [models[0], models[1], models[0]]
    asked_for = {m: {f"openai/{model}" for model, sid in asked if sid == m} for m in ("feature.variant-2", "after")}
    assert {f"openai/{model}" for model, sid in asked if sid.startswith("feature.")} == set(models)
    assert asked_for == {"feature.variant-2": {models[1]}, "after": {"openai/fake-model"}}
    winner = variants[2]
    assert winner.winner and winner.status == common_pb2.SUB_TASK_STATUS_COMPLETED
    for n in (1, 3):
        loser = variants[n]
        assert not loser.winner
        assert loser.status == common_pb2.SUB_TASK_STATUS_CANCELLED, loser.reason
        assert loser.reason.startswith("speculative_loser"), loser.reason
        # Their branches are kept, with their (unmerged) work.
        assert git(git_repo, "branch", "--list", loser.branch).strip(), loser.branch
    # Only the winner merged; the user's branch holds its answer.
    assert (git_repo / "answer.txt").read_text() == "42\n"
    assert feature.result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
    log = git(git_repo, "log", "--format=%B", "main")
    assert "feature.variant-2" in log and "feature.variant-1" not in log and "feature.variant-3" not in log
    # The dependent saw the winner's work in its own worktree.
    assert states["after"].status == common_pb2.SUB_TASK_STATUS_COMPLETED
    assert (git_repo / "after.txt").read_text() == "42\n"
    decided = [e.speculation_decided for e in events if e.WhichOneof("kind") == "speculation_decided"]
    assert [(d.subtask_id, d.winner_subtask_id) for d in decided] == [("feature", "feature.variant-2")]
    assert set(decided[0].loser_subtask_ids) == {"feature.variant-1", "feature.variant-3"}
    stats = swarm.stats.collapse
    assert (stats.speculative_wins, stats.speculative_losers) == (1, 2)
    assert swarm.stats.subagents_spawned == 4  # three variants and the dependent
    # The subtask's figures add up every variant's, not the winner's alone.
    steps = Counter(e.agent_step.subtask_id for e in events if e.WhichOneof("kind") == "agent_step")
    assert feature.result.steps >= sum(n for sid, n in steps.items() if sid.startswith("feature.variant-"))
    assert feature.result.steps > steps["feature.variant-2"] > 0
    assert feature.result.usage.total_tokens >= 15 * sum(n for sid, n in steps.items() if sid.startswith("feature."))
    # A resumed swarm finds the subtask merged (as its winning variant), so it is not raced again.
    merged = await merged_subtasks(str(git_repo), swarm.id)
    assert merged["feature"].merge_commit == merged["feature.variant-2"].merge_commit
    assert merged["feature"].merge_commit == feature.result.merge.merge_commit
    # The losers are reported cancelled, never failed.
    updates = [e.subtask_update for e in events if e.WhichOneof("kind") == "subtask_update"]
    assert not [u for u in updates if u.status == common_pb2.SUB_TASK_STATUS_FAILED]


async def test_when_every_variant_fails_its_checks_the_subtask_fails_with_their_errors(
    tmp_path: Path, git_repo: Path
) -> None:
    swarm, events, _ = await asyncio.wait_for(
        run_swarm(tmp_path, git_repo, speculative_plan(dependent=True), {"1": "41", "2": "40", "3": "43"}, linger=()), 110
    )
    states = {s.subtask.id: s for s in swarm.subtasks}
    feature = states["feature"]
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert feature.status == common_pb2.SUB_TASK_STATUS_FAILED
    assert feature.status_reason.startswith("every variant failed")
    for n in (1, 2, 3):
        assert f"variant {n} (" in feature.status_reason
    assert all(v.status == common_pb2.SUB_TASK_STATUS_FAILED for v in feature.variants), feature.variants
    assert all("health checks failed" in v.reason for v in feature.variants), [v.reason for v in feature.variants]
    assert not any(v.winner for v in feature.variants)
    # Nothing merged; every variant's work is kept on its branch.
    assert not (git_repo / "answer.txt").exists()
    for variant in feature.variants:
        assert git(git_repo, "branch", "--list", variant.branch).strip()
    assert states["after"].status == common_pb2.SUB_TASK_STATUS_SKIPPED
    assert not [e for e in events if e.WhichOneof("kind") == "speculation_decided"]
    assert not swarm.stats.collapse.speculative_wins


async def test_cancelling_a_speculative_subtask_stops_every_variant_and_keeps_their_branches(
    tmp_path: Path, git_repo: Path
) -> None:
    swarm, _, _ = await asyncio.wait_for(
        run_swarm(
            tmp_path, git_repo, speculative_plan(dependent=False), {"1": "41", "2": "40", "3": "43"}, cancel_after_steps=2
        ),
        110,
    )
    feature = swarm.subtasks[0]
    assert swarm.state == common_pb2.SWARM_STATE_FAILED
    assert feature.status == common_pb2.SUB_TASK_STATUS_CANCELLED
    assert "enough of it" in feature.status_reason
    assert [v.status for v in feature.variants] == [common_pb2.SUB_TASK_STATUS_CANCELLED] * 3
    assert all("enough of it" in v.reason and not v.winner for v in feature.variants), feature.variants
    for variant in feature.variants:
        assert git(git_repo, "branch", "--list", variant.branch).strip()
    assert not (git_repo / "answer.txt").exists()
    # Cancelled by the user, not lost to another variant.
    assert not swarm.stats.collapse.speculative_losers and not swarm.stats.collapse.speculative_wins


async def test_finishing_first_does_not_win_passing_the_checks_does(tmp_path: Path, git_repo: Path) -> None:
    # Variant 1 finishes at once with a failing build; variant 3 is still working
    # when variant 2 passes: 1 failed on its own, 2 wins, only 3 is a loser.
    swarm, _, _ = await asyncio.wait_for(
        run_swarm(
            tmp_path, git_repo, speculative_plan(dependent=False), {"1": "41", "2": "42", "3": "43"}, linger=("3",), pass_after_variant_1=True
        ),
        110,
    )
    feature = swarm.subtasks[0]
    assert feature.status == common_pb2.SUB_TASK_STATUS_COMPLETED, feature.status_reason
    first, winner, loser = feature.variants
    assert first.status == common_pb2.SUB_TASK_STATUS_FAILED and "health checks failed" in first.reason, feature
    assert winner.winner and winner.status == common_pb2.SUB_TASK_STATUS_COMPLETED, feature
    assert loser.status == common_pb2.SUB_TASK_STATUS_CANCELLED and loser.reason.startswith("speculative_loser"), feature
    assert (git_repo / "answer.txt").read_text() == "42\n"
    assert (swarm.stats.collapse.speculative_wins, swarm.stats.collapse.speculative_losers) == (1, 1), swarm.stats
