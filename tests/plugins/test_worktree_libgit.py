"""The in-process git engine (libgit2) agrees with git's command line, or stands aside.

Each case builds the same repository state twice, in two worktrees of one
repository, and compares what the engine computes in one with what git's
command line computes in the other: the tree ``add -A`` + ``write-tree``
stage, whether ``status`` is clean, the files ``diff-tree`` lists and the
files a checkout writes.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import WorktreeManager, libgit
from swarmd.plugins.runtime.worktree.fastmerge import changes_between, split_raw
from swarmd.plugins.runtime.worktree.git import SPAWNED
from swarmd.plugins.runtime.worktree.libgit import Engine

pytestmark = pytest.mark.skipif(not libgit.available(), reason="pygit2 is not installed")


def _seed(repo: Path) -> None:
    """Tracked files of several kinds: nested, executable, a link, ignore rules, attributes."""
    (repo / "src" / "deep").mkdir(parents=True)
    (repo / "src" / "a.py").write_text("print('a')\n")
    (repo / "src" / "deep" / "b.txt").write_text("b\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(repo / "run.sh", 0o755)
    os.symlink("src/a.py", repo / "link.py")
    (repo / ".gitignore").write_text("*.log\nbuild/\n!keep.log\n")
    (repo / "src" / ".gitignore").write_text("secret*\n")
    (repo / ".gitattributes").write_text("*.crlf text eol=crlf\n")
    (repo / "doc.crlf").write_text("one\ntwo\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "seed")


def _edit_new_files(wt: Path) -> None:
    (wt / "new.txt").write_text("new\n")
    (wt / "src" / "deep" / "deeper").mkdir()
    (wt / "src" / "deep" / "deeper" / "c.txt").write_text("c\n")


def _edit_ignored(wt: Path) -> None:
    (wt / "debug.log").write_text("ignored\n")
    (wt / "keep.log").write_text("kept by the negation\n")
    (wt / "build").mkdir()
    (wt / "build" / "out.o").write_bytes(b"\0\1")
    (wt / "src" / "secret.txt").write_text("ignored below src\n")
    (wt / "empty-dir").mkdir()


def _edit_modes_and_deletes(wt: Path) -> None:
    os.chmod(wt / "run.sh", 0o644)
    os.chmod(wt / "src" / "a.py", 0o755)
    (wt / "src" / "deep" / "b.txt").unlink()
    (wt / "link.py").unlink()
    os.symlink("run.sh", wt / "link.py")


def _edit_kinds(wt: Path) -> None:
    (wt / "doc.crlf").write_text("one\nthree\n")  # stored with LF, like git
    (wt / "src" / "deep" / "b.txt").unlink()
    (wt / "src" / "deep" / "b.txt").mkdir()  # a file that became a folder
    (wt / "src" / "deep" / "b.txt" / "inside").write_text("x\n")
    (wt / "blob.bin").write_bytes(bytes(range(256)) * 64)


EDITS: dict[str, Callable[[Path], None]] = {
    "new files": _edit_new_files,
    "ignored files": _edit_ignored,
    "modes, deletions, links": _edit_modes_and_deletes,
    "kinds": _edit_kinds,
    "nothing": lambda wt: None,
}


@pytest.fixture
def seeded(git_repo: Path) -> Path:
    _seed(git_repo)
    return git_repo


def _worktrees(repo: Path, n: int = 2) -> list[Path]:
    out = []
    for i in range(n):
        path = repo.parent / f"wt{i}"
        git(repo, "worktree", "add", "-q", "-b", f"b{i}", str(path))
        out.append(path)
    return out


@pytest.mark.parametrize("edit", sorted(EDITS))
async def test_staged_tree_and_status_match_git(seeded: Path, edit: str) -> None:
    mine, theirs = _worktrees(seeded)
    EDITS[edit](mine)
    EDITS[edit](theirs)
    engine = Engine(seeded)
    assert engine.usable(), engine.reason
    clean_mine = await engine.is_clean(mine)
    clean_theirs = git(theirs, "status", "--porcelain", "--untracked-files=all") == ""
    assert clean_mine is clean_theirs
    tree = await engine.add_and_write_tree(mine)
    git(theirs, "add", "-A")
    assert tree == git(theirs, "write-tree").strip()
    # The index was written: git sees what the engine staged, and nothing left over.
    assert git(mine, "status", "--porcelain", "--untracked-files=all") == git(
        theirs, "status", "--porcelain", "--untracked-files=all"
    )
    assert git(mine, "write-tree").strip() == tree


@pytest.mark.parametrize("edit", sorted(EDITS))
async def test_changes_match_diff_tree(seeded: Path, edit: str) -> None:
    (wt,) = _worktrees(seeded, 1)
    EDITS[edit](wt)
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "--allow-empty", "-m", "edit")
    base, tip = git(wt, "rev-parse", "HEAD~1").strip(), git(wt, "rev-parse", "HEAD").strip()
    found = await Engine(seeded).changes(base, tip)
    raw = git(seeded, "diff-tree", "-r", "-z", "--no-renames", "--raw", base, tip).encode()
    expected = split_raw(raw)[0]
    assert found is not None
    assert sorted((c.path, c.mode, c.blob, c.deleted) for c in found) == sorted(
        (c.path, c.mode, c.blob, c.deleted) for c in expected
    )


def _git_answers(repo: Path, a: str, b: str) -> tuple[set[str], bool]:
    """What ``diff-tree --name-only`` and ``merge-base --is-ancestor`` say of a, b."""
    raw = subprocess.run(
        ["git", "diff-tree", "-r", "--name-only", "-z", "--no-renames", a, b],
        cwd=repo, check=True, capture_output=True,
    ).stdout
    rc = subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=repo).returncode
    return {os.fsdecode(p) for p in raw.split(b"\0") if p}, rc == 0


async def test_changed_paths_and_ancestry_match_git(seeded: Path) -> None:
    """Each edit above committed on a branch of its own, a non-UTF-8 file name on top
    of one, a commit on the main branch and a merge: ``diff-tree --name-only`` and
    ``merge-base --is-ancestor`` agree with the engine for every pair of them."""
    commits = [git(seeded, "rev-parse", "HEAD").strip()]
    for wt, name in zip(_worktrees(seeded, len(EDITS)), sorted(EDITS), strict=True):
        EDITS[name](wt)
        git(wt, "add", "-A")
        git(wt, "commit", "-q", "--allow-empty", "-m", name)
        commits.append(git(wt, "rev-parse", "HEAD").strip())
    (wt / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "odd name")
    commits.append(git(wt, "rev-parse", "HEAD").strip())
    (seeded / "side.txt").write_text("side\n")
    git(seeded, "add", "-A")
    git(seeded, "commit", "-q", "-m", "side")
    commits.append(git(seeded, "rev-parse", "HEAD").strip())
    git(seeded, "merge", "-q", "--no-ff", "-m", "join", "b0")
    commits.append(git(seeded, "rev-parse", "HEAD").strip())
    engine = Engine(seeded)
    for a in commits:
        for b in commits:
            names, ancestor = _git_answers(seeded, a, b)
            found = await engine.changed_paths(a, b)
            assert found is not None
            assert set(found) == names
            assert await engine.is_ancestor(a, b) is ancestor
    # Names, and ids git does not have, are left to git.
    assert await engine.is_ancestor("HEAD", commits[0]) is None
    assert await engine.is_ancestor("0" * 40, commits[0]) is None
    assert await engine.changed_paths(commits[0], "f" * 40) is None


async def test_commit_object_like_commit_tree(seeded: Path) -> None:
    (wt,) = _worktrees(seeded, 1)
    (wt / "new.txt").write_text("new\n")
    engine = Engine(seeded)
    tree = await engine.add_and_write_tree(wt)
    head = git(wt, "rev-parse", "HEAD").strip()
    assert tree is not None
    message = "work\n\nSwarmd-Swarm: s1\nSwarmd-Subtask: t1"
    commit = await engine.commit(wt, tree, head, message)
    assert commit is not None
    assert git(seeded, "cat-file", "-t", commit).strip() == "commit"
    assert git(seeded, "rev-parse", f"{commit}^{{tree}}", f"{commit}^").split() == [tree, head]
    assert git(seeded, "log", "-1", "--format=%an <%ae>|%B", commit).startswith("swarmd <swarmd@localhost>|work")
    trailers = git(seeded, "log", "-1", "--format=%(trailers:key=Swarmd-Subtask,valueonly)", commit)
    assert trailers.strip() == "t1"


async def test_checkout_writes_what_read_tree_writes(seeded: Path) -> None:
    mine, theirs = (seeded.parent / "co0", seeded.parent / "co1")
    git(seeded, "worktree", "add", "-q", "--no-checkout", "-b", "co0", str(mine))
    git(seeded, "worktree", "add", "-q", "--no-checkout", "-b", "co1", str(theirs))
    assert await Engine(seeded).check_out(mine)
    git(theirs, "read-tree", "--reset", "-u", "HEAD")
    assert git(mine, "status", "--porcelain", "--untracked-files=all") == ""

    def listing(root: Path) -> dict[str, tuple[int, bytes]]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in filenames:
                if name == ".git" and dirpath == str(root):
                    continue  # the worktree's pointer to its own admin folder
                p = Path(dirpath, name)
                st = p.lstat()
                body = os.readlink(p).encode() if stat.S_ISLNK(st.st_mode) else p.read_bytes()
                out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode) | (st.st_mode & 0o111), body)
        return out

    assert listing(mine) == listing(theirs)
    assert (mine / "doc.crlf").read_bytes() == b"one\r\ntwo\r\n"


async def test_repositories_left_to_git(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Engine(git_repo).usable()
    assert not Engine(git_repo, "cli").usable()
    monkeypatch.setenv(libgit.ENGINE_ENV, "cli")
    assert Engine(git_repo).reason == "" and not Engine(git_repo).usable()
    monkeypatch.delenv(libgit.ENGINE_ENV)
    with pytest.raises(ValueError, match="not one of"):
        Engine(git_repo, "fast")
    git(git_repo, "config", "filter.lfs.clean", "git-lfs clean -- %f")
    engine = Engine(git_repo)
    assert not engine.usable() and "filter driver" in engine.reason
    git(git_repo, "config", "--unset", "filter.lfs.clean")
    (git_repo / ".gitmodules").write_text("")
    engine = Engine(git_repo)
    assert not engine.usable() and "submodules" in engine.reason


async def _one_subtask(repo: Path, engine: str | None) -> tuple[str, int]:
    mgr = WorktreeManager(repo)
    mgr.git_engine = engine
    SPAWNED.clear()
    wt = await mgr.create("s1", "t1")
    (wt.path / "out.txt").write_text("out\n")
    commit = await mgr.commit(wt, "t1")
    report = await mgr.merge(wt, commit)
    assert str(report.outcome) == "merged", report
    return git(repo, "rev-parse", "HEAD^{tree}").strip(), sum(SPAWNED.values())


async def test_manager_uses_the_engine_and_lands_the_same_tree(tmp_path: Path) -> None:
    trees, spawned = [], []
    for engine in ("auto", "cli"):
        repo = tmp_path / engine
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        _seed(repo)
        tree, n = await _one_subtask(repo, engine)
        trees.append(tree)
        spawned.append(n)
        assert "out.txt" in git(repo, "ls-files")
        assert git(repo, "status", "--porcelain") == ""
    assert trees[0] == trees[1]
    assert spawned[0] < spawned[1]  # the in-process steps started no git


async def test_engine_errors_fall_back_to_git(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert libgit._pygit2 is not None

    def broken(*args: object, **kwargs: object) -> None:
        raise libgit._pygit2.GitError("simulated libgit2 failure")

    monkeypatch.setattr(Engine, "_add_and_write_tree", broken)
    monkeypatch.setattr(Engine, "_is_clean", broken)
    monkeypatch.setattr(Engine, "_changes", broken)
    monkeypatch.setattr(Engine, "_check_out", broken)
    await _one_subtask(seeded, "auto")
    assert "out.txt" in git(seeded, "ls-files")
    assert git(seeded, "status", "--porcelain") == ""
    mgr = WorktreeManager(seeded)
    engine = await mgr._libgit()
    assert await engine.is_clean(seeded) is None
    assert await changes_between(mgr, "HEAD~1", "HEAD")


def test_one_object_database_serves_a_repository_and_its_worktrees(seeded: Path, tmp_path: Path) -> None:
    """Every step opens its repository through one shared object database per object
    store: it sees objects git writes afterwards (loose or packed), and a repository
    made again at the same path is not read through the old one's."""
    (wt,) = _worktrees(seeded, 1)
    top, linked = libgit._open(seeded), libgit._open(wt)
    assert libgit._shared_odb(top) is libgit._shared_odb(linked)
    before = git(seeded, "rev-parse", "HEAD").strip()
    (seeded / "later.txt").write_text("written after the database was opened\n")
    git(seeded, "add", "later.txt")
    git(seeded, "commit", "-q", "-m", "later")
    loose = git(seeded, "rev-parse", "HEAD").strip()
    assert loose in libgit._open(wt)
    git(seeded, "repack", "-a", "-d", "-q")  # now only in a pack made after the database
    git(seeded, "prune-packed")
    assert loose in libgit._open(seeded) and before in libgit._open(wt)
    # The old repository moved away (its folders stay, so no inode is reused) and a new one made.
    seeded.rename(tmp_path / "old")
    seeded.mkdir()
    git(seeded, "init", "-q")
    git(seeded, "commit", "-q", "--allow-empty", "-m", "another history")
    fresh = libgit._open(seeded)
    assert loose not in fresh and git(seeded, "rev-parse", "HEAD").strip() in fresh
