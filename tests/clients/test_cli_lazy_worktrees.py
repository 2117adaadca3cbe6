"""``swarmd worktrees list|prune`` on lazy worktrees."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_cli import run_cli

from swarmd.plugins.runtime.worktree import CheckoutPolicy, WorktreeManager


def test_list_and_prune_show_and_keep_lazy_worktrees(capsys: pytest.CaptureFixture[str], calc_repo: Path) -> None:
    async def make() -> Path:
        mgr = WorktreeManager(calc_repo)
        mgr.checkout_policy = CheckoutPolicy("lazy")
        kept = await mgr.create("sw", "kept")
        (kept.path / "notes.txt").write_text("work in progress\n")
        await mgr._unlock(kept.path)  # as after a failed attempt: kept, not in use
        done = await mgr.create("sw", "done")
        await mgr._unlock(done.path)
        return kept.path

    kept = asyncio.run(make())
    code, out, _ = run_cli(capsys, "worktrees", "list", "--repo", str(calc_repo))
    assert code == 0
    [line] = [line for line in out.splitlines() if "swarmd/sw/kept" in line]
    assert "uncommitted changes" in line and "lazy checkout" in line
    code, out, _ = run_cli(capsys, "worktrees", "prune", "--repo", str(calc_repo))
    assert code == 0
    assert "kept swarmd/sw/kept: uncommitted changes" in out and "deleted branch swarmd/sw/done" in out
    assert kept.is_dir() and (kept / "notes.txt").exists()
