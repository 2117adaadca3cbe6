"""Merging a batch of sub-agents whose changes touch disjoint files, in one git process.

When a sub-agent's changes (its commit against its base) touch no file that
another merge of the batch touches, nor any file that changed on the user's
branch since its base, the three-way merge is trivial: the result is the
branch's tree with the sub-agent's files replaced. That is what ``git
merge-tree`` would compute, file for file; ``git fast-import`` builds the
whole chain of --no-ff merge commits (``from <tip>``, ``merge <commit>``, the
changed files) in one process instead of two per sub-agent. A file and a
folder of the same name count as the same file, so a batch never loses a
directory/file conflict. Anything that overlaps goes through ``merge-tree``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from swarmd.plugins.runtime.worktree.git import GIT_IDENTITY
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["Change", "Claims", "build_chain", "changes_between", "known", "raw_and_patch", "split_raw"]

_SCRATCH_REF = "refs/swarmd/integrate/"


@dataclass(frozen=True)
class Change:
    """One file a commit changed: its new mode and blob (``deleted`` when gone)."""

    path: str
    mode: str
    blob: str
    deleted: bool


async def changes_between(repo: RepoBase, a: str, b: str) -> builtins.list[Change]:
    """Files changed from ``a`` to ``b`` with their new blobs (no rename detection).

    Known without a git call when :func:`raw_and_patch` listed them already.
    """
    known = repo._changes.get((a, b))
    if known is not None:
        return known
    found = await (await repo._libgit()).changes(a, b)
    if found is not None:
        return [Change(c.path, c.mode, c.blob, c.deleted) for c in found]
    run = await repo._git("diff-tree", "-r", "-z", "--no-renames", "--raw", a, b)
    return split_raw(run.out)[0]


def split_raw(data: bytes) -> tuple[builtins.list[Change], bytes]:
    """``diff-tree -z --raw`` output (optionally followed by a patch): changes, and the patch."""
    out: list[Change] = []
    pos = 0
    while data[pos : pos + 1] == b":":
        meta_end = data.index(b"\0", pos)
        path_end = data.index(b"\0", meta_end + 1)
        _old_mode, new_mode, _old, new, status = data[pos + 1 : meta_end].decode().split()
        path = os.fsdecode(data[meta_end + 1 : path_end])
        out.append(Change(path, new_mode, new, status.startswith("D")))
        pos = path_end + 1
    if data[pos : pos + 1] == b"\0":  # between the raw records and the patch
        pos += 1
    return out, data[pos:]


async def raw_and_patch(repo: RepoBase, a: str, b: str) -> bytes:
    """The binary patch from ``a`` to ``b``; its list of changes is kept for the merge (one git call)."""
    run = await repo._git(
        "diff-tree",
        "-r",
        "-z",
        "--patch-with-raw",
        "--binary",
        "--full-index",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        a,
        b,
    )
    changes, patch = split_raw(run.out)
    known(repo, a, b, changes)
    return patch


def known(repo: RepoBase, a: str, b: str, changes: builtins.list[Change]) -> None:
    """Remember what changed from ``a`` to ``b`` (found by whoever made ``b``) for
    :func:`changes_between`; ``changes`` must be exactly ``diff-tree -r --no-renames a b``."""
    if len(repo._changes) > 1000:
        repo._changes.clear()
    repo._changes[(a, b)] = changes


class Claims:
    """Paths taken so far; a path collides with the same path or a folder above or below it."""

    def __init__(self, paths: builtins.list[str] | None = None) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.add(paths or [])

    def collides(self, paths: builtins.list[str]) -> bool:
        for path in paths:
            if path in self.files or path in self.dirs:
                return True
            parts = path.split("/")
            if any("/".join(parts[:n]) in self.files for n in range(1, len(parts))):
                return True
        return False

    def add(self, paths: builtins.list[str]) -> None:
        for path in paths:
            self.files.add(path)
            parts = path.split("/")
            self.dirs.update("/".join(parts[:n]) for n in range(1, len(parts)))


def _quote(path: str) -> str:
    """A fast-import path: C-style quoted, so any byte of a file name survives."""
    out = ['"']
    for byte in os.fsencode(path):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


async def build_chain(
    repo: RepoBase,
    top: Path,
    tip: str,
    merges: builtins.list[tuple[str, builtins.list[Change], str]],
) -> builtins.list[str]:
    """Merge commits for ``(commit, changes, message)`` one onto the other from ``tip``.

    Returns one merge commit id per entry, in order; objects only (a scratch
    ref fast-import needs is deleted again).
    """
    now = int(time.time())
    who = f"{GIT_IDENTITY['GIT_COMMITTER_NAME']} <{GIT_IDENTITY['GIT_COMMITTER_EMAIL']}>"
    ref = _SCRATCH_REF + secrets.token_hex(8)
    chunks: list[bytes] = []
    for n, (commit, changes, message) in enumerate(merges, start=1):
        body = message.encode()
        lines = [
            f"commit {ref}",
            f"mark :{n}",
            f"author {who} {now} +0000",
            f"committer {who} {now} +0000",
            f"data {len(body)}",
        ]
        chunks.append(("\n".join(lines) + "\n").encode() + body + b"\n")
        parent = tip if n == 1 else f":{n - 1}"
        ops = [f"from {parent}", f"merge {commit}"]
        for c in changes:
            ops.append(
                f"D {_quote(c.path)}" if c.deleted else f"M {c.mode} {c.blob} {_quote(c.path)}"
            )
        chunks.append(("\n".join(ops) + "\n\n").encode())
    fd, marks = tempfile.mkstemp(prefix="swarmd-marks-", dir=repo._common)
    os.close(fd)
    try:
        await repo._git(
            "fast-import",
            "--quiet",
            "--done",
            f"--export-marks={marks}",
            cwd=top,
            stdin=b"".join(chunks) + b"done\n",
        )
        text = await asyncio.to_thread(Path(marks).read_text)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(marks)
        await repo._update_refs(f"delete {ref}")
    ids = dict(line.split() for line in text.splitlines() if line.startswith(":"))
    return [ids[f":{n}"] for n in range(1, len(merges) + 1)]
