"""The files of a lazy worktree as the tools see them: what is not written yet, and writing it.

:class:`LazyFiles` is what :class:`~swarmd.plugins.tool.ToolContext` calls
(its ``files``) while it resolves a path: it knows the worktree's
skip-worktree entries (read once from the index), checks entries out on
demand (``git checkout-index`` then ``git update-index --no-skip-worktree``,
one batched call each), lists the directories and files that exist only in
the index, and reads such files from the object store for grep
(:mod:`.blobs`). Its methods block (they run git) and are meant to run off
the event loop; one lock per worktree serialises them. See :mod:`swarmd.plugins.runtime.worktree.lazy`.
"""

from __future__ import annotations

import os
import subprocess
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from swarmd.plugins.runtime.worktree import lazystage
from swarmd.plugins.runtime.worktree.blobs import BlobReader
from swarmd.plugins.runtime.worktree.git import git_env
from swarmd.plugins.runtime.worktree.model import WorktreeError

__all__ = ["MARKER", "LazyFiles", "admin_dir", "files_for", "is_lazy"]

#: In the worktree's administrative folder while the worktree is lazy.
MARKER = "swarmd-lazy"


def admin_dir(path: Path) -> Path | None:
    """The administrative folder (``.git/worktrees/<name>``) of the worktree at ``path``."""
    try:
        text = (Path(path) / ".git").read_text()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    admin = Path(text[len("gitdir: ") :].strip())
    return admin if admin.is_absolute() else Path(path) / admin


def is_lazy(path: Path) -> bool:
    """Whether the worktree at ``path`` is lazy (some files not written yet)."""
    admin = admin_dir(path)
    return admin is not None and (admin / MARKER).exists()


_FILES: weakref.WeakValueDictionary[str, LazyFiles] = weakref.WeakValueDictionary()
_FILES_LOCK = threading.Lock()


def files_for(path: Path, *, timeout: float = 120.0) -> LazyFiles:
    """The one :class:`LazyFiles` of the worktree at ``path`` in this process (while in use)."""
    key = os.path.realpath(path)
    with _FILES_LOCK:
        found = _FILES.get(key)
        if found is None:
            found = _FILES[key] = LazyFiles(Path(key), timeout=timeout)
        return found


class _Listing:
    """Files by path with their blobs, and the folders they make (for listings)."""

    def __init__(self) -> None:
        #: Entry path -> blob id.
        self.files: dict[str, str] = {}
        #: Folder ('' for the top) -> how many of the files lie below it.
        self.below: dict[str, int] = {}
        #: Folder -> {name: is a folder} of what lies directly in it.
        self.children: dict[str, dict[str, bool]] = {}

    def add(self, rel: str, oid: str) -> None:
        self.files[rel] = oid
        parts = rel.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            self.below[parent] = self.below.get(parent, 0) + 1
            self.children.setdefault(parent, {})[parts[depth]] = depth < len(parts) - 1

    def drop(self, rel: str) -> None:
        if self.files.pop(rel, None) is None:
            return
        parts = rel.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            parent = "/".join(parts[:depth])
            here = "/".join(parts[: depth + 1])
            if depth == len(parts) - 1 or self.below.get(here, 0) == 0:
                self.children.get(parent, {}).pop(parts[depth], None)
            self.below[parent] -= 1
            if self.below[parent] == 0:
                del self.below[parent]
                self.children.pop(parent, None)


# The files of a start commit (links and submodules aside), shared by every lazy
# worktree of it in this process: a worktree keeps only what differs from it.
_LISTINGS: OrderedDict[str, _Listing] = OrderedDict()
_KEEP_LISTINGS = 4
_LISTINGS_LOCK = threading.Lock()


class LazyFiles:
    """A lazy worktree's entries not written yet, and writing them on demand.

    What is not written yet is the start commit's files (a listing shared by
    every worktree of that commit) less :attr:`_written`, plus
    :attr:`_extra` (skip-worktree entries that differ from the start commit,
    rare), all read once from the index.
    """

    def __init__(self, root: Path, *, timeout: float = 120.0) -> None:
        self.root = Path(os.path.realpath(root))
        self.timeout = timeout
        self._lock = threading.RLock()
        self._loaded = False
        self._active = True
        self._base = _Listing()
        #: Files of the base written (or gone from the index) since the start.
        self._written: set[str] = set()
        #: Folder -> how many of :attr:`_written` lie below it.
        self._written_below: dict[str, int] = {}
        self._extra = _Listing()

    # -- state -----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether some files are still not written (False once materialized whole)."""
        with self._lock:
            self._load()
            return self._active

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        admin = admin_dir(self.root)
        try:
            marker = (admin / MARKER).read_text().split() if admin is not None else None
        except FileNotFoundError:
            marker = None
        if marker is None:
            self._active = False
            return
        if len(marker) > 1:
            self._base = self._listing(marker[1])
        base, seen = self._base.files, set()
        for item in self._git("ls-files", "-t", "-s", "-z").split(b"\0"):
            if not item.startswith(b"S "):
                continue
            meta, _, name = item[2:].partition(b"\t")
            fields = meta.split(b" ")
            if len(fields) == 3 and fields[2] == b"0":
                rel, oid = os.fsdecode(name), fields[1].decode()
                seen.add(rel)
                if base.get(rel) != oid:
                    self._extra.add(rel, oid)
        for rel in base:
            if rel not in seen or rel in self._extra.files:
                self._mark_written(rel)

    def _listing(self, start: str) -> _Listing:
        with _LISTINGS_LOCK:
            listing = _LISTINGS.get(start)
            if listing is not None:
                _LISTINGS.move_to_end(start)
                return listing
            listing = _Listing()
            for entry in self._git("ls-tree", "-r", "-z", "--full-tree", start).split(b"\0"):
                meta, _, name = entry.partition(b"\t")
                fields = meta.split(b" ")
                if len(fields) == 3 and fields[1] == b"blob" and fields[0] != b"120000":
                    listing.add(os.fsdecode(name), fields[2].decode())
            _LISTINGS[start] = listing
            while len(_LISTINGS) > _KEEP_LISTINGS:
                _LISTINGS.popitem(last=False)
            return listing

    def _mark_written(self, rel: str) -> None:
        self._written.add(rel)
        parts = rel.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            self._written_below[parent] = self._written_below.get(parent, 0) + 1

    def _pending_file(self, rel: str) -> bool:
        return rel in self._extra.files or (rel in self._base.files and rel not in self._written)

    def _pending_dir(self, rel: str) -> bool:
        if self._extra.below.get(rel, 0):
            return True
        return self._base.below.get(rel, 0) > self._written_below.get(rel, 0)

    def _drop(self, rel: str) -> None:
        self._extra.drop(rel)
        if rel in self._base.files and rel not in self._written:
            self._mark_written(rel)

    # -- queries -----------------------------------------------------------------------

    def blob_id(self, rel: str) -> str | None:
        """The blob of entry ``rel`` when it is not written yet, else None."""
        with self._lock:
            self._load()
            if rel in self._extra.files:
                return self._extra.files[rel]
            return self._base.files.get(rel) if rel not in self._written else None

    def children(self, rel: str) -> dict[str, bool]:
        """Entries of directory ``rel`` not written yet: {name: is a directory}."""
        with self._lock:
            self._load()
            if not self._active:
                return {}
            found: dict[str, bool] = {}
            for name, is_dir in self._base.children.get(rel, {}).items():
                path = f"{rel}/{name}" if rel else name
                if self._pending_dir(path) if is_dir else self._pending_file(path):
                    found[name] = is_dir
            found.update(self._extra.children.get(rel, {}))
            return found

    # -- materializing -------------------------------------------------------------------

    def prepare(self, rel: str) -> None:
        """Make ``rel`` usable: write the entries on its way (itself, or a parent that
        is a file or a link), or create it when it is a directory only the index has."""
        with self._lock:
            self._load()
            if not self._active:
                return
            parts = rel.split("/") if rel else []
            wanted = ["/".join(parts[: d + 1]) for d in range(len(parts))]
            entries = [p for p in wanted if self._pending_file(p)]
            if entries:
                self._checkout(entries)
            elif rel and self._pending_dir(rel):
                os.makedirs(self.root / rel, exist_ok=True)

    def materialize(self, rels: Iterable[str]) -> None:
        """Write the entries ``rels`` (those not written yet; others are left alone)."""
        with self._lock:
            self._load()
            entries = [r for r in dict.fromkeys(rels) if self._pending_file(r)]
            if entries:
                self._checkout(entries)

    def materialize_all(self) -> None:
        """Write every entry; the worktree is a full checkout afterwards."""
        with self._lock:
            self._load()
            if not self._active:
                return
            pending = [r for r in self._base.files if r not in self._written]
            pending += list(self._extra.files)
            if pending:
                self._checkout(pending)
            admin = admin_dir(self.root)
            if admin is not None:
                (admin / MARKER).unlink(missing_ok=True)
            self._active = False
            self._base = self._extra = _Listing()
            self._written.clear()
            self._written_below.clear()

    def _checkout(self, entries: list[str]) -> None:
        # A file already on disk (a fast-forward may write some) is what the entry
        # holds; only missing ones are written, never over an existing file.
        missing = [e for e in entries if not os.path.lexists(self.root / e)]
        admin = admin_dir(self.root)
        before = lazystage.identity(admin / "index") if admin is not None else None
        if missing:
            self._git("checkout-index", "--ignore-skip-worktree-bits", "-u", "-z", "--stdin", stdin=_z(missing))
        self._git("update-index", "--no-skip-worktree", "-z", "--stdin", stdin=_z(entries))
        if admin is not None:
            lazystage.checked_out_more(admin / "index", before, entries)
        for entry in entries:
            self._drop(entry)

    def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        try:
            run = subprocess.run(
                ["git", *args],
                cwd=self.root,
                env=git_env(None),
                input=stdin,
                capture_output=True,
                timeout=self.timeout,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WorktreeError(f"git {args[0]} timed out after {self.timeout:g}s in {self.root}") from None
        if run.returncode != 0:
            err = (run.stderr or run.stdout).decode("utf-8", "replace").strip()
            raise WorktreeError(f"git {' '.join(args[:2])} failed in {self.root}: {err}")
        return run.stdout

    # -- reading without writing -------------------------------------------------------

    def open_blobs(self) -> BlobReader:
        """A reader of entries not written yet (close it, or use it in a ``with``)."""
        return BlobReader(self.root, self.blob_id, self._git)


def _z(names: list[str]) -> bytes:
    return b"".join(os.fsencode(n) + b"\0" for n in names)
