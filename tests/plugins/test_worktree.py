"""Worktree creation, deterministic bases, commits, patches, removal, list and prune."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from helpers import dead_pid, git, relock

from swarmd.plugins.runtime.worktree import (
    DependencyConflict,
    InvalidIdError,
    NotAGitRepository,
    Worktree,
    WorktreeError,
    WorktreeManager,
    _git,
    _truncate,
    validate_id,
)


@pytest.fixture
def mgr(git_repo: Path) -> WorktreeManager:
    return WorktreeManager(git_repo)


async def committed(mgr: WorktreeManager, wt: Worktree, files: dict[str, str | None]) -> str:
    """Write (or delete, for None) files in a worktree and commit them."""
    for rel, text in files.items():
        target = wt.path / rel
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    sha = await mgr.commit(wt, f"work of {wt.subtask_id}")
    assert sha is not None
    return sha


# -- ids and repositories ---------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b",
        "..",
        "a..b",
        ".x",
        "-x",
        "x.",
        "x.lock",
        "a b",
        "ü",
        "a@b",
        "a~b",
        "a:b",
        "a\nb",
        "x" * 101,
    ],
)
async def test_unsafe_ids_are_refused(mgr: WorktreeManager, bad: str) -> None:
    with pytest.raises(InvalidIdError):
        validate_id("subtask", bad)
    with pytest.raises(InvalidIdError):
        await mgr.create("swarm", bad)
    with pytest.raises(InvalidIdError):
        await mgr.create(bad, "task")


@pytest.mark.parametrize("good", ["a", "task_1", "v1.2-x", "X" * 100, "7"])
def test_safe_ids_are_accepted(good: str) -> None:
    assert validate_id("subtask", good) == good


async def test_not_a_repository_is_detected(tmp_path: Path, git_repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert await WorktreeManager.is_git_repo(git_repo)
    assert await WorktreeManager.is_git_repo(git_repo / ".git") is False
    assert not await WorktreeManager.is_git_repo(plain)
    assert not await WorktreeManager.is_git_repo(tmp_path / "missing")
    with pytest.raises(NotAGitRepository, match="not inside a git working tree"):
        await WorktreeManager(plain).head_commit()
    with pytest.raises(NotAGitRepository, match="does not exist"):
        await WorktreeManager(tmp_path / "missing").create("s", "t")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(NotAGitRepository, match="no commit yet"):
        await WorktreeManager(empty).create("s", "t")


async def test_git_calls_time_out_without_leaking(git_repo: Path) -> None:
    with pytest.raises(WorktreeError, match="timed out"):
        await _git(git_repo, "-c", "alias.slow=!sleep 5", "slow", timeout=0.2)


def test_conflict_diffs_are_truncated_to_64_kib() -> None:
    small = "é" * 10
    assert _truncate(small.encode()) == small
    big = _truncate(("ü" * 70_000).encode())
    assert len(big.encode()) <= 64 * 1024
    assert big.endswith("[... diff truncated at 64 KiB ...]\n")


# -- create --------------------------------------------------------------------------


async def test_create_makes_a_hidden_locked_worktree(mgr: WorktreeManager, git_repo: Path) -> None:
    head = await mgr.head_commit()
    wt = await mgr.create("s1", "t1")
    top = await mgr.toplevel()
    assert wt.path == top / ".swarmd" / "worktrees" / "s1" / "t1"
    assert wt.branch == "swarmd/s1/t1"
    assert wt.base_commit == head
    assert (wt.path / "README.md").read_text() == "# demo\n"
    assert git(wt.path, "symbolic-ref", "--short", "HEAD").strip() == "swarmd/s1/t1"
    await mgr.create("s1", "t2")
    # .swarmd/ is ignored through info/exclude, once, and .gitignore is untouched.
    assert git(git_repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (git_repo / ".gitignore").exists()
    exclude = (git_repo / ".git" / "info" / "exclude").read_text()
    assert exclude.splitlines().count("/.swarmd/") == 1
    assert f"locked swarmd: in use by pid {os.getpid()}" in git(
        git_repo, "worktree", "list", "--porcelain"
    )


async def test_create_refuses_unknown_commits(mgr: WorktreeManager) -> None:
    with pytest.raises(WorktreeError, match="not a commit"):
        await mgr.create("s", "t", "0" * 40)
    with pytest.raises(WorktreeError, match="dependency commit"):
        await mgr.create("s", "t", None, ["no-such-ref"])


async def test_dependent_sees_its_dependency_but_not_a_sibling(mgr: WorktreeManager) -> None:
    base = await mgr.head_commit()
    a = await mgr.create("s", "a", base)
    b = await mgr.create("s", "b", base)
    a_commit = await committed(mgr, a, {"a.txt": "from a\n"})
    await committed(mgr, b, {"b.txt": "from b\n"})
    c = await mgr.create("s", "c", base, [a_commit])
    assert (c.path / "a.txt").read_text() == "from a\n"
    assert not (c.path / "b.txt").exists()
    assert c.base_commit == a_commit  # a fast-forward of the swarm base
    assert await mgr.head_commit() == base  # nothing touched the user's branch


async def test_base_is_the_same_whatever_order_siblings_finish(
    mgr: WorktreeManager, git_repo: Path
) -> None:
    base = await mgr.head_commit()
    trees = []
    bases = []
    for swarm, order in (("run1", "ab"), ("run2", "ba")):
        wts = {name: await mgr.create(swarm, name, base) for name in "ab"}
        commits: dict[str, str] = {}
        for name in order:  # finish (commit and merge) in this order
            commits[name] = await committed(mgr, wts[name], {f"{name}.txt": f"{name}\n"})
            assert (await mgr.merge(wts[name], commits[name])).outcome == "merged"
        c = await mgr.create(swarm, "c", base, [commits["a"], commits["b"]])
        assert sorted(p.name for p in c.path.iterdir() if p.name != ".git") == [
            "README.md",
            "a.txt",
            "b.txt",
        ]
        trees.append(await mgr.tree_hash(c.base_commit))
        bases.append(c.base_commit)
        # The same inputs again give the very same commit, not only the same tree.
        again = await mgr.create(swarm, "c-again", base, [commits["a"], commits["b"]])
        assert again.base_commit == c.base_commit
    assert trees[0] == trees[1]
    assert trees[0] != await mgr.tree_hash(base)
    assert trees[0] == git(git_repo, "rev-parse", f"{bases[0]}^{{tree}}").strip()


async def test_conflicting_dependencies_fail_clearly(mgr: WorktreeManager) -> None:
    base = await mgr.head_commit()
    a = await mgr.create("s", "a", base)
    b = await mgr.create("s", "b", base)
    ca = await committed(mgr, a, {"README.md": "# a\n"})
    cb = await committed(mgr, b, {"README.md": "# b\n"})
    with pytest.raises(
        DependencyConflict, match=r"dependencies of subtask c conflict.*README\.md"
    ) as err:
        await mgr.create("s", "c", base, [ca, cb])
    assert err.value.files == ["README.md"]
    assert [s.subtask_id for s in await mgr.list()] == ["a", "b"]


# -- commit ----------------------------------------------------------------------------


async def test_commit_picks_up_new_modified_and_deleted_files(
    mgr: WorktreeManager, git_repo: Path
) -> None:
    (git_repo / "old.txt").write_text("old\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "add old")
    hooks = git_repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")  # hooks cannot block the commit
    (hooks / "pre-commit").chmod(0o755)
    wt = await mgr.create("s", "t")
    assert await mgr.commit(wt) is None  # nothing changed yet
    sha = await committed(
        mgr, wt, {"README.md": "# changed\n", "dir/new.txt": "new\n", "old.txt": None}
    )
    status = git(git_repo, "diff-tree", "-r", "--name-status", wt.base_commit, sha)
    assert status.split() == ["M", "README.md", "A", "dir/new.txt", "D", "old.txt"]
    assert git(git_repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == (
        "swarmd <swarmd@localhost>|swarmd <swarmd@localhost>"
    )
    message = git(git_repo, "log", "-1", "--format=%B", sha)
    assert "work of t" in message and "Swarmd-Subtask: t" in message
    assert git(wt.path, "status", "--porcelain") == ""
    assert git(git_repo, "rev-parse", wt.branch).strip() == sha
    assert await mgr.commit(wt) == sha  # idempotent


async def test_commits_the_agent_made_itself_count(mgr: WorktreeManager) -> None:
    wt = await mgr.create("s", "t")
    (wt.path / "x.txt").write_text("x\n")
    git(wt.path, "add", "x.txt")
    git(wt.path, "commit", "-q", "-m", "agent commit")
    agent_commit = git(wt.path, "rev-parse", "HEAD").strip()
    assert await mgr.commit(wt) == agent_commit


# -- patches ---------------------------------------------------------------------------


async def test_patch_export_and_reapply(mgr: WorktreeManager, git_repo: Path) -> None:
    (git_repo / "gone.txt").write_text("bye\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "more")
    base = await mgr.head_commit()
    a = await mgr.create("s1", "t", base)
    (a.path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    sha = await committed(mgr, a, {"README.md": "# demo\nmore\n", "gone.txt": None})
    patch = await mgr.diff_against_base(a)
    assert b"GIT binary patch" in patch
    assert patch == await mgr.diff_against_base(a, sha)
    # Same base: the patch reproduces the exact tree.
    b = await mgr.create("s2", "t", base)
    assert await mgr.apply_patch(b, patch)
    assert await mgr.tree_hash(await mgr.commit(b) or "") == await mgr.tree_hash(sha)
    assert await mgr.apply_patch(b, b"")
    # A base where the file changed: refused, nothing touched.
    (git_repo / "README.md").write_text("# other\n")
    git(git_repo, "commit", "-q", "-am", "readme")
    c = await mgr.create("s3", "t")
    assert not await mgr.apply_patch(c, patch)
    assert git(c.path, "status", "--porcelain") == ""
    assert (c.path / "gone.txt").exists()


async def test_tree_hash(mgr: WorktreeManager, git_repo: Path) -> None:
    head = await mgr.head_commit()
    assert await mgr.tree_hash(head) == git(git_repo, "rev-parse", "HEAD^{tree}").strip()
    with pytest.raises(WorktreeError):
        await mgr.tree_hash("nope")


# -- remove, retries, list, prune ----------------------------------------------------------


async def test_dirty_worktree_is_never_removed(mgr: WorktreeManager, git_repo: Path) -> None:
    wt = await mgr.create("s", "t")
    (wt.path / "work.txt").write_text("precious\n")
    assert await mgr.remove(wt) is False
    assert (wt.path / "work.txt").read_text() == "precious\n"
    # Committed but unmerged: the checkout goes, the branch keeps the work.
    sha = await mgr.commit(wt)
    assert await mgr.remove(wt) is True
    assert not wt.path.exists()
    assert git(git_repo, "show", f"{wt.branch}:work.txt") == "precious\n"
    assert git(git_repo, "rev-parse", wt.branch).strip() == sha
    # Nothing of its own: checkout and branch both go.
    empty = await mgr.create("s", "u")
    assert await mgr.remove(empty) is True
    assert git(git_repo, "branch", "--list", empty.branch) == ""
    assert not (git_repo / ".swarmd" / "worktrees" / "s" / "u").exists()


async def test_a_retry_never_reuses_a_slot_that_holds_work(
    mgr: WorktreeManager, git_repo: Path
) -> None:
    first = await mgr.create("s", "t")
    # A live lock (this process) keeps the slot.
    second = await mgr.create("s", "t")
    assert (second.attempt, second.branch) == (2, "swarmd/s/t@2")
    assert second.path.name == "t@2"
    # A dirty one from a dead process is kept too; a clean one is replaced.
    (first.path / "partial.txt").write_text("half done\n")
    relock(git_repo, first.path, dead_pid())
    relock(git_repo, second.path, dead_pid())
    third = await mgr.create("s", "t")
    assert third.attempt == 2 and third.path == second.path
    assert (first.path / "partial.txt").read_text() == "half done\n"


async def test_list_and_prune(mgr: WorktreeManager, git_repo: Path) -> None:
    merged = await mgr.create("s", "merged")
    await committed(mgr, merged, {"m.txt": "m\n"})
    git(git_repo, "merge", "-q", "--no-ff", "-m", "user merge", merged.branch)
    relock(git_repo, merged.path, dead_pid())  # its process died
    dirty = await mgr.create("s", "dirty")
    (dirty.path / "wip.txt").write_text("wip\n")
    relock(git_repo, dirty.path, dead_pid())
    live = await mgr.create("s", "live")
    unmerged = await mgr.create("s", "unmerged")
    await committed(mgr, unmerged, {"u.txt": "u\n"})
    git(git_repo, "worktree", "unlock", str(unmerged.path))
    abandoned = await mgr.create("s", "abandoned")
    git(git_repo, "worktree", "unlock", str(abandoned.path))
    vanished = await mgr.create("s", "vanished")
    git(git_repo, "worktree", "unlock", str(vanished.path))
    shutil.rmtree(vanished.path)

    status = {s.subtask_id: s for s in await mgr.list()}
    assert sorted(status) == ["abandoned", "dirty", "live", "merged", "unmerged", "vanished"]
    assert status["merged"].merged and status["merged"].clean and not status["merged"].in_use
    assert status["dirty"].clean is False and not status["dirty"].has_own_work
    assert status["live"].in_use and status["live"].path == live.path
    assert status["unmerged"].has_own_work and not status["unmerged"].merged
    assert status["abandoned"].clean and not status["abandoned"].has_own_work
    assert status["vanished"].missing and status["vanished"].clean is None

    report = await mgr.prune()
    assert sorted(report.removed_worktrees) == sorted([merged.path, abandoned.path])
    assert sorted(report.deleted_branches) == [
        "swarmd/s/abandoned",
        "swarmd/s/merged",
        "swarmd/s/vanished",
    ]
    kept = dict(report.kept)
    assert "uncommitted changes" in kept["swarmd/s/dirty"]
    assert "in use" in kept["swarmd/s/live"]
    assert "unmerged commits" in kept["swarmd/s/unmerged"]
    assert (dirty.path / "wip.txt").read_text() == "wip\n"
    assert live.path.exists() and unmerged.path.exists()
    assert "vanished" not in git(git_repo, "worktree", "list")
    left = {s.subtask_id for s in await mgr.list()}
    assert left == {"dirty", "live", "unmerged"}
    # The user's merge is untouched.
    assert (git_repo / "m.txt").read_text() == "m\n"


async def test_two_managers_on_one_repository_share_the_lock(git_repo: Path) -> None:
    one, two = WorktreeManager(git_repo), WorktreeManager(git_repo / ".git" / "..")
    wts = await asyncio.gather(*(m.create("s", f"t{i}") for i, m in enumerate([one, two] * 3)))
    assert len({wt.path for wt in wts}) == 6
    assert len(await one.list()) == 6
