"""The worktree benchmark's figures, on a repository laid out like the large one but small."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.worktrees import du, measure


def laid_out_like_large(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for i in range(200):
        path = dest / f"pkg{i // 64:03d}" / f"module_{i:05d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(f"# line {n} of {i}\n" for n in range(50)))
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(dest)}
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "start"],
    ):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True, env=env)
    return dest


async def test_full_and_lazy_figures(tmp_path: Path) -> None:
    full = await measure("full", 2, tmp_path, laid_out_like_large)
    lazy = await measure("lazy", 4, tmp_path, laid_out_like_large)
    assert full["files"] == lazy["files"] == 200
    for row in (full, lazy):
        assert row["isolation_ms_p50"] >= row["create_ms_p50"] > 0
    assert full["disk_all_vs_checkout"] > 1.5  # two full copies
    assert lazy["disk_per_worktree_mb"] < full["disk_per_worktree_mb"]


def test_du_counts_blocks_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10000)
    (tmp_path / "link").symlink_to("/usr")
    assert 10000 <= du(tmp_path) < 10000 + 64 * 1024
