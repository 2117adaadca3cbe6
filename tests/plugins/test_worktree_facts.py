"""What each worktree manager asks of its repository once per process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import WorktreeManager, libgit
from swarmd.plugins.runtime.worktree.git import SPAWNED
from swarmd.plugins.runtime.worktree.libgit import Engine
from swarmd.plugins.runtime.worktree.model import NotAGitRepository

pytestmark = pytest.mark.timeout(60)


def _repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("a\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "seed")
    return path


async def test_managers_made_together_ask_git_for_the_top_level_once(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    (repo / "sub").mkdir()
    before = SPAWNED["rev-parse"]
    tops = await asyncio.gather(*(WorktreeManager(repo / "sub").toplevel() for _ in range(20)))
    assert set(tops) == {repo.resolve()}
    assert SPAWNED["rev-parse"] - before == 1
    await WorktreeManager(repo / "sub").toplevel()  # later managers: no process at all
    assert SPAWNED["rev-parse"] - before == 1


async def test_a_repository_that_went_away_is_asked_again(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    assert await WorktreeManager(repo).toplevel() == repo.resolve()
    git(repo, "init", "-q")  # still a repository: fine
    import shutil

    shutil.rmtree(repo / ".git")
    with pytest.raises(NotAGitRepository):
        await WorktreeManager(repo).toplevel()


async def test_a_folder_outside_any_repository_fails_every_waiting_manager(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    results = await asyncio.gather(*(WorktreeManager(plain).toplevel() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, NotAGitRepository) for r in results)


@pytest.mark.skipif(not libgit.available(), reason="pygit2 is not installed")
def test_the_engine_decision_follows_a_config_change(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    assert Engine(repo).usable()
    git(repo, "config", "filter.lfs.clean", "git-lfs clean -- %f")  # now a filter driver
    engine = Engine(repo)
    assert not engine.usable() and "filter driver" in engine.reason
    git(repo, "config", "--unset", "filter.lfs.clean")
    assert Engine(repo).usable()


@pytest.mark.skipif(not libgit.available(), reason="pygit2 is not installed")
async def test_the_file_list_libgit2_writes_is_git_s_own(tmp_path: Path) -> None:
    import os

    from swarmd.plugins.runtime.worktree import lazy

    repo = _repo(tmp_path / "repo")
    (repo / "a b").mkdir()
    (repo / "a b" / "c d.txt").write_text("x\n")
    (repo / "a-b.txt").write_text("sorts between 'a b/' and 'a/'\n")
    (repo / "a").mkdir()
    (repo / "a" / "z.sh").write_text("#!/bin/sh\n")
    os.chmod(repo / "a" / "z.sh", 0o755)
    os.symlink("a/z.sh", repo / "link")
    (repo / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shapes")
    head = git(repo, "rev-parse", "HEAD").strip()
    mgr = WorktreeManager(repo)
    await mgr.toplevel()
    mine = await lazy._files_of(mgr, head)
    mgr.git_engine = "cli"
    theirs = await lazy._files_of(mgr, head)
    assert mine == theirs and len(mine) == 6
