"""The price of one worktree on the large repository: full checkout against lazy.

    python -m benchmarks.worktrees                 # lazy: 100 in flight; full: 5
    python -m benchmarks.worktrees --lazy 100 --full 10

For each checkout mode, ``n`` sub-agents' worktree cycles run at once on a
fresh clone of the generated 10,240-file repository (:func:`large_repo`):
create the worktree, read and edit one tracked file and write a new one
through the file tools (as a sub-agent would), commit, and merge back
(batched, as in the swarm). Once all ``n`` worktrees exist, the disk each
uses is measured: ``du`` of its folder plus its administrative folder under
``.git/worktrees`` (allocated blocks, links not followed). Reported per mode:
create, commit and merge p50/p95 (merge includes waiting for its batch),
isolation (their sum) p50/p95, disk per worktree and for all ``n`` against
the checkout, and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measures import percentile
from benchmarks.repos import checkout_bytes, large_repo
from swarmd.plugins import ToolContext
from swarmd.plugins.runtime.worktree import MergeOutcome, Worktree, WorktreeManager
from swarmd.plugins.runtime.worktree.lazy import CheckoutPolicy, files_for, is_lazy
from swarmd.plugins.tools.files import EditTool, ReadTool, WriteTool

__all__ = ["du", "measure"]


def du(path: Path) -> int:
    """Bytes allocated under ``path`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        total += os.lstat(root).st_blocks * 512
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _admin(wt: Worktree) -> Path:
    return Path((wt.path / ".git").read_text().removeprefix("gitdir: ").strip())


async def _cycle(
    mgr: WorktreeManager, i: int, all_made: asyncio.Event, made: list[Worktree], n: int
) -> dict[str, float]:
    started = time.monotonic()
    wt = await mgr.create("bench", f"w{i:03d}")
    created = time.monotonic()
    made.append(wt)
    if len(made) == n:
        all_made.set()
    ctx = ToolContext(workdir=wt.path.resolve(), files=files_for(wt.path) if is_lazy(wt.path) else None)
    target = f"pkg{i // 64:03d}/module_{i:05d}.py"  # the large repository's layout
    await ReadTool().run({"path": target, "limit": 5}, ctx)
    await EditTool().run({"path": target, "old_string": "# ", "new_string": f"# w{i} ", "replace_all": True}, ctx)
    await WriteTool().run({"path": f"out/w{i:03d}.txt", "content": f"work of {i}\n"}, ctx)
    await all_made.wait()  # every worktree lives at once: the disk is measured then
    await asyncio.sleep(0)
    tools_done = time.monotonic()
    commit = await mgr.commit(wt, f"work of {i}")
    committed = time.monotonic()
    report = await mgr.merge(wt, commit)
    merged = time.monotonic()
    if report.outcome is not MergeOutcome.MERGED:
        raise RuntimeError(f"w{i:03d}: {report.outcome}: {report.summary}")
    return {
        "create": (created - started) * 1000,
        "commit": (committed - tools_done) * 1000,
        "merge": (merged - committed) * 1000,
    }


async def measure(
    mode: str, n: int, scratch: Path, make_repo: Callable[[Path], Path] = large_repo
) -> dict[str, Any]:
    """One mode's figures with ``n`` worktree cycles at once (on ``make_repo``'s repository)."""
    repo = make_repo(scratch / f"repo-{mode}")
    checkout = checkout_bytes(repo)
    mgr = WorktreeManager(repo)
    mgr.checkout_policy = CheckoutPolicy(mode)
    files = len((await mgr._git("ls-files", "-z", cwd=repo)).out.split(b"\0")) - 1
    made: list[Worktree] = []
    all_made = asyncio.Event()
    load_before = os.getloadavg()[0]
    tasks = [asyncio.create_task(_cycle(mgr, i, all_made, made, n)) for i in range(n)]
    await all_made.wait()
    sizes = [du(wt.path) + du(_admin(wt)) for wt in made]
    began = time.monotonic()
    rows = await asyncio.gather(*tasks)
    load_after = os.getloadavg()[0]
    out: dict[str, Any] = {
        "mode": mode,
        "in_flight": n,
        "files": files,
        "checkout_mb": round(checkout / 2**20, 1),
        "disk_per_worktree_mb": round(percentile(sizes, 50) / 2**20, 2),
        "disk_all_mb": round(sum(sizes) / 2**20, 1),
        "disk_all_vs_checkout": round(sum(sizes) / checkout, 3),
        "commit_merge_wall_s": round(time.monotonic() - began, 2),
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
    }
    for op in ("create", "commit", "merge"):
        values = [r[op] for r in rows]
        out[f"{op}_ms_p50"] = round(percentile(values, 50), 1)
        out[f"{op}_ms_p95"] = round(percentile(values, 95), 1)
    totals = [r["create"] + r["commit"] + r["merge"] for r in rows]
    out["isolation_ms_p50"] = round(percentile(totals, 50), 1)
    out["isolation_ms_p95"] = round(percentile(totals, 95), 1)
    shutil.rmtree(repo, ignore_errors=True)
    return out


_COLUMNS = [
    "mode", "in_flight", "create_ms_p50", "create_ms_p95", "commit_ms_p50", "merge_ms_p50",
    "isolation_ms_p50", "isolation_ms_p95", "disk_per_worktree_mb", "disk_all_vs_checkout",
    "checkout_mb", "load_before", "load_after",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worktrees", description=__doc__)
    parser.add_argument("--lazy", type=int, default=100, help="lazy worktrees at once (0: skip)")
    parser.add_argument("--full", type=int, default=5, help="full checkouts at once (0: skip)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="swarmd-bench-worktrees-"))
    try:
        results = []
        for mode, n in (("full", args.full), ("lazy", args.lazy)):
            if n > 0:
                results.append(asyncio.run(measure(mode, n, scratch)))
                print(results[-1], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("| " + " | ".join(_COLUMNS) + " |")
    print("|" + "---|" * len(_COLUMNS))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in _COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
