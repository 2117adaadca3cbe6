"""Merging sub-agent work back into the user's branch without losing anything."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest
from helpers import git

from swarmd.plugins.runtime.worktree import (
    MergeOutcome,
    MergeReport,
    Worktree,
    WorktreeManager,
)
from swarmd.v1 import common_pb2


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """The demo repository with a few more tracked files."""
    (git_repo / "notes.txt").write_text("one\ntwo\nthree\n")
    (git_repo / "src").mkdir()
    (git_repo / "src" / "app.py").write_text("print('hello')\n")
    (git_repo / ".gitignore").write_text("*.log\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "more files")
    return git_repo


@pytest.fixture
def mgr(repo: Path) -> WorktreeManager:
    return WorktreeManager(repo)


async def agent(
    mgr: WorktreeManager, name: str, files: dict[str, str], swarm: str = "s"
) -> tuple[Worktree, str]:
    """A sub-agent that writes ``files`` in its own worktree and commits them."""
    wt = await mgr.create(swarm, name)
    for rel, text in files.items():
        (wt.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt.path / rel).write_text(text)
    sha = await mgr.commit(wt, f"{name} did its work")
    assert sha is not None
    return wt, sha


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file of the user's checkout (outside .git and .swarmd), byte for byte."""
    files = {}
    for root, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in (".git", ".swarmd")]
        for name in names:
            path = Path(root) / name
            files[str(path.relative_to(repo))] = path.read_bytes()
    return files


def user_state(repo: Path) -> tuple[str, str, str, str]:
    return (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "diff"),
        git(repo, "diff", "--cached"),
        git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored"),
    )


async def test_two_merge_and_the_third_conflicts_keeping_all_its_work(
    mgr: WorktreeManager, repo: Path
) -> None:
    a, a_sha = await agent(mgr, "a", {"notes.txt": "one\nTWO by a\nthree\n"})
    b, b_sha = await agent(mgr, "b", {"src/app.py": "print('hello, b')\n", "src/new.py": "x = 1\n"})
    c, c_sha = await agent(
        mgr, "c", {"notes.txt": "one\nTWO by c\nthree\nfour by c\n", "c_only.txt": "c\n"}
    )
    start = git(repo, "rev-parse", "HEAD").strip()

    ra = await mgr.merge(a, a_sha)
    assert ra.outcome == MergeOutcome.MERGED and ra.target_branch == "main"
    assert ra.files_changed == 1 and ra.commit == a_sha
    assert git(repo, "rev-parse", "HEAD").strip() == ra.merge_commit
    assert git(repo, "log", "-1", "--format=%P", ra.merge_commit).split() == [start, a_sha]
    assert ra.worktree_path is None and not a.path.exists()
    assert git(repo, "branch", "--list", a.branch) == ""  # merged: branch deleted

    rb = await mgr.merge(b, b_sha)
    assert rb.outcome == "merged" and rb.files_changed == 2
    assert git(repo, "log", "-1", "--format=%P", rb.merge_commit).split() == [
        ra.merge_commit,
        b_sha,
    ]

    before = user_state(repo)
    rc = await mgr.merge(c, c_sha)
    assert rc.outcome == MergeOutcome.CONFLICTED
    assert [f.path for f in rc.conflicts] == ["notes.txt"]
    diff = rc.conflicts[0].diff
    assert "<<<<<<<" in diff and "+TWO by c" in diff and "TWO by a" in diff
    assert "notes.txt" in rc.summary and c.branch in rc.summary
    assert rc.merge_commit == "" and rc.worktree_path == c.path
    # Nothing changed for the user, and the branch still has every line of c's work.
    assert user_state(repo) == before
    assert git(repo, "show", f"{c.branch}:notes.txt") == "one\nTWO by c\nthree\nfour by c\n"
    assert git(repo, "show", f"{c.branch}:c_only.txt") == "c\n"
    assert git(repo, "rev-parse", c.branch).strip() == c_sha
    assert (c.path / "notes.txt").read_text() == "one\nTWO by c\nthree\nfour by c\n"
    # Main holds a's and b's work, each as a --no-ff merge.
    assert (repo / "notes.txt").read_text() == "one\nTWO by a\nthree\n"
    assert (repo / "src" / "new.py").read_text() == "x = 1\n"
    assert git(repo, "status", "--porcelain") == ""

    proto = rc.to_proto()
    assert proto.outcome == common_pb2.MERGE_OUTCOME_CONFLICTED
    assert proto.conflicts[0].path == "notes.txt" and "<<<<<<<" in proto.conflicts[0].diff
    assert proto.branch == c.branch and proto.commit == c_sha and proto.target_branch == "main"


async def test_the_users_uncommitted_work_survives_every_merge(
    mgr: WorktreeManager, repo: Path
) -> None:
    a, a_sha = await agent(mgr, "a", {"src/app.py": "print('agent a')\n", "added.txt": "a\n"})
    b, b_sha = await agent(mgr, "b", {"README.md": "# agent b\n"})
    # The user keeps working meanwhile: unstaged, staged, untracked and ignored edits.
    (repo / "notes.txt").write_text("one\ntwo\nthree\nuser line\n")
    (repo / "staged.txt").write_text("staged by the user\n")
    git(repo, "add", "staged.txt")
    (repo / ".gitignore").write_text("*.log\n*.tmp\n")
    git(repo, "add", ".gitignore")
    (repo / ".gitignore").write_text("*.log\n*.tmp\n# unstaged on top of staged\n")
    (repo / "scratch.py").write_text("untracked\n")
    (repo / "debug.log").write_bytes(b"\x00binary ignored\xff")
    before = snapshot(repo)
    unstaged, staged = git(repo, "diff"), git(repo, "diff", "--cached")

    for wt, sha in ((a, a_sha), (b, b_sha)):
        report = await mgr.merge(wt, sha)
        assert report.outcome == "merged", report.summary

    after = snapshot(repo)
    changed_by_merges = {"src/app.py", "added.txt", "README.md"}
    assert {k: v for k, v in after.items() if k not in changed_by_merges} == {
        k: v for k, v in before.items() if k not in changed_by_merges
    }
    assert after["src/app.py"] == b"print('agent a')\n" and after["README.md"] == b"# agent b\n"
    assert git(repo, "diff") == unstaged
    assert git(repo, "diff", "--cached") == staged
    assert "?? scratch.py" in git(repo, "status", "--porcelain")
    assert git(repo, "log", "-1", "--format=%s").startswith("Merge swarmd/s/b into main")


@pytest.mark.parametrize("kind", ["unstaged", "staged", "untracked", "ignored"])
async def test_uncommitted_edits_that_overlap_the_merge_fail_and_change_nothing(
    mgr: WorktreeManager, repo: Path, kind: str
) -> None:
    if kind in ("unstaged", "staged"):
        wt, sha = await agent(mgr, "t", {"notes.txt": "agent\n"})
        (repo / "notes.txt").write_text("the user's own edit\n")
        if kind == "staged":
            git(repo, "add", "notes.txt")
        blocked = "notes.txt"
    else:
        blocked = "out.log" if kind == "ignored" else "new.txt"
        wt = await mgr.create("s", "t")
        (wt.path / blocked).write_text("agent\n")
        git(wt.path, "add", "-f", blocked)  # an ignored file the agent forced in
        sha = await mgr.commit(wt) or ""
        (repo / blocked).write_text("the user's own file\n")
    before, files = user_state(repo), snapshot(repo)

    report = await mgr.merge(wt, sha)

    assert report.outcome == MergeOutcome.FAILED
    assert blocked in report.summary and "nothing was changed" in report.summary
    why = "uncommitted changes" if kind in ("unstaged", "staged") else "untracked or ignored"
    assert why in report.summary
    assert report.to_proto().outcome == common_pb2.MERGE_OUTCOME_FAILED
    assert user_state(repo) == before and snapshot(repo) == files
    assert git(repo, "rev-parse", wt.branch).strip() == sha
    assert wt.path.exists()


async def test_a_file_the_user_only_touched_does_not_stop_the_merge(mgr: WorktreeManager, repo: Path) -> None:
    """Stale stat data (the file rewritten with the same bytes) makes read-tree refuse;
    swarmd refreshes the index then and merges, since nothing of the user's would change."""
    wt, sha = await agent(mgr, "t", {"notes.txt": "agent\n"})
    text = (repo / "notes.txt").read_bytes()
    (repo / "notes.txt").write_bytes(text)
    later = os.stat(repo / "notes.txt").st_mtime_ns + 5_000_000_000
    os.utime(repo / "notes.txt", ns=(later, later))
    (repo / "mine.txt").write_text("the user's untracked file\n")

    report = await mgr.merge(wt, sha)

    assert report.outcome == MergeOutcome.MERGED, report.summary
    assert (repo / "notes.txt").read_text() == "agent\n"
    assert (repo / "mine.txt").read_text() == "the user's untracked file\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == "?? mine.txt\n"


async def test_detached_head_or_an_operation_in_progress_fail(
    mgr: WorktreeManager, repo: Path
) -> None:
    wt, sha = await agent(mgr, "t", {"x.txt": "x\n"})
    git(repo, "checkout", "-q", "--detach")
    report = await mgr.merge(wt, sha)
    assert report.outcome == "failed" and "detached" in report.summary
    assert report.target_branch == ""
    git(repo, "checkout", "-q", "main")
    # A merge of the user's own that stopped on a conflict.
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "notes.txt").write_text("other\n")
    git(repo, "commit", "-q", "-am", "other")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.txt").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main")
    with pytest.raises(Exception, match="returned non-zero"):
        git(repo, "merge", "other")
    before = user_state(repo)
    report = await mgr.merge(wt, sha)
    assert report.outcome == "failed" and "a merge is in progress" in report.summary
    assert user_state(repo) == before
    assert (repo / ".git" / "MERGE_HEAD").exists()
    git(repo, "merge", "--abort")
    assert (await mgr.merge(wt, sha)).outcome == "merged"


async def test_no_changes_removes_worktree_and_branch(mgr: WorktreeManager, repo: Path) -> None:
    wt = await mgr.create("s", "t")
    head = git(repo, "rev-parse", "HEAD")
    report = await mgr.commit_and_merge(wt)
    assert report.outcome == MergeOutcome.NO_CHANGES and report.commit == ""
    assert report.to_proto().outcome == common_pb2.MERGE_OUTCOME_NO_CHANGES
    assert report.worktree_path is None and not wt.path.exists()
    assert git(repo, "for-each-ref", "refs/heads/swarmd", "refs/swarmd") == ""
    assert git(repo, "rev-parse", "HEAD") == head


async def test_auto_merge_off_keeps_the_branch(mgr: WorktreeManager, repo: Path) -> None:
    wt, sha = await agent(mgr, "t", {"x.txt": "x\n"})
    head = git(repo, "rev-parse", "HEAD")
    report = await mgr.merge(wt, sha, auto_merge=False)
    assert report.outcome == MergeOutcome.KEPT and report.files_changed == 1
    assert report.to_proto().outcome == common_pb2.MERGE_OUTCOME_KEPT
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "rev-parse", wt.branch).strip() == sha
    assert not wt.path.exists()  # the branch can now be checked out by the user
    git(repo, "merge", "-q", wt.branch)
    assert (repo / "x.txt").read_text() == "x\n"


async def test_concurrent_merges_are_serialised_and_all_land(
    mgr: WorktreeManager, repo: Path
) -> None:
    other = WorktreeManager(repo)
    done = [await agent(mgr, f"t{i}", {f"f{i}.txt": f"{i}\n"}) for i in range(6)]
    reports = await asyncio.gather(
        *((mgr if i % 2 else other).merge(wt, sha) for i, (wt, sha) in enumerate(done))
    )
    assert [r.outcome for r in reports] == ["merged"] * 6
    for i in range(6):
        assert (repo / f"f{i}.txt").read_text() == f"{i}\n"
    firsts = git(repo, "log", "--first-parent", "--format=%P", "-6").splitlines()
    assert all(len(parents.split()) == 2 for parents in firsts)
    assert git(repo, "status", "--porcelain") == ""
    assert await mgr.list() == []


async def test_merges_wait_for_another_process_holding_the_lock(
    mgr: WorktreeManager, repo: Path
) -> None:
    wt, sha = await agent(mgr, "t", {"x.txt": "x\n"})
    fd = os.open(repo / ".git" / "swarmd.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        task = asyncio.create_task(mgr.merge(wt, sha))
        await asyncio.sleep(0.3)
        assert not task.done()
    finally:
        os.close(fd)
    assert (await task).outcome == "merged"


async def test_merge_after_the_user_committed_and_after_a_dependency(
    mgr: WorktreeManager, repo: Path
) -> None:
    base = await mgr.head_commit()
    a, a_sha = await agent(mgr, "a", {"lib.py": "def f():\n    return 1\n"})
    (repo / "user.txt").write_text("user\n")
    git(repo, "add", "user.txt")
    git(repo, "commit", "-q", "-m", "the user keeps committing")
    assert (await mgr.merge(a, a_sha)).outcome == "merged"
    # A dependent builds on a's work; merging it does not conflict with a's merge.
    c = await mgr.create("s", "c", base, [a_sha])
    (c.path / "lib.py").write_text("def f():\n    return 2\n")
    report = await mgr.commit_and_merge(c, "c changes f")
    assert report.outcome == "merged", report.summary
    assert (repo / "lib.py").read_text() == "def f():\n    return 2\n"
    assert (repo / "user.txt").read_text() == "user\n"
    assert "c changes f" in git(repo, "log", "-1", "--format=%B", report.commit)
    assert "Swarmd-Subtask: c" in git(repo, "log", "-1", "--format=%B", report.merge_commit)


async def test_cancelling_a_merge_never_leaves_it_half_done(
    mgr: WorktreeManager, repo: Path
) -> None:
    for i, delay in enumerate((0.0, 0.01, 0.03, 0.06, 0.1)):
        wt, sha = await agent(mgr, f"t{i}", {f"c{i}.txt": "x\n"})
        head = git(repo, "rev-parse", "HEAD").strip()
        task = asyncio.create_task(mgr.merge(wt, sha))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        new_head = git(repo, "rev-parse", "HEAD").strip()
        assert git(repo, "status", "--porcelain") == ""
        assert (repo / f"c{i}.txt").exists() == (new_head != head)
        if new_head == head:  # not merged: the branch still holds the work
            assert git(repo, "rev-parse", wt.branch).strip() == sha


def test_not_applicable_report() -> None:
    report = MergeReport.not_applicable()
    assert report.to_proto().outcome == common_pb2.MERGE_OUTCOME_NOT_APPLICABLE
    assert report.outcome == "not_applicable"


async def test_a_branch_that_moves_mid_merge_is_rolled_back(
    mgr: WorktreeManager, repo: Path
) -> None:
    wt, sha = await agent(mgr, "t", {"x.txt": "x\n", "src/app.py": "print('agent')\n"})
    (repo / "notes.txt").write_text("the user's edit\n")
    (repo / "scratch.txt").write_text("untracked\n")
    before, files = user_state(repo), snapshot(repo)
    # Refuse the update of main, as if another writer had moved it first.
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(
        '#!/bin/sh\nif [ "$1" = prepared ] && grep -q " refs/heads/main$"; then exit 1; fi\n'
    )
    hook.chmod(0o755)
    report = await mgr.merge(wt, sha)
    assert report.outcome == "failed" and "moved while" in report.summary
    assert user_state(repo) == before and snapshot(repo) == files
    assert git(repo, "rev-parse", wt.branch).strip() == sha
    hook.unlink()
    assert (await mgr.merge(wt, sha)).outcome == "merged"
    assert (repo / "x.txt").exists() and (repo / "notes.txt").read_text() == "the user's edit\n"
