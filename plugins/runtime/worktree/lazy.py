"""Lazy worktrees: a checkout whose files are written the first time they are used.

A full checkout of a large repository costs seconds and its whole size on
disk, per sub-agent. A lazy worktree gets the index of its start commit
with every file entry marked *skip-worktree* and no files on disk, the way
VFS for Git and Scalar start a clone; files are then checked out
(materialized) on demand. The sub-agent's view does not change:

* the file tools resolve every path through
  :meth:`~swarmd.plugins.tool.ToolContext.resolve`, which asks the
  worktree's :class:`~swarmd.plugins.runtime.worktree.lazyfiles.LazyFiles` to
  check out the tracked entries on the way (and to create a directory that
  only exists in the index) before the tool reads or writes;
* ``list``, ``glob`` and ``grep`` see the files not yet written too: the
  directories' entries come from the disk and the index together, and grep
  reads a file not yet written from the object store, with attributes such
  as end-of-line conversion applied as they would be on checkout
  (:mod:`.blobs`);
* before anything that sees the raw file system (the bash tool, a health
  check, a process handed the path) the worktree is materialized whole,
  once, and stops being lazy.

Commits stay exact: ``git add -A`` treats a skip-worktree entry whose file
is absent as unchanged (never as deleted), and a materialized entry loses
its bit, so an edit or a deletion of it is recorded; new files are added as
usual. Merges, patches and conflict reports are computed in the object
store and do not look at the files at all.

Symbolic links, submodule entries, a top-level ``AGENTS.md`` and every
``.gitignore`` and ``.gitattributes`` are written at creation (paths resolve
through links, the prompt reads ``AGENTS.md``, and staging reads the rules
from the disk, see :mod:`.lazystage`). A file ``swarmd-lazy`` in the worktree's administrative
folder marks a worktree as lazy until it is materialized whole; it names the
start commit, whose list of files the worktrees of it share in memory.

When
    :class:`CheckoutPolicy`: ``auto`` (the default) checks small
    repositories out in full, below ``lazy_threshold`` files (2,000), since
    materializing has its own cost, and large ones lazily; ``full`` and
    ``lazy`` force either. Executor options ``worktree.checkout`` and
    ``worktree.lazy_threshold`` set it.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from swarmd.plugins.runtime.worktree import lazystage
from swarmd.plugins.runtime.worktree.git import split_z
from swarmd.plugins.runtime.worktree.lazyfiles import MARKER, LazyFiles, files_for, is_lazy
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = [
    "CHECKOUT_MODES",
    "DEFAULT_LAZY_THRESHOLD",
    "CheckoutPolicy",
    "LazyFiles",
    "files_for",
    "is_lazy",
    "layout_of",
    "materialize_all",
    "materialize_patch_paths",
    "populate",
]

CHECKOUT_MODES = ("auto", "full", "lazy")
#: Tracked files from which ``auto`` checks out lazily.
DEFAULT_LAZY_THRESHOLD = 2000
#: Entries written at creation even in a lazy worktree (besides links and submodules).
EAGER_FILES = frozenset({"AGENTS.md"})
#: File names written at creation wherever they are.
EAGER_NAMES = frozenset({".gitignore", ".gitattributes"})
_LINK, _GITLINK = b"120000", b"160000"


@dataclass(frozen=True)
class CheckoutPolicy:
    """How a new worktree's files are checked out: in full or lazily."""

    #: ``auto``, ``full`` or ``lazy``.
    mode: str = "auto"
    #: With ``auto``: repositories with at least this many tracked files are lazy.
    lazy_threshold: int = DEFAULT_LAZY_THRESHOLD

    def __post_init__(self) -> None:
        if self.mode not in CHECKOUT_MODES:
            raise ValueError(f"worktree checkout mode {self.mode!r} is not one of {', '.join(CHECKOUT_MODES)}")
        if self.lazy_threshold < 0:
            raise ValueError(f"worktree lazy threshold {self.lazy_threshold} must not be negative")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> CheckoutPolicy:
        """From executor options ``worktree.checkout`` and ``worktree.lazy_threshold``."""
        mode = options.get("worktree.checkout") or "auto"
        raw = options.get("worktree.lazy_threshold") or ""
        try:
            threshold = int(raw) if raw else DEFAULT_LAZY_THRESHOLD
        except ValueError:
            raise ValueError(f"executor option worktree.lazy_threshold={raw!r} is not a whole number") from None
        return cls(mode, threshold)

    def lazy_for(self, files: int) -> bool:
        """Whether a tree of ``files`` entries is checked out lazily."""
        if self.mode == "auto":
            return files >= self.lazy_threshold
        return self.mode == "lazy"


@dataclass
class _Layout:
    """What every worktree of one start commit begins with."""

    #: Tracked entries of the tree.
    files: int
    #: Entries written even in a lazy worktree.
    eager: list[str]
    #: The index of a lazy worktree (every other entry skip-worktree), once built.
    index: bytes | None = None


# Layouts per (common git directory, start commit), the most recent few.
_LAYOUTS: OrderedDict[tuple[str, str], _Layout] = OrderedDict()
_KEEP_LAYOUTS = 8
# One lock per (event loop, layout key): worktrees of one start wait for one build.
_BUILDING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


async def populate(repo: RepoBase, path: Path, admin: Path, start: str, policy: CheckoutPolicy) -> bool:
    """Write the new worktree's index and (unless lazy) its files; True when lazy.

    The worktree at ``path`` (admin folder ``admin``) is registered and on
    its branch at ``start``, with nothing checked out yet. The lazy index of
    a start commit is built once (``read-tree`` into a scratch index, then
    ``update-index --skip-worktree``) and copied into every worktree of it.
    """
    if policy.mode != "full":
        layout = await layout_of(repo, start, policy)
        if layout.index is not None and policy.lazy_for(layout.files):
            await asyncio.to_thread((admin / "index").write_bytes, layout.index)
            if layout.eager:
                names = b"".join(os.fsencode(n) + b"\0" for n in layout.eager)
                await repo._git("checkout-index", "-u", "-z", "--stdin", cwd=path, stdin=names)
            lazystage.holds(admin / "index", layout.eager)  # the entries without the skip-worktree bit
            await asyncio.to_thread((admin / MARKER).write_text, f"lazy {start}\n")
            return True
    if not await (await repo._libgit()).check_out(path):
        await repo._git("read-tree", "--reset", "-u", "HEAD", cwd=path)
    return False


async def _files_of(repo: RepoBase, start: str) -> list[tuple[bytes, bytes]]:
    """(octal mode, path) of every file, link and submodule of ``start``, in git's order."""
    listed = await (await repo._libgit()).list_files(start)
    if listed is not None:
        return [(b"%06o" % mode, name) for mode, name in listed]
    listing = await repo._git("ls-tree", "-r", "-z", "--full-tree", start)
    out: list[tuple[bytes, bytes]] = []
    for entry in listing.out.split(b"\0"):
        if entry:
            meta, _, name = entry.partition(b"\t")
            out.append((meta.split(b" ", 1)[0], name))
    return out


async def layout_of(repo: RepoBase, start: str, policy: CheckoutPolicy) -> _Layout:
    """The layout of ``start``, its lazy index built when ``policy`` makes it lazy."""
    key = (str(repo._common), start)
    locks = _BUILDING.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(key, asyncio.Lock()):
        layout = _LAYOUTS.get(key)
        if layout is not None:
            _LAYOUTS.move_to_end(key)
        if layout is None or (layout.index is None and policy.lazy_for(layout.files)):
            eager: list[str] = []
            skip: list[bytes] = []
            for mode, name in await _files_of(repo, start):
                rel = os.fsdecode(name)
                if mode in (_LINK, _GITLINK) or rel in EAGER_FILES or rel.rpartition("/")[2] in EAGER_NAMES:
                    eager.append(rel)
                else:
                    skip.append(name)
            layout = _Layout(len(eager) + len(skip), eager)
            if policy.lazy_for(layout.files):
                layout.index = await _lazy_index(repo, start, skip)
            _LAYOUTS[key] = layout
            while len(_LAYOUTS) > _KEEP_LAYOUTS:
                _LAYOUTS.popitem(last=False)
        if len(locks) > 4 * _KEEP_LAYOUTS:
            for stale in [k for k, lock in locks.items() if not lock.locked() and k != key]:
                del locks[stale]
        return layout


async def _lazy_index(repo: RepoBase, start: str, skip: list[bytes]) -> bytes:
    """The index of ``start`` with the ``skip`` entries marked skip-worktree (version 4)."""
    assert repo._common is not None
    scratch = repo._common / "swarmd-new"
    await asyncio.to_thread(scratch.mkdir, exist_ok=True)
    index = scratch / f"lazy-{start}-{os.getpid()}-{id(skip)}.index"
    env = {"GIT_INDEX_FILE": str(index), "GIT_INDEX_VERSION": "4"}
    plain = ("-c", "core.splitIndex=false")
    try:
        await repo._git(*plain, "read-tree", start, env=env)
        if skip:
            names = b"".join(n + b"\0" for n in skip)
            await repo._git(*plain, "update-index", "-z", "--skip-worktree", "--stdin", stdin=names, env=env)
        return await asyncio.to_thread(index.read_bytes)
    finally:
        await asyncio.to_thread(index.unlink, missing_ok=True)


async def materialize_all(path: Path) -> None:
    """Check a lazy worktree out whole (a no-op for any other): before raw file system access."""
    if await asyncio.to_thread(is_lazy, path):
        await asyncio.to_thread(files_for(path).materialize_all)


async def materialize_patch_paths(repo: RepoBase, path: Path, patch: bytes) -> None:
    """Materialize the files a patch touches in a lazy worktree, so ``git apply`` finds them."""
    if not patch.strip() or not await asyncio.to_thread(is_lazy, path):
        return
    run = await repo._git("apply", "--numstat", "-z", "-", cwd=path, stdin=patch, check=False)
    if run.rc != 0:
        return  # the apply itself reports why
    names: list[str] = []
    for item in split_z(run.out):
        parts = item.split("\t", 2)
        if len(parts) == 3 and parts[2]:
            names.append(parts[2])
    if names:
        await asyncio.to_thread(files_for(path).materialize, names)

