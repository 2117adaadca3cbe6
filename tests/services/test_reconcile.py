"""The branch says which subtasks finished: merges found there are not run again."""

from __future__ import annotations

from pathlib import Path

from swarmd.plugins.runtime.worktree import WorktreeManager
from swarmd.services.orchestrator.reconcile import merged_subtasks
from swarmd.services.orchestrator.resume import reconcile_with_branch
from swarmd.v1 import common_pb2 as c


async def merge_work(repo: Path, swarm_id: str, sid: str) -> str:
    manager = WorktreeManager(repo)
    wt = await manager.create(swarm_id, sid)
    (Path(wt.path) / f"{sid}.txt").write_text(f"work of {sid}\n")
    report = await manager.commit_and_merge(wt, f"{sid}: work")
    assert report.merge_commit
    return report.merge_commit


def state(sid: str, status: int, *deps: str) -> c.SubTaskState:
    return c.SubTaskState(
        subtask=c.SubTask(id=sid, instruction=f"do {sid}", dependencies=list(deps)),
        status=status,  # type: ignore[arg-type]
        agent_name=f"agent-{sid}",
    )


async def test_merges_on_the_branch_complete_their_subtasks(git_repo: Path) -> None:
    merge_a = await merge_work(git_repo, "sw1", "a")
    await merge_work(git_repo, "other", "b")  # another swarm's merge is not ours
    merge_c = await merge_work(git_repo, "sw1", "c")
    found = await merged_subtasks(str(git_repo), "sw1")
    assert {k: v.merge_commit for k, v in found.items()} == {"a": merge_a, "c": merge_c}

    swarm = c.Swarm(
        id="sw1",
        state=c.SWARM_STATE_INTERRUPTED,
        config=c.SwarmConfig(repo_path=str(git_repo), worktree_enabled=True, auto_merge=True),
        subtasks=[
            state("a", c.SUB_TASK_STATUS_RUNNING),
            state("b", c.SUB_TASK_STATUS_PENDING),
            state("c", c.SUB_TASK_STATUS_FAILED),  # e.g. its stream died after the merge
            state("d", c.SUB_TASK_STATUS_SKIPPED, "c"),
        ],
    )
    assert sorted(await reconcile_with_branch(swarm)) == ["a", "c"]
    by_id = {s.subtask.id: s for s in swarm.subtasks}
    for sid, merge in (("a", merge_a), ("c", merge_c)):
        assert by_id[sid].status == c.SUB_TASK_STATUS_COMPLETED
        assert by_id[sid].result.success and by_id[sid].result.merge.merge_commit == merge
    assert by_id["b"].status == c.SUB_TASK_STATUS_PENDING
    assert by_id["d"].status == c.SUB_TASK_STATUS_BLOCKED  # runs now that c completed


async def test_no_repository_no_reconciliation(tmp_path: Path) -> None:
    assert await merged_subtasks(str(tmp_path / "missing"), "sw") == {}
    assert await merged_subtasks(str(tmp_path), "sw") == {}


async def test_a_race_found_merged_settles_its_variants(git_repo: Path) -> None:
    await merge_work(git_repo, "sw1", "f.variant-2")
    raced = state("f", c.SUB_TASK_STATUS_RUNNING)
    raced.subtask.speculate = 3
    for n, status in ((1, c.SUB_TASK_STATUS_FAILED), (2, c.SUB_TASK_STATUS_RUNNING), (3, c.SUB_TASK_STATUS_RUNNING)):
        raced.variants.add(
            variant=n, subtask_id=f"f.variant-{n}", strategy=f"s{n}", branch=f"swarmd/sw1/f.variant-{n}",
            status=status, reason="the health checks failed" if n == 1 else "",  # type: ignore[arg-type]
        )
    swarm = c.Swarm(
        id="sw1",
        state=c.SWARM_STATE_INTERRUPTED,
        config=c.SwarmConfig(repo_path=str(git_repo), worktree_enabled=True, auto_merge=True),
        subtasks=[raced],
    )
    assert await reconcile_with_branch(swarm) == ["f"]
    found = swarm.subtasks[0]
    assert found.status == c.SUB_TASK_STATUS_COMPLETED
    first, winner, loser = found.variants
    assert winner.winner and winner.status == c.SUB_TASK_STATUS_COMPLETED and winner.commit == found.result.merge.commit
    # The race had been decided: the variant still running then lost, the one that had failed stays so.
    assert loser.status == c.SUB_TASK_STATUS_CANCELLED and loser.reason.startswith("speculative_loser: variant 2")
    assert first.status == c.SUB_TASK_STATUS_FAILED and first.reason == "the health checks failed" and not first.winner
