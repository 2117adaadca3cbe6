"""Merges landed in batches, worktrees made in parallel, results independent of finishing order."""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import Worktree, WorktreeManager
from swarmd.plugins.runtime.worktree.fastmerge import changes_between
from swarmd.plugins.runtime.worktree.timing import TIMINGS_ENV


@pytest.fixture
def timings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "timings.jsonl"
    monkeypatch.setenv(TIMINGS_ENV, str(path))
    return path


def records(path: Path, op: str) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["op"] == op]


async def work(mgr: WorktreeManager, name: str, files: dict[str, str]) -> tuple[Worktree, str]:
    wt = await mgr.create("s", name)
    for rel, text in files.items():
        (wt.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt.path / rel).write_text(text)
    sha = await mgr.commit(wt, f"{name} did its work")
    assert sha is not None
    return wt, sha


async def test_concurrent_merges_land_in_batches_each_with_its_own_merge_commit(
    git_repo: Path, timings: Path
) -> None:
    mgr = WorktreeManager(git_repo)
    (git_repo / "README.md").write_text("# the user's uncommitted edit\n")
    done = await asyncio.gather(
        *(work(mgr, f"t{i:02d}", {f"f{i}.txt": f"{i}\n"}) for i in range(20))
    )
    reports = await asyncio.gather(*(mgr.merge(wt, sha) for wt, sha in done))
    assert [r.outcome for r in reports] == ["merged"] * 20
    assert all(r.worktree_path is None for r in reports)
    for i in range(20):
        assert (git_repo / f"f{i}.txt").read_text() == f"{i}\n"
    assert (git_repo / "README.md").read_text() == "# the user's uncommitted edit\n"
    # One merge commit per sub-agent on the first-parent line, each with two parents.
    firsts = git(git_repo, "log", "--first-parent", "--format=%P", "-20").splitlines()
    assert all(len(parents.split()) == 2 for parents in firsts)
    assert {r.merge_commit for r in reports} == set(
        git(git_repo, "log", "--first-parent", "--format=%H", "-20").split()
    )
    # Fewer moves of the user's branch than merges: they came in batches.
    moves = git(git_repo, "reflog", "--format=%gs", "main").splitlines()
    swarmd_moves = [m for m in moves if m.startswith("swarmd: merge")]
    assert 1 <= len(swarmd_moves) < 20
    assert max(r["batch"] for r in records(timings, "merge")) > 1
    assert git(git_repo, "status", "--porcelain") == " M README.md\n"
    assert await mgr.list() == []


async def test_a_conflict_in_a_batch_fails_only_that_subtask(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    done = [await work(mgr, f"ok{i}", {f"ok{i}.txt": "x\n"}) for i in range(3)]
    done.append(await work(mgr, "a", {"shared.txt": "from a\n"}))
    done.append(await work(mgr, "b", {"shared.txt": "from b\n"}))
    reports = await asyncio.gather(*(mgr.merge(wt, sha) for wt, sha in done))
    outcomes = {wt.subtask_id: r for (wt, _), r in zip(done, reports, strict=True)}
    assert [outcomes[f"ok{i}"].outcome for i in range(3)] == ["merged"] * 3
    # Whichever of a and b lands first wins; the other conflicts and keeps all its work.
    (winner, _), (loser_wt, l_sha) = (
        (done[3], done[4]) if outcomes["a"].outcome == "merged" else (done[4], done[3])
    )
    assert outcomes[winner.subtask_id].outcome == "merged"
    loser = outcomes[loser_wt.subtask_id]
    assert loser.outcome == "conflicted" and [c.path for c in loser.conflicts] == ["shared.txt"]
    assert "<<<<<<<" in loser.conflicts[0].diff
    assert git(git_repo, "rev-parse", loser_wt.branch).strip() == l_sha
    assert loser.worktree_path is not None and (loser.worktree_path / "shared.txt").exists()
    assert (git_repo / "shared.txt").read_text() == f"from {winner.subtask_id}\n"


async def test_a_batch_refused_by_the_users_edits_fails_only_the_overlapping_one(
    git_repo: Path,
) -> None:
    mgr = WorktreeManager(git_repo)
    (git_repo / "README.md").write_text("the user's edit\n")
    done = [await work(mgr, f"t{i}", {f"t{i}.txt": "x\n"}) for i in range(3)]
    done.append(await work(mgr, "readme", {"README.md": "the agent's edit\n"}))
    reports = await asyncio.gather(*(mgr.merge(wt, sha) for wt, sha in done))
    assert [r.outcome for r in reports[:3]] == ["merged"] * 3
    assert reports[3].outcome == "failed" and "README.md" in reports[3].summary
    assert (git_repo / "README.md").read_text() == "the user's edit\n"
    assert git(git_repo, "rev-parse", done[3][0].branch).strip() == done[3][1]


async def test_many_worktrees_are_created_at_once(git_repo: Path, timings: Path) -> None:
    mgr = WorktreeManager(git_repo)
    wts = await asyncio.gather(*(mgr.create("s", f"c{i:02d}") for i in range(30)))
    assert len({wt.path for wt in wts}) == 30
    for wt in wts:
        assert (wt.path / "README.md").read_text() == "# demo\n"
    listed = await mgr.list()
    assert len(listed) == 30 and all(st.in_use for st in listed)
    assert len(records(timings, "create")) == 30
    # A second create of a slot whose worktree is live makes a new attempt.
    again = await mgr.create("s", "c00")
    assert again.attempt == 2 and again.branch == "swarmd/s/c00@2"


async def test_a_dependent_starts_from_unmerged_parents(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    base = await mgr.head_commit()
    (a, a_sha), (b, b_sha) = await asyncio.gather(
        work(mgr, "a", {"a.txt": "a\n"}), work(mgr, "b", {"b.txt": "b\n"})
    )
    # Neither parent is merged yet: the dependent's base is built from their commits.
    c = await mgr.create("s", "c", base, [a_sha, b_sha])
    assert (c.path / "a.txt").exists() and (c.path / "b.txt").exists()
    assert git(git_repo, "rev-parse", "HEAD").strip() == base
    (c.path / "c.txt").write_text("c\n")
    c_sha = await mgr.commit(c)
    reports = await asyncio.gather(mgr.merge(c, c_sha), mgr.merge(a, a_sha), mgr.merge(b, b_sha))
    assert [r.outcome for r in reports] == ["merged"] * 3
    assert {p.name for p in git_repo.glob("?.txt")} == {"a.txt", "b.txt", "c.txt"}


SECTIONS = "".join(f"section {i}\n" + "filler\n" * 6 for i in range(8))


async def _final_tree(repo: Path, order: list[int], concurrent: bool) -> str:
    """Eight sub-agents: each adds a file, and edits its own section of one shared file."""
    mgr = WorktreeManager(repo)
    base = await mgr.head_commit()
    done = {}
    for i in range(8):
        wt = await mgr.create("s", f"t{i}", base)
        (wt.path / f"f{i}.txt").write_text(f"{i}\n")
        shared = wt.path / "shared.txt"
        shared.write_text(shared.read_text().replace(f"section {i}\n", f"section {i} done\n"))
        done[i] = (wt, await mgr.commit(wt))
    if concurrent:
        reports = await asyncio.gather(*(mgr.merge(*done[i]) for i in order))
    else:
        reports = [await mgr.merge(*done[i]) for i in order]
    assert [r.outcome for r in reports] == ["merged"] * 8, [r.summary for r in reports]
    return git(repo, "rev-parse", "HEAD^{tree}").strip()


async def test_the_result_does_not_depend_on_finishing_order(tmp_path: Path) -> None:
    trees = set()
    orders = [
        (list(range(8)), False),
        (list(reversed(range(8))), False),
        (random.Random(7).sample(range(8), 8), True),
        (list(reversed(range(8))), True),
    ]
    for n, (order, concurrent) in enumerate(orders):
        repo = tmp_path / f"r{n}"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        (repo / "shared.txt").write_text(SECTIONS)
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "init")
        trees.add(await _final_tree(repo, order, concurrent))
    assert len(trees) == 1


@pytest.mark.parametrize("patch_first", [False, True], ids=["files-from-diff-tree", "files-from-the-patch"])
async def test_the_one_process_path_builds_what_merge_tree_builds(git_repo: Path, patch_first: bool) -> None:
    (git_repo / "old.txt").write_text("old\n")
    (git_repo / "tool.sh").write_text("#!/bin/sh\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "more")
    mgr = WorktreeManager(git_repo)
    odd = 'we"ird\\ name\twith tab.txt'
    a = await mgr.create("s", "a")
    (a.path / "deep" / "er").mkdir(parents=True)
    (a.path / "deep" / "er" / "file.txt").write_text("a\n")
    (a.path / "old.txt").unlink()
    b = await mgr.create("s", "b")
    (b.path / odd).write_text("b\n")
    (b.path / "tool.sh").chmod(0o755)
    (b.path / "link").symlink_to("tool.sh")
    a_sha, b_sha = await mgr.commit(a), await mgr.commit(b)
    assert a_sha is not None and b_sha is not None
    if patch_first:  # as the executor does: the patch's raw part lists the files for the merge
        for wt, sha in ((a, a_sha), (b, b_sha)):
            patch = await mgr.diff_against_base(wt, sha)
            assert patch.startswith(b"diff --git ")
            listed = mgr._changes[(wt.base_commit, sha)]
            mgr._changes.clear()
            assert listed == await changes_between(mgr, wt.base_commit, sha)
            mgr._changes[(wt.base_commit, sha)] = listed
    # What git's own merges give, computed aside.
    expected = git(git_repo, "merge-tree", "--write-tree", a_sha, b_sha).split()[0]
    reports = await asyncio.gather(mgr.merge(a, a_sha), mgr.merge(b, b_sha))
    assert [r.outcome for r in reports] == ["merged"] * 2
    assert git(git_repo, "rev-parse", "HEAD^{tree}").strip() == expected
    assert (git_repo / odd).read_text() == "b\n" and not (git_repo / "old.txt").exists()
    assert os.access(git_repo / "tool.sh", os.X_OK) and (git_repo / "link").is_symlink()
    assert git(git_repo, "status", "--porcelain") == ""


async def test_a_file_where_another_merge_made_a_folder_conflicts(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    folder, as_file = (
        await work(mgr, "a", {"x/y.txt": "in a folder\n"}),
        await work(mgr, "b", {"x": "a file\n"}),
    )
    reports = await asyncio.gather(mgr.merge(*folder), mgr.merge(*as_file))
    assert sorted(r.outcome for r in reports) == ["conflicted", "merged"]
    loser = next(r for r in reports if r.outcome == "conflicted")
    assert git(git_repo, "rev-parse", loser.branch).strip() == loser.commit


async def test_commit_and_merge_cost_few_git_processes_per_sub_agent(git_repo: Path) -> None:
    """Counted, not timed: six git processes a sub-agent to commit, two to merge, plus a few a batch."""
    from swarmd.plugins.runtime.worktree.git import SPAWNED

    mgr = WorktreeManager(git_repo)
    made = [await mgr.create("s", f"c{i:02d}") for i in range(20)]
    for i, wt in enumerate(made):
        (wt.path / f"c{i}.txt").write_text(f"{i}\n")
    SPAWNED.clear()

    async def commit(wt: Worktree) -> str:
        sha = await mgr.commit(wt, "work")
        assert sha is not None
        assert f"{wt.subtask_id}.txt".replace("c0", "c", 1).encode() in await mgr.diff_against_base(wt, sha)
        return sha

    shas = await asyncio.gather(*(commit(wt) for wt in made))
    # add, rev-parse, write-tree, commit-tree, update-ref; the patch's diff-tree.
    assert sum(SPAWNED.values()) <= 6 * 20, dict(SPAWNED)
    SPAWNED.clear()
    reports = await asyncio.gather(*(mgr.merge(wt, sha) for wt, sha in zip(made, shas, strict=True)))
    assert [r.outcome for r in reports] == ["merged"] * 20
    batches = [m for m in git(git_repo, "reflog", "--format=%gs", "main").splitlines() if "swarmd: merge" in m]
    # Per sub-agent: the status check before its worktree goes (the patch listed its
    # files, commit() left its tip); per batch: planning, moving the checkout and
    # branch, and one transaction deleting the batch's refs.
    assert sum(SPAWNED.values()) <= 1 * 20 + 16 * len(batches), (dict(SPAWNED), len(batches))
    assert not git(git_repo, "for-each-ref", "refs/heads/swarmd/", "refs/swarmd/bases/").strip()
    assert not any((git_repo / ".swarmd" / "worktrees" / "s").glob("c*"))


async def test_a_worktree_is_made_while_git_removes_the_emptied_worktrees_folder(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dependent starts while its parent's worktree is removed: git then deletes the
    emptied ``.git/worktrees`` between our making it and renaming the new entry in."""
    import swarmd.plugins.runtime.worktree.manager as manager

    mgr = WorktreeManager(git_repo)
    first, first_sha = await work(mgr, "parent", {"p.txt": "p\n"})
    assert (await mgr.merge(first, first_sha)).outcome == "merged"
    real_mkdtemp = manager.tempfile.mkdtemp
    removed: list[Path] = []

    def mkdtemp_while_git_prunes(*args: object, **kwargs: object) -> str:
        root = git_repo / ".git" / "worktrees"
        if not removed and root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # what `git worktree remove` does to an emptied folder
            removed.append(root)
        return real_mkdtemp(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(manager.tempfile, "mkdtemp", mkdtemp_while_git_prunes)
    wt, sha = await work(mgr, "child", {"c.txt": "c\n"})
    assert removed, "the folder was removed under the creation"
    assert wt.path.name == "child"
    assert (await mgr.merge(wt, sha)).outcome == "merged"
    assert (git_repo / "c.txt").read_text() == "c\n"


async def test_the_promoted_branch_merges_first_in_its_batch(git_repo: Path) -> None:
    """Among branches landing in one batch, the swarm's promoted one lands first and wins
    a conflict with the others; without a promotion the fixed order decides."""
    from swarmd.plugins.runtime.worktree import integrate, priority
    from swarmd.plugins.runtime.worktree.model import MergeOutcome, MergeReport

    mgr = WorktreeManager(git_repo)
    await mgr.toplevel()

    async def land_together(swarm: str) -> dict[str, str]:
        requests = []
        for name in ("a", "b", "c"):
            wt = await mgr.create(swarm, name)
            (wt.path / "shared.txt").write_text(f"{swarm}: from {name}\n")
            sha = await mgr.commit(wt, name)
            assert sha is not None
            report = MergeReport(MergeOutcome.NO_CHANGES, branch=wt.branch, commit=sha, worktree_path=wt.path)
            changes = await changes_between(mgr, wt.base_commit, sha)
            requests.append(integrate._Request(wt, sha, name, report, changes))
        lander = integrate._integrator(mgr)
        # Queued in one loop step, so they land in one batch.
        reports = await asyncio.gather(*(lander.submit(r) for r in requests))
        assert {r.batch_size for r in requests} == {3}
        return {r.wt.subtask_id: str(rep.outcome) for r, rep in zip(requests, reports, strict=True)}

    assert (await land_together("plain")) == {"a": "merged", "b": "conflicted", "c": "conflicted"}
    priority.promote("promoting", "c")
    try:
        assert (await land_together("promoting")) == {"a": "conflicted", "b": "conflicted", "c": "merged"}
    finally:
        priority.forget("promoting")
    assert (git_repo / "shared.txt").read_text() == "promoting: from c\n"
