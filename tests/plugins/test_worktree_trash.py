"""Removed worktrees leave at once through the trash and are deleted later, never with work in them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import committed_work, git

from swarmd.plugins.runtime.worktree import WorktreeManager, trash
from swarmd.plugins.runtime.worktree.model import TRASH_DIR

pytestmark = pytest.mark.timeout(60)


def _listed(repo: Path) -> set[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return {line.removeprefix("worktree ") for line in out.splitlines() if line.startswith("worktree ")}


async def test_a_merged_worktree_leaves_at_once_and_its_files_are_deleted_later(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[Path] = []
    monkeypatch.setattr(trash, "_reap", lambda *paths: held.extend(paths))
    mgr = WorktreeManager(git_repo)
    done = await asyncio.gather(*(committed_work(mgr, f"t{i}") for i in range(4)))
    reports = await asyncio.gather(*(mgr.merge(wt, sha) for wt, sha in done))
    assert [r.outcome for r in reports] == ["merged"] * 4
    assert all(r.worktree_path is None for r in reports)
    # Gone for git and from its path before a file of it is deleted.
    assert _listed(git_repo) == {str(git_repo)}
    assert not list((git_repo / ".git" / "worktrees").glob("t*"))
    for wt, _ in done:
        assert not wt.path.exists()
    bin_ = git_repo / TRASH_DIR
    folders = sorted(p for p in held if not p.name.endswith(".admin"))
    assert len(folders) == 4 and all(p.parent == bin_ for p in folders)
    assert {f.name for p in folders for f in p.iterdir()} >= {f"t{i}.txt" for i in range(4)}
    assert all(p.with_name(p.name + ".admin").is_dir() for p in folders)
    # The slot is free at once: the same subtask gets its worktree back under its own name.
    again = await mgr.create("s", "t0")
    assert again.path == done[0][0].path and again.path.is_dir()
    monkeypatch.undo()
    trash._reap(*held)
    assert await asyncio.to_thread(trash.wait_empty, 30)
    assert list(bin_.iterdir()) == []
    assert git(git_repo, "status", "--porcelain") == ""


async def test_leftovers_of_a_process_that_died_are_deleted_by_the_next_removal_and_by_prune(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_ = git_repo / TRASH_DIR

    def leave(name: str) -> Path:
        left = bin_ / name / "deep" / "er"
        left.mkdir(parents=True)
        (left / "file.txt").write_text("left behind\n")
        (bin_ / f"{name}.admin").mkdir()
        return bin_ / name

    mgr = WorktreeManager(git_repo)
    monkeypatch.setattr(trash, "_swept", set())  # a fresh process
    leave("old-1")
    wt, sha = await committed_work(mgr, "a")
    assert (await mgr.merge(wt, sha)).outcome == "merged"
    assert await asyncio.to_thread(trash.wait_empty, 30)
    assert list(bin_.iterdir()) == []
    leave("old-2")
    await mgr.prune()
    assert await asyncio.to_thread(trash.wait_empty, 30)
    assert list(bin_.iterdir()) == []


async def test_where_the_trash_cannot_be_made_the_files_are_deleted_in_place(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    wt, sha = await committed_work(mgr, "a")
    (git_repo / TRASH_DIR).parent.mkdir(exist_ok=True)
    (git_repo / TRASH_DIR).write_text("not a folder\n")
    report = await mgr.merge(wt, sha)
    assert report.outcome == "merged" and report.worktree_path is None
    assert not wt.path.exists()
    assert _listed(git_repo) == {str(git_repo)}
    assert (git_repo / TRASH_DIR).read_text() == "not a folder\n"


async def test_a_worktree_with_changes_after_its_commit_never_goes_to_the_trash(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    wt, sha = await committed_work(mgr, "a")
    (wt.path / "late.txt").write_text("written after the commit\n")
    report = await mgr.merge(wt, sha)
    assert report.outcome == "merged"
    assert report.worktree_path == wt.path
    assert (wt.path / "late.txt").read_text() == "written after the commit\n"
    assert not (git_repo / TRASH_DIR).exists() or list((git_repo / TRASH_DIR).iterdir()) == []


async def test_worktrees_that_changed_nothing_leave_as_merged_ones_do(git_repo: Path) -> None:
    from swarmd.plugins.runtime.worktree.git import SPAWNED

    mgr = WorktreeManager(git_repo)
    made = await asyncio.gather(*(mgr.create("s", f"idle{i}") for i in range(6)))
    (made[0].path / "left.txt").write_text("not committed\n")  # git ignores nothing here: it is work
    commits = await asyncio.gather(*(mgr.commit(wt) for wt in made[1:]))
    assert commits == [None] * 5
    SPAWNED.clear()
    reports = await asyncio.gather(*(mgr.merge(wt, None) for wt in made[1:]))
    assert [r.outcome for r in reports] == ["no_changes"] * 5
    assert all(r.worktree_path is None for r in reports)
    # No git worktree list / remove per subtask, no branch left, nothing for git to prune.
    assert SPAWNED["worktree"] == 0 and SPAWNED["branch"] == 0, dict(SPAWNED)
    assert _listed(git_repo) == {str(git_repo)} | {str(made[0].path)}
    assert git(git_repo, "for-each-ref", "--format=%(refname)", "refs/heads/swarmd", "refs/swarmd/bases").split() == [
        f"refs/heads/{made[0].branch}",
        f"refs/swarmd/bases/s/{made[0].subtask_id}",
    ]
    # One with a file it did not commit is kept, and says why.
    kept = await mgr.merge(made[0], None)
    assert kept.outcome == "no_changes" and kept.worktree_path == made[0].path
    assert "uncommitted changes" in kept.summary
    assert (made[0].path / "left.txt").read_text() == "not committed\n"


def test_a_sweep_leaves_alone_what_a_removal_beside_it_is_moving_into_the_trash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first removal of a process sweeps leftovers while others move their worktrees
    in: each entry is queued once, by whoever put it there."""
    queued: list[Path] = []
    monkeypatch.setattr(trash, "_reap", lambda *paths: queued.extend(paths))
    monkeypatch.setattr(trash, "_swept", set())
    monkeypatch.setattr(trash, "_mine", set())
    top = tmp_path / "repo"
    bin_ = top / TRASH_DIR
    (bin_ / "left-by-a-dead-process").mkdir(parents=True)
    worktrees = []
    for name in ("a", "b"):
        (top / name).mkdir()
        (top / name / "f.txt").write_text(name)
        (top / f"{name}.admin").mkdir()
        worktrees.append(name)
    # "b" is being discarded by another thread: claimed, not yet renamed when the sweep lists.
    real_sweep = trash.sweep

    def sweep_while_b_moves_in(where: Path) -> int:
        assert trash.discard(top, top / "b", top / "b.admin")
        return real_sweep(where)

    monkeypatch.setattr(trash, "sweep", sweep_while_b_moves_in)
    assert trash.discard(top, top / "a", top / "a.admin")
    names = sorted(p.name for p in queued)
    assert len(names) == len(set(names)) == 5, names
    assert "left-by-a-dead-process" in names
    assert sorted(p.name.split("-")[0] for p in queued if p.name != "left-by-a-dead-process") == ["a", "a", "b", "b"]
