"""A lazy worktree staged in process stages what git's ``add -A`` stages.

Each case changes a lazy worktree the way a sub-agent or a user might
(through the file tools' materializing, or behind their back), then
compares the tree libgit2 stages (:func:`stage_lazy`) with the tree git's
own ``add -A`` and ``write-tree`` make from a copy of the same index; the
commit swarmd makes must hold that tree, keep every other entry's
skip-worktree bit, and leave ``git status`` clean.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest
from helpers import git
from lazy_repo import DIRS, generate, pair

from swarmd.plugins.runtime.worktree import lazystage
from swarmd.plugins.runtime.worktree.blobs import converts_on_checkout
from swarmd.plugins.runtime.worktree.fastmerge import Change, split_raw
from swarmd.plugins.runtime.worktree.lazy import files_for, is_lazy
from swarmd.plugins.runtime.worktree.lazyfiles import admin_dir
from swarmd.plugins.runtime.worktree.lazystage import stage_lazy

pytestmark = pytest.mark.timeout(120)


def git_tree(path: Path) -> str:
    """The tree git's ``add -A`` stages in ``path``, from a copy of its index."""
    admin = admin_dir(path)
    assert admin is not None
    scratch = admin / "scratch.index"
    shutil.copyfile(admin / "index", scratch)
    env = {**os.environ, "GIT_INDEX_FILE": str(scratch)}
    try:
        subprocess.run(["git", "add", "-A"], cwd=path, env=env, check=True, capture_output=True)
        return subprocess.run(
            ["git", "write-tree"], cwd=path, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
    finally:
        scratch.unlink()


def staged_tree(path: Path) -> str | None:
    """The tree :func:`stage_lazy` stages (index left unwritten); None: it declined."""
    repo = pygit2.Repository(str(path))
    if stage_lazy(repo, path) is None:
        return None
    return str(repo.index.write_tree())


def skipped(path: Path) -> set[str]:
    return {line[2:] for line in git(path, "ls-files", "-t").splitlines() if line.startswith("S ")}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_staged_tree_is_gits_after_random_changes(git_repo: Path, seed: int) -> None:
    texts = generate(git_repo, seed=seed)
    (git_repo / "src" / ".gitignore").write_text("*.log\nbuild/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "ignore rules")
    with (git_repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("*.tmp\n")  # the repository's own rules, shared by its worktrees
    mgr, _, wt = await pair(git_repo)
    files = files_for(wt.path)
    assert (wt.path / "src" / ".gitignore").exists(), "ignore rules are written at creation"
    rng = random.Random(seed)
    for n in range(25):
        kind = rng.choice(["edit", "delete", "new", "ignored", "ignored-dir", "to-dir", "mode", "behind"])
        rel = rng.choice(texts)
        path = wt.path / rel
        if kind in ("edit", "delete", "to-dir", "mode"):
            files.materialize([rel])
            if not path.is_file():
                continue
            if kind == "edit":
                path.write_text(path.read_text() + f"edit {n}\n")
            elif kind == "delete":
                path.unlink()
            elif kind == "to-dir":
                path.unlink()
                path.mkdir()
                (path / "inside.txt").write_text(f"was a file {n}\n")
            else:
                path.chmod(0o755)
        elif kind == "new":
            folder = wt.path / rng.choice(DIRS) / f"new{n}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"made{n}.py").write_text(f"made {n}\n")
            (folder / f"scratch{n}.tmp").write_text("excluded\n")
        elif kind == "ignored":
            (wt.path / "src").mkdir(exist_ok=True)
            (wt.path / "src" / f"run{n}.log").write_text("noise\n")
        elif kind == "ignored-dir":
            (wt.path / "src" / "build").mkdir(parents=True, exist_ok=True)
            (wt.path / "src" / "build" / f"out{n}.py").write_text("built\n")
        elif rel in files._base.files and rel not in files._written and not path.exists():
            # Behind the tools' back: a skip-worktree entry's file appears, changed.
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not through the tools\n")
        assert staged_tree(wt.path) == git_tree(wt.path), f"after change {n} ({kind} {rel})"
    still_skipped = skipped(wt.path)
    assert still_skipped
    commit = await mgr.commit(wt, "work")
    assert commit is not None
    assert git(wt.path, "rev-parse", "HEAD^{tree}").strip() == git_tree(wt.path)
    recorded = mgr._changes.get((wt.base_commit, commit))
    if recorded is not None:  # what the merge will use instead of comparing trees
        assert _by_path(recorded) == _by_path(_diff_tree(git_repo, wt.base_commit, commit))
    assert skipped(wt.path) == still_skipped, "entries not touched keep their skip-worktree bit"
    assert git(wt.path, "status", "--porcelain", "--untracked-files=all") == ""
    assert is_lazy(wt.path)


def _diff_tree(repo: Path, a: str, b: str) -> list[Change]:
    out = subprocess.run(
        ["git", "diff-tree", "-r", "-z", "--no-renames", "--raw", a, b], cwd=repo, check=True, capture_output=True
    ).stdout
    return split_raw(out)[0]


def _by_path(changes: list[Change]) -> list[Change]:
    return sorted(changes, key=lambda c: c.path)


async def test_a_commit_lists_its_changes_as_diff_tree_does(git_repo: Path) -> None:
    """The merge takes a lazy commit's changes from its staging (no tree comparison)."""
    texts = generate(git_repo)
    mgr, _, wt = await pair(git_repo)
    files = files_for(wt.path)
    edited, deleted, made_exec = texts[0], texts[1], texts[2]
    files.materialize([edited, deleted, made_exec])
    (wt.path / edited).write_text("edited\n")
    (wt.path / deleted).unlink()
    (wt.path / made_exec).chmod(0o755)
    (wt.path / "brand" / "new").mkdir(parents=True)
    (wt.path / "brand" / "new" / "file.txt").write_text("new\n")
    (wt.path / DIRS[0] / "beside.txt").write_text("beside\n")
    commit = await mgr.commit(wt, "work")
    assert commit is not None
    recorded = mgr._changes.get((wt.base_commit, commit))
    assert recorded is not None, "the staging knew every change"
    want = _diff_tree(git_repo, wt.base_commit, commit)
    assert len(want) == 5 and _by_path(recorded) == _by_path(want)
    assert await mgr._is_clean(wt.path)
    # A file that became a folder: diff-tree lists it its own way; the merge asks it.
    (wt.path / edited).unlink()
    (wt.path / edited).mkdir()
    (wt.path / edited / "inside.txt").write_text("x\n")
    assert not await mgr._is_clean(wt.path)
    second = await mgr.commit(wt, "to a folder")
    assert second is not None and (commit, second) not in mgr._changes
    assert await mgr._is_clean(wt.path)
    report = await mgr.merge(wt, second)
    assert report.outcome == "merged", report.summary
    assert git(git_repo, "show", f"HEAD:{edited}/inside.txt") == "x\n"
    assert git(git_repo, "show", "HEAD:brand/new/file.txt") == "new\n"


async def test_clean_is_judged_as_git_status_judges_it(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, _, wt = await pair(git_repo)
    assert await mgr._is_clean(wt.path)
    (wt.path / "notes.txt").write_text("new\n")
    assert not await mgr._is_clean(wt.path)
    (wt.path / "notes.txt").unlink()
    files_for(wt.path).materialize([texts[0]])
    assert await mgr._is_clean(wt.path), "a file written as checked out is no change"
    (wt.path / texts[0]).unlink()
    assert not await mgr._is_clean(wt.path), "a checked-out file deleted is a change"
    await mgr.commit(wt, "deleted")
    assert await mgr._is_clean(wt.path)


async def test_declines_where_git_would_judge_otherwise(git_repo: Path) -> None:
    generate(git_repo)
    _, _, wt = await pair(git_repo)
    nested = wt.path / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    assert staged_tree(wt.path) is None, "a nested repository is left to git"
    shutil.rmtree(wt.path / "vendor")
    # A worktree made before ignore rules were written at creation.
    (wt.path / ".gitattributes").unlink()
    git(wt.path, "update-index", "--skip-worktree", ".gitattributes")
    assert staged_tree(wt.path) is None, "rules git reads from the index are left to git"


def test_what_may_change_on_checkout() -> None:
    plain = {"filter": "unspecified", "ident": "unspecified", "working-tree-encoding": "unspecified"}
    assert not converts_on_checkout({**plain, "text": "auto", "eol": "lf"}, False)
    assert not converts_on_checkout({**plain, "text": "set"}, False)
    assert converts_on_checkout({**plain, "text": "set", "eol": "crlf"}, False)
    assert converts_on_checkout({**plain, "text": "auto"}, True)
    assert not converts_on_checkout({**plain, "text": "unset"}, True)
    assert not converts_on_checkout({**plain, "crlf": "unset", "eol": "crlf"}, True)
    assert converts_on_checkout({**plain, "ident": "set"}, False)
    assert converts_on_checkout({**plain, "filter": "lfs"}, False)


async def test_grep_reads_converted_files_as_checkout_writes_them(git_repo: Path) -> None:
    generate(git_repo)
    (git_repo / ".gitattributes").write_text("*.crlf text eol=crlf\n*.id ident\n")
    (git_repo / "docs" / "b.crlf").write_text("one\ntwo\nthree\n")
    (git_repo / "docs" / "v.id").write_text("$Id$\n")
    (git_repo / "docs" / "after.txt").write_text("plain\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "converted")
    _, full, wt = await pair(git_repo)
    with files_for(wt.path).open_blobs() as blobs:
        # In this order: a converted file between two plain ones keeps the stream in step.
        for rel in ("docs/after.txt", "docs/win.crlf", "docs/b.crlf", "docs/v.id", "docs/after.txt"):
            assert blobs.read(rel, 1 << 20) == (full.path / rel).read_bytes(), rel
        assert blobs.read("docs/b.crlf", 4) is None, "larger than the limit"


async def test_a_lazy_worktrees_entries_are_walked_only_when_its_index_changed_behind_swarmds_back(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = generate(git_repo)
    walks: list[int] = []
    real = lazystage._walk_entries

    def counted(*args):  # type: ignore[no-untyped-def]
        walks.append(1)
        return real(*args)

    monkeypatch.setattr(lazystage, "_walk_entries", counted)
    mgr, _, wt = await pair(git_repo)
    files = files_for(wt.path)
    # Made at creation, files checked out through the tools, committed, checked:
    # the entries are known all along, only the disk is walked.
    files.materialize([texts[0]])
    (wt.path / texts[0]).write_text("edited\n")
    assert staged_tree(wt.path) == git_tree(wt.path)
    assert await mgr.commit(wt, "edit") is not None
    assert git(wt.path, "rev-parse", "HEAD^{tree}").strip() == git_tree(wt.path)
    assert await mgr._is_clean(wt.path)
    (wt.path / "notes.txt").write_text("new\n")
    assert not await mgr._is_clean(wt.path), "a new file is seen on disk"
    (wt.path / "notes.txt").unlink()
    (wt.path / texts[0]).unlink()
    assert not await mgr._is_clean(wt.path), "a committed file deleted is a change"
    (wt.path / texts[0]).write_text("edited\n")
    files.materialize([texts[1]])
    assert await mgr._is_clean(wt.path), "a file checked out as committed is no change"
    (wt.path / texts[1]).unlink()
    assert not await mgr._is_clean(wt.path)
    assert walks == []
    # The index rewritten by someone else: walked afresh, and still git's answer.
    (wt.path / texts[1]).write_text("back, by hand\n")
    git(wt.path, "update-index", "--no-skip-worktree", texts[2])
    assert staged_tree(wt.path) == git_tree(wt.path)
    assert walks
    assert await mgr.commit(wt, "by hand") is not None
    assert git(wt.path, "rev-parse", "HEAD^{tree}").strip() == git_tree(wt.path)
    assert git(wt.path, "status", "--porcelain", "--untracked-files=all") == ""
    assert await mgr._is_clean(wt.path)
