"""A generated repository for the lazy-worktree tests, and a full and a lazy worktree of it.

Deterministic from a seed: a few hundred text files in nested folders, an
executable, a binary file, one larger than grep reads, links to a file and
to a folder, an ``AGENTS.md`` and a file with ``eol=crlf`` (so checkout
filters matter).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from helpers import git

from swarmd.plugins import ToolContext
from swarmd.plugins.runtime.worktree import Worktree, WorktreeManager
from swarmd.plugins.runtime.worktree.lazy import CheckoutPolicy, files_for, is_lazy

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "Hello", "world", "value", "TODO", "x=1"]
DIRS = ["src", "src/core", "src/core/deep", "src/util", "docs", "tests", "tests/unit", "data"]


def generate(repo: Path, seed: int = 7, files: int = 300) -> list[str]:
    """Fill and commit ``repo`` (an initialised repository); returns the text files' paths."""
    rng = random.Random(seed)
    names: list[str] = []
    for i in range(files):
        folder = rng.choice(DIRS)
        ext = rng.choice([".py", ".txt", ".md"])
        rel = f"{folder}/f{i:03d}{ext}"
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(0, 12))]
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines))
        names.append(rel)
    (repo / "AGENTS.md").write_text("Keep it small.\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho Hello\n")
    os.chmod(repo / "run.sh", 0o755)
    (repo / "data" / "blob.bin").write_bytes(b"\x00\x01Hello\x00" * 10)
    (repo / "data" / "big.txt").write_text("Hello big\n" * 250_000)
    (repo / ".gitattributes").write_text("*.crlf text eol=crlf\n")
    (repo / "docs" / "win.crlf").write_text("Hello crlf\nsecond line\n")
    os.symlink("src/core/deep", repo / "deep_link")
    os.symlink(names[0], repo / "file_link")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated")
    return names


async def pair(repo: Path, swarm: str = "s") -> tuple[WorktreeManager, Worktree, Worktree]:
    """A full and a lazy worktree of ``repo`` at HEAD (subtasks ``full`` and ``lazy``)."""
    full_mgr = WorktreeManager(repo)
    full_mgr.checkout_policy = CheckoutPolicy("full")
    full = await full_mgr.create(swarm, "full")
    mgr = WorktreeManager(repo)
    mgr.checkout_policy = CheckoutPolicy("lazy")
    lazy = await mgr.create(swarm, "lazy")
    assert not is_lazy(full.path) and is_lazy(lazy.path)
    return mgr, full, lazy


def context(wt: Worktree) -> ToolContext:
    files = files_for(wt.path) if is_lazy(wt.path) else None
    return ToolContext(workdir=wt.path.resolve(), swarm_id=wt.swarm_id, subtask_id=wt.subtask_id, files=files)


def on_disk(root: Path) -> set[str]:
    """Every path under ``root`` (files, links and folders) but ``.git``."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if rel != ".git":
                found.add(rel)
    return found
