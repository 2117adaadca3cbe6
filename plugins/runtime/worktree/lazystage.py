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
sub-agent touched. Where its view and git's could differ it declines
(returns False) and the caller runs git instead: a nested repository on
disk, an unmerged entry, or a ``.gitignore`` / ``.gitattributes`` that
governs a folder on disk but is not checked out (git reads those from the
index; libgit2 only from the disk). It reads entry flags through pygit2's
C bindings (``pygit2.ffi``), since pygit2's ``IndexEntry`` does not carry
them; if those are missing it declines too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["SKIP_WORKTREE", "stage_lazy"]

#: ``GIT_INDEX_ENTRY_SKIP_WORKTREE`` in an entry's extended flags.
SKIP_WORKTREE = 1 << 14
_STAGE_MASK = 0x3000
#: Files git reads from the index when they are not checked out.
_RULE_FILES = (".gitignore", ".gitattributes")


def _bindings() -> tuple[Any, Any] | None:
    try:
        from pygit2.ffi import C, ffi
    except ImportError:  # pragma: no cover - an older or newer pygit2
        return None
    return ffi, C


def stage_lazy(repo: Any, root: Path) -> bool:
    """Stage the lazy worktree at ``root`` into ``repo.index`` (in memory; the
    caller writes it); False: decline, nothing was changed that matters."""
    bindings = _bindings()
    if bindings is None:
        return False
    ffi, lib = bindings
    index = repo.index
    ptr = getattr(index, "_index", None)
    if ptr is None:
        return False
    # Entries checked out (no skip-worktree bit), and the folders they lie in.
    checked_out: dict[str, bool] = {}
    folders: set[str] = {""}
    for i in range(lib.git_index_entrycount(ptr)):
        entry = lib.git_index_get_byindex(ptr, i)
        if entry.flags & _STAGE_MASK:
            return False  # an unmerged entry: git's rules
        if entry.flags_extended & SKIP_WORKTREE:
            continue
        rel = os.fsdecode(ffi.string(entry.path))
        checked_out[rel] = False
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
                return False
        try:
            listing = list(os.scandir(root / folder if folder else root))
        except FileNotFoundError:
            continue
        for item in listing:
            rel = f"{folder}/{item.name}" if folder else item.name
            if item.is_dir(follow_symlinks=False):
                if item.name == ".git":
                    if folder:
                        return False  # a nested repository: git adds it its own way
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
    for rel, on_disk in checked_out.items():
        if not on_disk:
            index.remove(rel)
    for rel in adds:
        index.add(rel)
    return True


def _skipped(ffi: Any, lib: Any, ptr: Any, rel: str) -> bool:
    """Whether ``rel`` has an entry with the skip-worktree bit."""
    entry = lib.git_index_get_bypath(ptr, os.fsencode(rel), 0)
    return entry != ffi.NULL and bool(entry.flags_extended & SKIP_WORKTREE)
