"""The repositories the mutating benchmarks run in, and the price of isolation in them.

Two sizes:

* **small** — a handful of files (a fresh repository per run);
* **large** — the size of a real project: 10,240 tracked files in 160
  folders, 10 KiB each (about 105 MB checked out), generated deterministically
  (the content of file ``i`` is a function of ``i``) once into a bare
  repository cached under ``~/.cache/swarmd-bench/`` (``SWARMD_BENCH_CACHE``
  overrides), never inside the source tree. Each run gets a fresh clone that
  shares the cached object store.

Bare asyncio writes the same files in a plain directory: the difference
between the two is the price of isolation.

:func:`isolation_figures` reads the per-operation records the worktree code
writes when ``SWARMD_WORKTREE_TIMINGS`` is set (see
``swarmd.plugins.runtime.worktree.timing``): per subtask, the time spent
creating its worktree, committing, merging (queueing for the batch included)
and waiting for the repository lock; and from the same records, the most
worktrees alive at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.measures import percentile

__all__ = [
    "LARGE_FILES",
    "DiskSampler",
    "checkout_bytes",
    "isolation_figures",
    "large_repo",
    "plain_dir",
    "small_repo",
]

LARGE_FILES = 10_240
LARGE_FILE_BYTES = 10 * 1024
_LARGE_VERSION = "v1"
_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": "@1700000000 +0000",
    "GIT_COMMITTER_DATE": "@1700000000 +0000",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **_ENV},
        input=stdin,
        check=True,
        capture_output=True,
    )
    return out.stdout.decode().strip()


def small_repo(dest: Path) -> Path:
    """A fresh repository with a README and a few source files, on branch main."""
    dest.mkdir(parents=True)
    _git(dest, "init", "-q", "-b", "main")
    (dest / "README.md").write_text("# benchmark workspace\n\nbench\n")
    (dest / "src").mkdir()
    for i in range(8):
        (dest / "src" / f"mod{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "start")
    return dest


def plain_dir(dest: Path) -> Path:
    """Where bare asyncio writes: an empty directory, no git."""
    dest.mkdir(parents=True)
    return dest


def _cache_dir() -> Path:
    return Path(os.environ.get("SWARMD_BENCH_CACHE", Path.home() / ".cache" / "swarmd-bench"))


def _content(i: int) -> bytes:
    """10 KiB of text that is a function of ``i`` alone (hex of a hash chain)."""
    seed = hashlib.sha256(f"swarmd-bench file {i}".encode()).digest()
    lines = []
    while sum(len(x) for x in lines) < LARGE_FILE_BYTES:
        seed = hashlib.sha256(seed).digest()
        lines.append(f"# {seed.hex()}{seed.hex()[:60]}\n".encode())
    return b"".join(lines)[:LARGE_FILE_BYTES]


def _generate(bare: Path) -> None:
    tmp = bare.with_name(bare.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _git(tmp, "init", "-q", "--bare", "-b", "main")
    chunks = [
        b"commit refs/heads/main\n",
        b"committer bench <bench@example.invalid> 1700000000 +0000\n",
    ]
    message = b"generated project of 10,240 files\n"
    chunks.append(b"data %d\n%s" % (len(message), message))
    for i in range(LARGE_FILES):
        data = _content(i)
        path = f"pkg{i // 64:03d}/module_{i:05d}.py".encode()
        chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(data), data))
    readme = b"# generated benchmark project\n"
    chunks.append(b"M 100644 inline README.md\ndata %d\n%s\n" % (len(readme), readme))
    _git(tmp, "fast-import", "--quiet", stdin=b"".join(chunks))
    os.replace(tmp, bare)


def large_repo(dest: Path) -> Path:
    """A fresh clone of the cached large repository (generated on first use)."""
    bare = _cache_dir() / f"large-{_LARGE_VERSION}.git"
    if not bare.exists():
        bare.parent.mkdir(parents=True, exist_ok=True)
        _generate(bare)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _git(dest.parent, "clone", "-q", "--shared", "-b", "main", str(bare), str(dest))
    return dest


def checkout_bytes(repo: Path) -> int:
    """Bytes of the tracked files of a checkout (its size on disk, roughly)."""
    total = 0
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in (".git", ".swarmd")]
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


class DiskSampler:
    """The most bytes the filesystem of ``path`` lost during a run (statvfs, every 0.2 s).

    The disk is shared with whatever else the machine runs, so this is an
    upper bound on what the worktrees used.
    """

    def __init__(self, path: Path, interval: float = 0.2) -> None:
        self.path, self.interval = path, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-sampler", daemon=True)

    def _free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._start - self._free())

    def __enter__(self) -> DiskSampler:
        self._start = self._free()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            yield json.loads(line)


def isolation_figures(path: Path, swarm_prefix: str = "") -> dict[str, Any]:
    """Per-subtask create, commit, merge, lock-wait and total isolation times (ms), and peak live worktrees."""
    per: dict[str, dict[str, float]] = {}
    events: list[tuple[float, int]] = []
    batches: list[float] = []
    for r in _records(path):
        if swarm_prefix and not r["swarm"].startswith(swarm_prefix):
            continue
        row = per.setdefault(f"{r['swarm']}/{r['subtask']}", {})
        row[r["op"]] = row.get(r["op"], 0.0) + r["seconds"] * 1000
        row["lock"] = row.get("lock", 0.0) + r["lock_wait"] * 1000
        if r["op"] == "create":
            events.append((r["at"], 1))
        elif r["op"] == "merge":
            events.append((r["at"], -1))
            batches.append(float(r.get("batch", 0)))
    live = peak = 0
    for _, step in sorted(events):
        live += step
        peak = max(peak, live)
    out: dict[str, Any] = {"subtasks_timed": len(per), "peak_live_worktrees": peak}
    for op in ("create", "commit", "merge", "lock"):
        values = [row.get(op, 0.0) for row in per.values()]
        out[f"{op}_ms_p50"] = round(percentile(values, 50), 1)
        out[f"{op}_ms_p95"] = round(percentile(values, 95), 1)
    totals = [
        row.get("create", 0) + row.get("commit", 0) + row.get("merge", 0) for row in per.values()
    ]
    out["isolation_ms_p50"] = round(percentile(totals, 50), 1)
    out["isolation_ms_p95"] = round(percentile(totals, 95), 1)
    out["merge_batch_mean"] = round(sum(batches) / len(batches), 1) if batches else 0.0
    return out
