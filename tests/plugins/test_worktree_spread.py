"""Worktrees are made in folders that ask ext2/3/4 to spread what is made in them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from swarmd.plugins.runtime.worktree import WorktreeManager, spread
from swarmd.plugins.runtime.worktree.model import WORKTREES_DIR

pytestmark = pytest.mark.timeout(60)


def _flags_work_in(folder: Path) -> bool:
    """Whether this file system keeps FS_TOPDIR_FL (ext2/3/4 do; tmpfs, overlayfs and others do not)."""
    probe = folder / "probe"
    probe.mkdir()
    try:
        spread.spread(probe)
        return spread.is_spread(probe)
    finally:
        probe.rmdir()


async def test_the_folders_worktrees_are_made_in_are_spread(git_repo: Path, tmp_path: Path) -> None:
    if not sys.platform.startswith("linux") or not _flags_work_in(tmp_path):
        pytest.skip("the temporary folder's file system has no FS_TOPDIR_FL")
    mgr = WorktreeManager(git_repo)
    wt = await mgr.create("s", "t1")
    assert spread.is_spread(git_repo / WORKTREES_DIR / "s")
    assert spread.is_spread(git_repo / ".git" / "swarmd-new")
    # Nothing anyone reads changed: the worktree is an ordinary one.
    assert (wt.path / ".git").is_file() and wt.path.parent == git_repo / WORKTREES_DIR / "s"
    assert not spread.is_spread(wt.path), "the flag is not inherited by the worktree itself"


def test_where_the_flag_is_unknown_nothing_happens(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = shm / f"swarmd-spread-{os.getpid()}"
        folder.mkdir()
        try:
            spread.spread(folder)  # tmpfs refuses the request: ignored
            assert not spread.is_spread(folder)
        finally:
            folder.rmdir()
    spread.spread(tmp_path / "missing")  # a folder that is not there: ignored too
    assert not spread.is_spread(tmp_path / "missing")
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    spread.spread(regular)  # not a folder
    assert not spread.is_spread(regular)
