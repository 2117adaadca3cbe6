"""A dependent's base: its dependencies' commits merged in process when that is
simple, by git otherwise, to the same commit either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import WorktreeManager, libgit, manager
from swarmd.plugins.runtime.worktree.git import SPAWNED
from swarmd.plugins.runtime.worktree.model import DependencyConflict

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not libgit.available(), reason="pygit2 is not installed"),
]


def _commit_on(repo: Path, base: str, files: dict[str, str | None], name: str) -> str:
    """A commit on top of ``base`` changing ``files`` (None deletes), made with plumbing."""
    git(repo, "checkout", "-q", "--detach", base)
    for path, text in files.items():
        if text is None:
            git(repo, "rm", "-q", path)
        else:
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
            git(repo, "add", path)
    git(repo, "commit", "-q", "-m", name)
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    return sha


async def _start(repo: Path, engine: str, deps: list[str], subtask: str) -> str:
    manager._BASES.clear()
    mgr = WorktreeManager(repo)
    mgr.git_engine = engine
    wt = await mgr.create("s", subtask, None, deps)
    return wt.base_commit


async def test_disjoint_dependencies_merge_in_process_to_the_commit_git_makes(git_repo: Path) -> None:
    base = git(git_repo, "rev-parse", "HEAD").strip()
    a = _commit_on(git_repo, base, {"a/one.txt": "one\n"}, "a")
    b = _commit_on(git_repo, base, {"b/two.txt": "two\n", "README.md": "changed by b\n"}, "b")
    c = _commit_on(git_repo, base, {"c.txt": "c\n"}, "c")
    before = SPAWNED["merge-tree"] + SPAWNED["commit-tree"] + SPAWNED["merge-base"]
    fast = await _start(git_repo, "auto", [a, b, c], "fast")
    assert SPAWNED["merge-tree"] + SPAWNED["commit-tree"] + SPAWNED["merge-base"] == before
    slow = await _start(git_repo, "cli", [a, b, c], "slow")
    assert fast == slow  # byte for byte the same commit
    listed = git(git_repo, "ls-tree", "-r", "--name-only", fast).split()
    assert {"a/one.txt", "b/two.txt", "c.txt"} <= set(listed)


async def test_a_dependency_contained_in_another_adds_no_merge(git_repo: Path) -> None:
    base = git(git_repo, "rev-parse", "HEAD").strip()
    a = _commit_on(git_repo, base, {"a.txt": "a\n"}, "a")
    later = _commit_on(git_repo, a, {"b.txt": "b\n"}, "later")
    assert await _start(git_repo, "auto", [a, later], "x") == later
    assert await _start(git_repo, "auto", [later, a], "y") == later


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"shared.txt": "1\n2\n3 left\n"}, {"shared.txt": "1 right\n2\n3\n"}),  # same file, both edit it
        ({"gone.txt": None, "moved.txt": "kept\n"}, {"new/file.txt": "n\n"}),  # a deletion (a rename?)
    ],
)
async def test_merges_that_are_not_simple_go_to_git_and_agree(git_repo: Path, left: dict, right: dict) -> None:  # type: ignore[type-arg]
    (git_repo / "shared.txt").write_text("1\n2\n3\n")
    (git_repo / "gone.txt").write_text("kept\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "files")
    base = git(git_repo, "rev-parse", "HEAD").strip()
    a = _commit_on(git_repo, base, left, "left")
    b = _commit_on(git_repo, base, right, "right")
    before = SPAWNED["merge-tree"]
    auto = await _start(git_repo, "auto", [a, b], "auto")
    assert SPAWNED["merge-tree"] == before + 1
    assert auto == await _start(git_repo, "cli", [a, b], "cli")


async def test_conflicting_dependencies_still_name_the_files(git_repo: Path) -> None:
    base = git(git_repo, "rev-parse", "HEAD").strip()
    a = _commit_on(git_repo, base, {"same.txt": "left\n"}, "left")
    b = _commit_on(git_repo, base, {"same.txt": "right\n"}, "right")
    with pytest.raises(DependencyConflict) as caught:
        await _start(git_repo, "auto", [a, b], "clash")
    assert "same.txt" in str(caught.value)
