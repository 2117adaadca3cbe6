"""A fresh worktree's files written in the background while its sub-agent starts.

``create`` returns with the branch made, the worktree registered and
AGENTS.md written; the rest of the checkout and the base ref follow, and
every user of the files (tool calls, commit, patch, remove) waits for them.
"""

from __future__ import annotations

import asyncio
import filecmp
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.runtime.worktree import WorktreeError, WorktreeManager, deferred, libgit
from swarmd.plugins.runtime.worktree.model import BASE_REF_PREFIX
from swarmd.plugins.tool import ToolContext
from swarmd.plugins.tools import BUILTIN_TOOLS

pytestmark = [
    pytest.mark.skipif(not libgit.available(), reason="pygit2 is not installed"),
    pytest.mark.timeout(60),
]


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / "AGENTS.md").write_text("Use tabs.\n")
    (git_repo / "pkg").mkdir()
    for i in range(50):
        (git_repo / "pkg" / f"m{i}.py").write_text(f"X = {i}\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "files")
    return git_repo


def manager(repo: Path) -> WorktreeManager:
    mgr = WorktreeManager(repo)
    mgr.defer_checkout = True
    return mgr


def same_tree(a: Path, b: Path) -> bool:
    names = {p.relative_to(a) for p in a.rglob("*") if ".git" not in p.parts}
    theirs = {p.relative_to(b) for p in b.rglob("*") if ".git" not in p.parts and ".swarmd" not in p.parts}
    return names == theirs and all(filecmp.cmp(a / n, b / n, shallow=False) for n in names if (a / n).is_file())


async def test_create_returns_before_the_files_and_ready_brings_them(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = manager(repo)
    release = asyncio.Event()
    engine = await mgr._libgit()
    original = engine.check_out

    async def held(path: Path, paths: list[str] | None = None, **kw: bool) -> bool:
        if paths is None:
            await release.wait()  # the full checkout waits until the test lets it go
        return await original(path, paths, **kw)

    monkeypatch.setattr(engine, "check_out", held)
    wt = await mgr.create("s1", "t1")
    assert wt.ready is not None and not wt.ready.done()
    assert (wt.path / "AGENTS.md").read_text() == "Use tabs.\n"  # what the prompt reads is there
    assert not (wt.path / "pkg").exists()
    assert await mgr._ref(f"{BASE_REF_PREFIX}s1/t1") is None  # recorded once the files are
    commit = asyncio.ensure_future(mgr.commit(wt))
    await asyncio.sleep(0.2)
    assert not commit.done()  # the commit waits for the checkout
    release.set()
    assert await commit is None  # nothing changed: the deferred checkout is not "work"
    assert same_tree(wt.path, repo)
    assert await mgr._ref(f"{BASE_REF_PREFIX}s1/t1") == wt.base_commit
    assert git(wt.path, "status", "--porcelain") == ""


async def test_work_after_ready_commits_and_merges(repo: Path) -> None:
    mgr = manager(repo)
    wts = await asyncio.gather(*(mgr.create("s1", f"t{i}") for i in range(8)))
    for i, wt in enumerate(wts):
        await deferred.ready(wt.ready)
        (wt.path / "pkg" / f"new{i}.py").write_text(f"N = {i}\n")
    reports = [await mgr.merge(wt, await mgr.commit(wt, f"t{i}")) for i, wt in enumerate(wts)]
    assert {str(r.outcome) for r in reports} == {"merged"}
    assert sorted(p.name for p in (repo / "pkg").glob("new*.py")) == [f"new{i}.py" for i in range(8)]


async def test_a_failed_background_checkout_removes_the_worktree_and_says_so(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr = manager(repo)
    engine = await mgr._libgit()
    original = engine.check_out

    async def broken(path: Path, paths: list[str] | None = None, **kw: bool) -> bool:
        if paths is None:
            raise OSError("disk full")
        return await original(path, paths, **kw)

    monkeypatch.setattr(engine, "check_out", broken)
    wt = await mgr.create("s1", "t1")
    with pytest.raises(WorktreeError, match="disk full"):
        await deferred.ready(wt.ready)
    with pytest.raises(WorktreeError):
        await mgr.commit(wt)
    assert not wt.path.exists()
    assert await mgr._ref(f"refs/heads/{wt.branch}") is None
    assert await mgr.remove(wt)
    # The slot is free again for the next attempt.
    monkeypatch.setattr(engine, "check_out", original)
    again = await mgr.create("s1", "t1")
    await deferred.ready(again.ready)
    assert again.attempt == 1 and same_tree(again.path, repo)


async def test_a_cancelled_caller_does_not_cancel_the_checkout(repo: Path) -> None:
    mgr = manager(repo)
    wt = await mgr.create("s1", "t1")
    waiter = asyncio.ensure_future(deferred.ready(wt.ready))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await deferred.ready(wt.ready)
    assert same_tree(wt.path, repo)


async def test_tool_calls_wait_for_the_files(repo: Path) -> None:
    mgr = manager(repo)
    wt = await mgr.create("s1", "t1")
    ctx = ToolContext(workdir=wt.path.resolve(), swarm_id="s1", subtask_id="t1")
    toolbox = Toolbox(BUILTIN_TOOLS, ctx)
    toolbox.gate = deferred.gate(wt.ready)
    outcome = await toolbox.execute("read", '{"path": "pkg/m7.py"}')
    assert outcome.success and "X = 7" in outcome.output
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(WorktreeError("cannot write the worktree's files: disk full"))
    toolbox.gate = deferred.gate(failed)
    refused = await toolbox.execute("read", '{"path": "pkg/m7.py"}')
    assert not refused.success and "workspace is not available" in refused.output


async def test_off_by_default_for_direct_users_of_the_manager(repo: Path) -> None:
    wt = await WorktreeManager(repo).create("s1", "t1")
    assert wt.ready is None and (wt.path / "pkg" / "m0.py").exists()
