"""Lazy worktrees in the worktree lifecycle: when they are made, commits, merges,
conflicts, patches, kept worktrees, list and prune."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import git
from lazy_repo import context, generate, on_disk, pair

from swarmd.plugins import HealthCheck, HealthResult, HealthStatus
from swarmd.plugins.runtime.settings import RuntimeSettings
from swarmd.plugins.runtime.worktree import MergeOutcome, WorktreeManager
from swarmd.plugins.runtime.worktree.lazy import CheckoutPolicy, files_for, is_lazy, materialize_all
from swarmd.plugins.tools.bash import BashTool
from swarmd.plugins.tools.files import EditTool, ReadTool, WriteTool


def changes(repo: Path, a: str, b: str) -> list[str]:
    out = git(repo, "diff-tree", "-r", "--no-renames", "--name-status", a, b)
    return sorted(line.replace("\t", " ") for line in out.splitlines())


# -- when --------------------------------------------------------------------------------


def test_policy_from_options() -> None:
    assert CheckoutPolicy.from_options({}) == CheckoutPolicy("auto", 2000)
    policy = CheckoutPolicy.from_options({"worktree.checkout": "lazy", "worktree.lazy_threshold": "10"})
    assert policy == CheckoutPolicy("lazy", 10)
    assert CheckoutPolicy("auto", 10).lazy_for(10) and not CheckoutPolicy("auto", 10).lazy_for(9)
    assert CheckoutPolicy("lazy").lazy_for(1) and not CheckoutPolicy("full").lazy_for(10**6)
    with pytest.raises(ValueError, match="not one of"):
        CheckoutPolicy.from_options({"worktree.checkout": "sparse"})
    with pytest.raises(ValueError, match="whole number"):
        CheckoutPolicy.from_options({"worktree.lazy_threshold": "many"})
    settings = RuntimeSettings.resolve({"worktree.checkout": "full"}, {"worktree.lazy_threshold": "5"})
    assert settings.worktree_options == {"worktree.checkout": "full", "worktree.lazy_threshold": "5"}


async def test_auto_is_lazy_from_the_threshold_on(git_repo: Path) -> None:
    generate(git_repo, files=40)
    tracked = len(git(git_repo, "ls-files").splitlines())
    mgr = WorktreeManager(git_repo)
    mgr.checkout_policy = CheckoutPolicy("auto", tracked)
    lazy = await mgr.create("s", "above")
    mgr.checkout_policy = CheckoutPolicy("auto", tracked + 1)
    full = await mgr.create("s", "below")
    default = await WorktreeManager(git_repo).create("s", "default")  # 2000 files: far below
    assert is_lazy(lazy.path) and not is_lazy(full.path) and not is_lazy(default.path)
    assert len(on_disk(lazy.path)) < 10
    assert on_disk(full.path) == on_disk(default.path)
    for wt in (lazy, full, default):
        assert git(wt.path, "status", "--porcelain") == ""
        assert git(wt.path, "rev-parse", "HEAD").strip() == wt.base_commit


# -- commits and merges ------------------------------------------------------------------


async def test_commit_records_exactly_the_changes(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, _, lazy = await pair(git_repo)
    ctx = context(lazy)
    await ReadTool().run({"path": texts[1]}, ctx)  # read only: unchanged
    await WriteTool().run({"path": texts[2], "content": "replaced\n"}, ctx)
    await WriteTool().run({"path": "src/brand/new.py", "content": "NEW = 1\n"}, ctx)
    commit = await mgr.commit(lazy, "work")
    assert commit is not None
    assert changes(git_repo, lazy.base_commit, commit) == sorted([f"M {texts[2]}", "A src/brand/new.py"])
    assert is_lazy(lazy.path)
    assert git(lazy.path, "status", "--porcelain") == ""
    # Nothing changed since: a second commit is a no-op.
    assert await mgr.commit(lazy, "again") == commit


async def test_deletions_through_bash_are_recorded(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, _, lazy = await pair(git_repo)
    ctx = context(lazy)
    await EditTool().run({"path": "run.sh", "old_string": "Hello", "new_string": "Bye"}, ctx)
    # run.sh was materialized and edited, texts[3:6] never written before bash.
    command = f"rm run.sh {texts[3]} {texts[4]} && git rm -q {texts[5]}"
    result = await BashTool().run({"command": command}, ctx)
    assert result.success, result.output
    commit = await mgr.commit(lazy, "deletions")
    assert commit is not None
    assert changes(git_repo, lazy.base_commit, commit) == sorted(f"D {t}" for t in ["run.sh", *texts[3:6]])


async def test_merge_brings_exactly_the_work_back(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, _, lazy = await pair(git_repo)
    ctx = context(lazy)
    await WriteTool().run({"path": texts[7], "content": "agent\n"}, ctx)
    await WriteTool().run({"path": "docs/added.md", "content": "added\n"}, ctx)
    head = git(git_repo, "rev-parse", "HEAD").strip()
    report = await mgr.commit_and_merge(lazy, "work")
    assert report.outcome is MergeOutcome.MERGED, report.summary
    assert report.files_changed == 2
    assert changes(git_repo, head, "HEAD") == sorted([f"M {texts[7]}", "A docs/added.md"])
    assert (git_repo / texts[7]).read_text() == "agent\n"
    assert all((git_repo / t).exists() for t in texts)
    assert git(git_repo, "status", "--porcelain") == ""
    patch = await mgr.diff_against_base(lazy, report.commit)
    assert b"+agent" in patch and b"deleted file" not in patch


async def test_conflict_is_reported_and_the_lazy_worktree_kept(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, _, lazy = await pair(git_repo)
    (git_repo / texts[8]).write_text("user's version\n")
    git(git_repo, "commit", "-qam", "user edit")
    await WriteTool().run({"path": texts[8], "content": "agent's version\n"}, context(lazy))
    report = await mgr.commit_and_merge(lazy, "work")
    assert report.outcome is MergeOutcome.CONFLICTED
    assert [c.path for c in report.conflicts] == [texts[8]]
    assert "agent's version" in report.conflicts[0].diff
    assert report.worktree_path == lazy.path and lazy.path.is_dir()
    assert (git_repo / texts[8]).read_text() == "user's version\n"
    [status] = [s for s in await mgr.list() if s.subtask_id == "lazy"]
    assert status.clean and status.has_own_work and not status.merged
    assert is_lazy(lazy.path)
    # The kept worktree is a working checkout: materialized whole it holds the agent's tree.
    await materialize_all(lazy.path)
    assert not is_lazy(lazy.path)
    assert (lazy.path / texts[8]).read_text() == "agent's version\n"
    assert git(lazy.path, "status", "--porcelain") == ""
    assert all((lazy.path / t).exists() for t in texts)


async def test_patch_applies_to_a_lazy_worktree(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, full, lazy = await pair(git_repo)
    (full.path / texts[9]).write_text("patched\n")
    (full.path / texts[10]).unlink()
    (full.path / "docs" / "p.md").write_text("new\n")
    source = await mgr.commit(full, "source")
    patch = await mgr.diff_against_base(full, source)
    assert await mgr.apply_patch(lazy, patch)
    applied = await mgr.commit(lazy, "source")
    assert applied is not None
    assert git(git_repo, "rev-parse", f"{applied}^{{tree}}") == git(git_repo, "rev-parse", f"{source}^{{tree}}")
    assert is_lazy(lazy.path) and not (lazy.path / texts[11]).exists()


# -- kept, list, prune, remove ------------------------------------------------------------


async def test_kept_list_prune_and_remove(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, full, lazy = await pair(git_repo)
    untouched = await mgr.create("s", "untouched")
    await WriteTool().run({"path": texts[12], "content": "# half done\n"}, context(lazy))
    # Uncommitted work: never removed, listed as not clean, kept by prune.
    assert not await mgr.remove(lazy)
    listed = {s.subtask_id: s for s in await mgr.list()}
    assert listed["lazy"].clean is False and listed["untouched"].clean is True
    assert listed["lazy"].lazy and listed["untouched"].lazy and not listed["full"].lazy
    report = await mgr.prune()
    assert any(branch == lazy.branch and "uncommitted" in why for branch, why in report.kept)
    # Clean (nothing written but links and AGENTS.md): removed, branch and admin folder too.
    assert await mgr.remove(untouched) and not untouched.path.exists()
    assert untouched.branch not in git(git_repo, "branch", "--list", "swarmd/*")
    assert lazy.path.is_dir() and is_lazy(lazy.path)
    # A retry of the kept subtask (its lock released) continues in it, still lazy, work intact.
    again = await mgr.create("s", "lazy")
    assert again.path == lazy.path and again.attempt == lazy.attempt and is_lazy(again.path)
    assert again.carried_over and texts[12] in again.carried_over
    assert (again.path / texts[12]).read_text() == "# half done\n"
    assert await mgr.remove(full)
    assert not await mgr.remove(again) and again.path.is_dir()  # uncommitted work is never removed
    await mgr.commit(again, "done")
    assert await mgr.remove(again) and not again.path.exists()


async def test_materialize_all_is_one_full_checkout(git_repo: Path) -> None:
    texts = generate(git_repo)
    _, full, lazy = await pair(git_repo)
    files = files_for(lazy.path)
    files.materialize([texts[0], texts[1]])
    assert files.active and files.blob_id(texts[0]) is None and files.blob_id(texts[2])
    files.materialize_all()
    assert not files.active and not is_lazy(lazy.path)
    assert on_disk(lazy.path) == on_disk(full.path)
    assert git(lazy.path, "status", "--porcelain") == ""
    for rel in ("run.sh", "docs/win.crlf", texts[5]):
        assert (lazy.path / rel).read_bytes() == (full.path / rel).read_bytes()
    assert os.access(lazy.path / "run.sh", os.X_OK)
    files.materialize_all()  # once is enough; again is a no-op


class CountFiles(HealthCheck):
    name = "count-files"

    async def check(self, worktree: Path, base_commit: str = "") -> HealthResult:
        return HealthResult(HealthStatus.PASS, str(len(on_disk(worktree))))


async def test_health_checks_see_the_whole_tree(git_repo: Path) -> None:
    generate(git_repo)
    _, full, lazy = await pair(git_repo)
    result = await CountFiles().run(lazy.path)
    assert result.detail == str(len(on_disk(full.path)))
    assert not is_lazy(lazy.path)


async def test_worktrees_of_one_start_share_its_listing(git_repo: Path) -> None:
    texts = generate(git_repo)
    mgr, _, first = await pair(git_repo)
    second = await mgr.create("s", "second")
    a, b = files_for(first.path), files_for(second.path)
    a.materialize([texts[0]])
    assert a.active and b.active and a._base is b._base
    assert a.blob_id(texts[0]) is None and b.blob_id(texts[0]) is not None


async def test_an_index_moved_past_the_start_is_read_as_it_is(git_repo: Path) -> None:
    """A fast-forward (as the Kubernetes executor's bring-back does) keeps the bits
    but changes blobs: what is not written yet is what the index holds."""
    from swarmd.plugins.runtime.worktree.lazyfiles import LazyFiles
    from swarmd.plugins.tools.search import GrepTool

    texts = generate(git_repo)
    _, _, lazy = await pair(git_repo)
    (git_repo / texts[13]).write_text("moved on Hello\n")
    (git_repo / texts[14]).unlink()
    git(git_repo, "commit", "-qam", "later")
    git(lazy.path, "merge", "--ff-only", "-q", "main")
    files = LazyFiles(lazy.path)
    ctx = context(lazy)
    ctx.files = files
    grep = await GrepTool().run({"pattern": "moved on"}, ctx)
    assert grep.output == f"{texts[13]}:1: moved on Hello"
    listed = (await ReadTool().run({"path": texts[13]}, ctx)).output
    assert "moved on Hello" in listed
    assert files.blob_id(texts[14]) is None
    assert git(lazy.path, "status", "--porcelain") == ""
