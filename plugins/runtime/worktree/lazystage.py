"""Staging a lazy worktree in process: git's ``add -A`` where skip-worktree entries stand for themselves.

A lazy worktree (:mod:`.lazy`) has an index of ten thousand entries and a
handful of files on disk: most entries carry git's *skip-worktree* bit and
have no file. git's ``add -A`` and ``status`` leave such an entry as it is
in the index, whatever the disk holds; libgit2's own ``add_all`` does not
follow that convention (it would stage every absent file as deleted). So
:func:`stage_lazy` does what git does, on the calling thread, with libgit2:

* every entry with the skip-worktree bit is left alone;
* every other entry is staged from its file, or removed when the file is
  gone (an edit or a deletion of a checked-out file is recorded);
* every file on disk without an entry is added unless ignored; folders git
  would not look into (ignored, holding no entry that is checked out) are
  not walked.

It walks only what is on disk, which in a lazy worktree is what the
sub-agent touched; the index's entries are walked once to find those that
are checked out, and not again while the index file is the one the caller
wrote after staging (:func:`written`): a worktree's clean check right after
its commit reads only the disk. Where its view and git's could differ it declines
(returns None) and the caller runs git instead: a nested repository on
disk, an unmerged entry, or a ``.gitignore`` / ``.gitattributes`` that
governs a folder on disk but is not checked out (git reads those from the
index; libgit2 only from the disk). It returns the paths it staged or
removed, the only entries that can differ from before, from which the
commit lists its changes without comparing trees. It reads entry flags through pygit2's
C bindings (``pygit2.ffi``), since pygit2's ``IndexEntry`` does not carry
them; if those are missing it declines too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["SKIP_WORKTREE", "changes", "checked_out_more", "holds", "identity", "stage_lazy", "written"]

#: ``GIT_INDEX_ENTRY_SKIP_WORKTREE`` in an entry's extended flags.
SKIP_WORKTREE = 1 << 14
_STAGE_MASK = 0x3000
#: Files git reads from the index when they are not checked out.
_RULE_FILES = (".gitignore", ".gitattributes")
#: Index files remembered at most (one per live lazy worktree; the oldest go first).
MAX_KNOWN = 4096

_LOCK = threading.Lock()
#: Index file -> (its identity when written, the paths checked out in it).
_KNOWN: dict[str, tuple[tuple[int, int, int, bytes], frozenset[str]]] = {}
#: Index file -> paths checked out once staged, until the caller writes it.
_STAGED: dict[str, frozenset[str]] = {}


def _index_file(repo: Any) -> str:
    return _key(os.path.join(repo.path, "index"))


def _key(index_file: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.fspath(index_file))


def identity(index_file: str | os.PathLike[str]) -> tuple[int, int, int, bytes] | None:
    """The index file as written: its inode, size, time and the checksum git ends it with."""
    try:
        fd = os.open(index_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        trailer = os.pread(fd, 20, max(0, st.st_size - 20))
    except OSError:
        return None
    finally:
        os.close(fd)
    return (st.st_ino, st.st_size, st.st_mtime_ns, trailer)


def holds(index_file: str | os.PathLike[str], checked_out: Iterable[str]) -> None:
    """Record that the index file, as it is now, has exactly ``checked_out``
    as its entries without the skip-worktree bit (its other entries have it)."""
    key = _key(index_file)
    now = identity(key)
    with _LOCK:
        _KNOWN.pop(key, None)
        if now is None:
            return
        _KNOWN[key] = (now, frozenset(checked_out))
        while len(_KNOWN) > MAX_KNOWN:
            del _KNOWN[next(iter(_KNOWN))]


def checked_out_more(
    index_file: str | os.PathLike[str], before: tuple[int, int, int, bytes] | None, entries: Iterable[str]
) -> None:
    """``entries`` lost their skip-worktree bit in a rewrite of the index file
    that was ``before``: what was known of it then holds, with them."""
    key = _key(index_file)
    with _LOCK:
        known = _KNOWN.pop(key, None)
    if known is not None and before is not None and known[0] == before:
        holds(key, known[1].union(entries))


def written(repo: Any) -> None:
    """Tell :func:`stage_lazy` that ``repo.index``, staged by it, is now on disk.

    The next staging of that worktree skips the walk over the index's
    entries for as long as the index file is this one.
    """
    index_file = _index_file(repo)
    with _LOCK:
        staged = _STAGED.pop(index_file, None)
    if staged is not None:
        holds(index_file, staged)


def _checked_out_entries(ffi: Any, lib: Any, ptr: Any, index_file: str) -> frozenset[str] | None:
    """The index's entries without the skip-worktree bit; None: an unmerged entry (git's rules)."""
    now = identity(index_file)
    with _LOCK:
        known = _KNOWN.get(index_file)
    if known is not None and now is not None and known[0] == now:
        return known[1]
    return _walk_entries(ffi, lib, ptr)


def _walk_entries(ffi: Any, lib: Any, ptr: Any) -> frozenset[str] | None:
    found: list[str] = []
    for i in range(lib.git_index_entrycount(ptr)):
        entry = lib.git_index_get_byindex(ptr, i)
        if entry.flags & _STAGE_MASK:
            return None
        if entry.flags_extended & SKIP_WORKTREE:
            continue
        found.append(os.fsdecode(ffi.string(entry.path)))
    return frozenset(found)


def _bindings() -> tuple[Any, Any] | None:
    try:
        from pygit2.ffi import C, ffi
    except ImportError:  # pragma: no cover - an older or newer pygit2
        return None
    return ffi, C


def stage_lazy(repo: Any, root: Path) -> list[str] | None:
    """Stage the lazy worktree at ``root`` into ``repo.index`` (in memory; the
    caller writes it) and return the paths staged or removed (every entry
    that may differ from before, sorted); None: decline, nothing was changed
    that matters."""
    bindings = _bindings()
    if bindings is None:
        return None
    ffi, lib = bindings
    index = repo.index
    ptr = getattr(index, "_index", None)
    if ptr is None:
        return None
    # Entries checked out (no skip-worktree bit), and the folders they lie in.
    index_file = _index_file(repo)
    entries = _checked_out_entries(ffi, lib, ptr, index_file)
    if entries is None:
        return None  # an unmerged entry: git's rules
    checked_out = dict.fromkeys(entries, False)
    folders: set[str] = {""}
    for rel in entries:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folders.add("/".join(parts[:depth]))
    adds: list[str] = []
    stack = [""]
    while stack:
        folder = stack.pop()
        for name in _RULE_FILES:
            rule = f"{folder}/{name}" if folder else name
            if rule not in checked_out and _skipped(ffi, lib, ptr, rule) and not os.path.lexists(root / rule):
                return None
        try:
            listing = list(os.scandir(root / folder if folder else root))
        except FileNotFoundError:
            continue
        for item in listing:
            rel = f"{folder}/{item.name}" if folder else item.name
            if item.is_dir(follow_symlinks=False):
                if item.name == ".git":
                    if folder:
                        return None  # a nested repository: git adds it its own way
                    continue
                if rel in folders or not repo.path_is_ignored(rel + "/"):
                    stack.append(rel)
            elif item.is_file(follow_symlinks=False) or item.is_symlink():
                if rel in checked_out:
                    checked_out[rel] = True
                    adds.append(rel)
                elif not _skipped(ffi, lib, ptr, rel) and not repo.path_is_ignored(rel):
                    adds.append(rel)
    # Removals first: a file that became a folder is removed before what the
    # folder holds is added.
    removed = [rel for rel, on_disk in checked_out.items() if not on_disk]
    for rel in removed:
        index.remove(rel)
    for rel in adds:
        index.add(rel)
    with _LOCK:
        _STAGED[index_file] = frozenset(adds)  # what is checked out now
    return sorted(removed + adds)


def changes(tree: Any, index: Any, touched: list[str]) -> list[tuple[str, str, str, bool]] | None:
    """The changes from ``tree`` to ``index`` when the two differ at most in the
    ``touched`` paths (what :func:`stage_lazy` returned, ``tree`` being the
    index's tree before), as ``diff-tree -r --no-renames`` lists them: (path,
    new mode, new blob, deleted), in octal and hex. None where a file and a
    folder trade places (diff-tree then lists the folder's files, which this
    does not walk) or an entry is not a file or a link."""
    blob_modes = (0o100644, 0o100755, 0o120000)
    out: list[tuple[str, str, str, bool]] = []
    for rel in touched:
        try:
            new = index[rel]
        except KeyError:
            new = None
        try:
            old = tree[rel]
        except KeyError:
            old = None
        if (old is not None and old.filemode not in blob_modes) or (new is not None and new.mode not in blob_modes):
            return None
        if old is None and new is None:
            continue
        if new is None:
            out.append((rel, "000000", "0" * 40, True))
        elif old is None or old.id != new.id or old.filemode != new.mode:
            if old is None and not _parents_are_folders(tree, rel):
                return None
            out.append((rel, f"{new.mode:06o}", str(new.id), False))
    return out


def _parents_are_folders(tree: Any, rel: str) -> bool:
    """No folder above ``rel`` is a file in ``tree`` (where a new file would replace it)."""
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        try:
            entry = tree["/".join(parts[:depth])]
        except KeyError:
            return True  # a new folder: nothing below it exists either
        if entry.filemode != 0o040000:
            return False
    return True


def _skipped(ffi: Any, lib: Any, ptr: Any, rel: str) -> bool:
    """Whether ``rel`` has an entry with the skip-worktree bit."""
    entry = lib.git_index_get_bypath(ptr, os.fsencode(rel), 0)
    return entry != ffi.NULL and bool(entry.flags_extended & SKIP_WORKTREE)
