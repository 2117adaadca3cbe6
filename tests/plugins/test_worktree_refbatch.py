"""Refs read by one long-lived git and written in combined transactions (worktree.refbatch)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import WorktreeManager
from swarmd.plugins.runtime.worktree.git import SPAWNED
from swarmd.plugins.runtime.worktree.refbatch import reader_for, without_new_reflogs


async def test_the_reader_sees_refs_and_objects_written_after_it_started(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    head = await mgr.head_commit()
    assert await mgr._ref("refs/heads/later") is None
    # Another git process moves refs and writes a commit the reader has never seen.
    (git_repo / "new.txt").write_text("new\n")
    git(git_repo, "add", "new.txt")
    git(git_repo, "commit", "-q", "-m", "new")
    git(git_repo, "branch", "later", head)
    newer = git(git_repo, "rev-parse", "HEAD").strip()
    assert await mgr.head_commit() == newer
    assert await mgr._ref("refs/heads/later") == head
    assert await mgr.tree_hash(newer) == git(git_repo, "rev-parse", f"{newer}^{{tree}}").strip()
    # Objects moved into a pack, and packed refs, are read too.
    git(git_repo, "gc", "-q", "--prune=now")
    assert await mgr._ref("refs/heads/later") == head
    assert await mgr.tree_hash(newer) == git(git_repo, "rev-parse", f"{newer}^{{tree}}").strip()


async def test_what_the_reader_cannot_answer_goes_to_rev_parse(git_repo: Path) -> None:
    mgr = WorktreeManager(git_repo)
    head = await mgr.head_commit()
    # An abbreviated id, and a name with a newline the reader refuses to send.
    assert await mgr._resolve_commit(head[:10], "base commit") == head
    assert await mgr._rev("HEAD\n") is None
    # A reader whose process died is started again.
    assert mgr._top is not None
    reader = reader_for(mgr._top)
    proc = reader._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert await mgr._ref("HEAD") == head
    assert reader._proc is not None and reader._proc.pid != proc.pid


async def test_concurrent_ref_changes_share_transactions_and_one_refusal_stays_alone(
    git_repo: Path,
) -> None:
    mgr = WorktreeManager(git_repo)
    head = await mgr.head_commit()
    git(git_repo, "branch", "taken", head)
    SPAWNED.clear()
    names = [f"b{i:02d}" for i in range(40)] + ["taken"]
    results = await asyncio.gather(
        *(mgr._update_refs(f"create refs/heads/{name} {head}") for name in names)
    )
    refused = [name for name, run in zip(names, results, strict=True) if run.rc != 0]
    assert refused == ["taken"]
    assert "exists" in results[-1].error
    listed = git(git_repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/b*").split()
    assert sorted(listed) == names[:-1]
    # Far fewer git processes than ref changes: combined, then halved around the refusal.
    assert SPAWNED["update-ref"] < 20


async def test_units_apply_in_order_and_a_cancelled_caller_still_gets_its_change(
    git_repo: Path,
) -> None:
    mgr = WorktreeManager(git_repo)
    head = await mgr.head_commit()
    created, deleted = await asyncio.gather(
        mgr._update_refs(f"create refs/heads/brief {head}"),
        mgr._update_refs(f"delete refs/heads/brief {head}"),
    )
    assert (created.rc, deleted.rc) == (0, 0)
    assert await mgr._ref("refs/heads/brief") is None
    waiting = asyncio.ensure_future(mgr._update_refs(f"create refs/heads/kept {head}"))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    # The change was handed over before the cancel: it is applied, not withdrawn.
    await mgr._update_refs(f"update refs/heads/other {head}")
    assert await mgr._ref("refs/heads/kept") == head


async def test_a_commit_by_an_agent_that_detached_head_is_found_without_rev_parse(
    git_repo: Path,
) -> None:
    mgr = WorktreeManager(git_repo)
    wt = await mgr.create("s", "t")
    (wt.path / "a.txt").write_text("a\n")
    git(wt.path, "add", "a.txt")
    git(wt.path, "commit", "-q", "-m", "agent's own commit")
    git(wt.path, "checkout", "-q", "--detach")
    SPAWNED.clear()
    sha = await mgr.commit(wt, "t")
    assert sha == git(wt.path, "rev-parse", "HEAD").strip()
    assert await mgr._ref(f"refs/heads/{wt.branch}") == sha
    assert SPAWNED["rev-parse"] == 0


async def test_swarmd_refs_start_no_reflog_and_config_the_user_injects_still_holds(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user's own injected config (GIT_CONFIG_COUNT) is added to, not replaced.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "Injected Name")
    env = without_new_reflogs()
    assert env == {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_1": "core.logAllRefUpdates",
        "GIT_CONFIG_VALUE_1": "false",
    }
    mgr = WorktreeManager(git_repo)
    wt = await mgr.create("s", "t1")
    (wt.path / "new.txt").write_text("new\n")
    commit = await mgr.commit(wt, "work")
    assert commit is not None
    assert git(git_repo, "rev-parse", f"refs/heads/{wt.branch}").strip() == commit
    assert not (git_repo / ".git" / "logs" / "refs" / "heads" / "swarmd").exists()
    report = await mgr.merge(wt, commit)
    assert report.outcome == "merged"
    # The user's branch keeps its reflog: the merge is in it.
    assert report.merge_commit in git(git_repo, "reflog", "--format=%H", "main")
