"""In-process git (libgit2 through pygit2) for the steps every sub-agent takes.

Each mutating sub-agent checks out its worktree, commits its work, has its
changes listed for the merge and its worktree checked clean before removal.
Through git's command line that is six processes per sub-agent; with a
hundred sub-agents at once on two cores their start-up alone costs more
than the work. libgit2 does the same steps in this process, from a worker
thread (pygit2 releases the GIL inside libgit2), reading the same index,
objects and refs with the same locking (``index.lock``, objects written to
a temporary file and renamed), so git processes running beside it see
nothing unusual.

Only where libgit2 and git agree exactly. A repository is handled here
unless one of these sends it back to git's command line (decided once per
repository, see :func:`Engine.usable`):

* ``SWARMD_GIT_ENGINE=cli`` (or the executor option ``worktree.git_engine``);
* pygit2 is not installed;
* an object format other than SHA-1, a split or sparse index;
* a configured filter driver (``filter.<name>.clean`` or ``.process``,
  for example Git LFS): libgit2 would store the file unfiltered;
* submodules (a ``.gitmodules`` file): ``git status`` judges them its own way.

Lazy worktrees (:mod:`.lazy`) are staged by :mod:`.lazystage`, which keeps
git's convention for skip-worktree entries (libgit2's ``add_all`` does not)
and declines where its view could differ from git's. Any libgit2
error on a step falls back to git's command line for that step, so the
engine can only save time, never fail a sub-agent git would not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmd.plugins.runtime.worktree.git import GIT_IDENTITY
from swarmd.plugins.runtime.worktree.lazyfiles import is_lazy
from swarmd.plugins.runtime.worktree.lazystage import changes as lazy_changes
from swarmd.plugins.runtime.worktree.lazystage import stage_lazy
from swarmd.plugins.runtime.worktree.lazystage import written as stage_lazy_written

__all__ = ["ENGINE_ENV", "ENGINES", "Engine", "Snapshot", "TreeChange", "available"]

#: Environment variable choosing the engine: ``auto`` (default) or ``cli``.
ENGINE_ENV = "SWARMD_GIT_ENGINE"
ENGINES = ("auto", "cli")

#: pygit2 once :func:`available` imported it (None before, or when it is not installed).
_pygit2: Any = None
_MISSING = False


@dataclass(frozen=True)
class TreeChange:
    """One file changed between two trees: its path, new mode and blob (octal, hex)."""

    path: str
    mode: str
    blob: str
    deleted: bool


@dataclass(frozen=True)
class Snapshot:
    """A worktree staged whole and committed (:meth:`Engine.commit_all`), as hex ids.

    ``head`` is the commit HEAD was on before (the agent's own commits
    included) and ``on`` the ref HEAD is on (``HEAD`` when detached);
    ``commit`` is the new commit on ``head``, empty when the staged tree is
    ``head``'s own.
    """

    head: str
    on: str
    commit: str
    #: What ``commit`` changed from ``head`` (``diff-tree -r --no-renames``), when the
    #: staging knew it; None when only comparing the trees would tell.
    changes: list[TreeChange] | None = None


_POOL: concurrent.futures.ThreadPoolExecutor | None = None

#: Tree changes :meth:`Engine.merge_disjoint` merges itself (no deletion, hence no rename).
_SIMPLE: frozenset[int] = frozenset()


def _is_oid(text: str) -> bool:
    """A full SHA-1 object id (what the in-process steps take; names go to git)."""
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def available() -> bool:
    """Whether pygit2 is installed, importing it on first use.

    A process that never writes a worktree (the orchestrator, the result
    store, a client) does not load libgit2: importing it costs about 11 MB.
    """
    global _pygit2, _MISSING, _SIMPLE
    if _pygit2 is None and not _MISSING:
        try:
            import pygit2
        except ImportError:  # pragma: no cover - exercised by whichever is installed
            _MISSING = True
            return False
        _SIMPLE = frozenset({pygit2.enums.DeltaStatus.ADDED, pygit2.enums.DeltaStatus.MODIFIED})
        _pygit2 = pygit2
    return _pygit2 is not None

# (top, mode) -> (config stamp, refusal): what usable() decided, while the config is the same.
_REFUSALS: dict[tuple[str, str], tuple[tuple[int, int, bool], str]] = {}


def _config_stamp(top: Path) -> tuple[int, int, bool] | None:
    """The repository config's (mtime, size) and whether ``.gitmodules`` exists; None: do not cache."""
    try:
        st = (top / ".git" / "config").stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, (top / ".gitmodules").exists()


# Object store (folder, device, inode) -> the libgit2 object database every step of this process
# opens its repositories with: libgit2's is thread-safe, so the pack indexes are opened and
# the objects read once, not again for each step's Repository (a commit on a 10,000-file
# repository read its 160 trees back each time).
_ODBS: dict[tuple[str, int, int], Any] = {}
_ODBS_LOCK = threading.Lock()
_MAX_ODBS = 64
# A repository's (or worktree's) git folder -> its object store's folder, resolved once.
_OBJECTS: dict[str, str] = {}
_MAX_KNOWN_PATHS = 10_000


def _shared_odb(repo: Any) -> Any:
    """The object database shared for ``repo``'s object store (opened from ``repo`` the first time)."""
    objects = _OBJECTS.get(repo.path)
    try:
        if objects is None:
            found = Path(repo.path) / "objects"
            if not found.is_dir():  # a linked worktree: its objects are the common folder's
                found = Path(repo.path) / (Path(repo.path) / "commondir").read_text().strip() / "objects"
            objects = str(found.resolve())
            if len(_OBJECTS) >= _MAX_KNOWN_PATHS:
                _OBJECTS.clear()
            _OBJECTS[repo.path] = objects
        st = os.stat(objects)
    except OSError:
        return None
    key = (objects, st.st_dev, st.st_ino)
    with _ODBS_LOCK:
        odb = _ODBS.get(key)
        if odb is None:
            if len(_ODBS) >= _MAX_ODBS:
                _ODBS.clear()
            odb = _ODBS[key] = repo.odb
        return odb


def _open(path: Path) -> Any:
    """``pygit2.Repository(path)`` reading objects through the process's shared object database."""
    assert _pygit2 is not None
    repo = _pygit2.Repository(str(path))
    odb = _shared_odb(repo)
    if odb is not None:
        repo.set_odb(odb)
    return repo


def _background_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for checkouts written in the background: one per core, at most four."""
    global _POOL
    if _POOL is None:
        workers = max(1, min(4, os.cpu_count() or 1))
        _POOL = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="swarmd-checkout")
    return _POOL


class Engine:
    """libgit2 for one repository's hot steps; every method returns None to mean "use git"."""

    def __init__(self, top: Path, mode: str | None = None) -> None:
        self.top = top
        self.mode = (mode or os.environ.get(ENGINE_ENV) or "auto").strip().lower()
        if self.mode not in ENGINES:
            raise ValueError(f"git engine {self.mode!r} is not one of {', '.join(ENGINES)}")
        self._usable: bool | None = None
        #: Why the repository is left to git's command line, when it is.
        self.reason = ""

    # -- whether ------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether libgit2 may handle this repository (decided once per engine,
        and once per process while the repository's config is unchanged)."""
        if self._usable is None:
            stamp = _config_stamp(self.top)
            key = (str(self.top), self.mode)
            known = _REFUSALS.get(key)
            if stamp is not None and known is not None and known[0] == stamp:
                self.reason = known[1]
            else:
                self.reason = self._refusal()
                if stamp is not None:
                    _REFUSALS[key] = (stamp, self.reason)
            self._usable = not self.reason
        return self._usable

    def _refusal(self) -> str:
        if self.mode == "cli":
            return f"{ENGINE_ENV}=cli"
        if not available():
            return "pygit2 is not installed"
        if (self.top / ".gitmodules").exists():
            return "the repository has submodules"
        try:
            config = _pygit2.Repository(str(self.top)).config
            entries = {e.name.lower(): e.value or "" for e in config}
        except (_pygit2.GitError, OSError, ValueError) as exc:
            return f"libgit2 cannot open the repository ({exc})"
        if entries.get("extensions.objectformat", "sha1").lower() != "sha1":
            return "its object format is not SHA-1"
        for key in ("core.splitindex", "index.sparse", "core.sparsecheckoutcone"):
            if entries.get(key, "false").lower() in ("true", "yes", "on", "1"):
                return f"{key} is set"
        if any(k.startswith("filter.") and k.endswith((".clean", ".process")) for k in entries):
            return "a filter driver is configured"
        return ""

    # -- steps (each on a worker thread) ---------------------------------------------

    async def check_out(self, path: Path, paths: list[str] | None = None, *, background: bool = False) -> bool:
        """Write the index and files of a new worktree's HEAD (``read-tree --reset -u HEAD``),
        or only those of ``paths``. ``background`` checkouts run on their own
        threads, so they never hold up the short steps of other sub-agents."""
        if not self.usable():
            return False
        if background:
            loop = asyncio.get_running_loop()
            done = await loop.run_in_executor(_background_pool(), self._guard, self._check_out, path, paths)
            return done is True
        return await asyncio.to_thread(self._guard, self._check_out, path, paths) is True

    async def add_and_write_tree(self, path: Path) -> str | None:
        """Stage everything (``add -A``) and return the index's tree; None: use git."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._add_and_write_tree, path)
        return found if isinstance(found, str) else None

    async def commit(self, path: Path, tree: str, parent: str, message: str) -> str | None:
        """Write a commit object (``commit-tree``, swarmd's identity); None: use git."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._commit, path, tree, parent, message)
        return found if isinstance(found, str) else None

    async def commit_all(self, path: Path, message: str) -> Snapshot | None:
        """Stage everything (``add -A``, lazy worktrees included) and commit it
        onto HEAD if the tree changed (``commit-tree``; HEAD's ref is left to
        the caller), in one step on a worker thread; None: use git."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._commit_all, path, message)
        return found if isinstance(found, Snapshot) else None

    async def merge_disjoint(self, a: str, b: str, message: str) -> str | None:
        """What ``_merge_dependencies`` makes of commits ``a`` and ``b``, when it is simple:
        ``a`` when ``b`` is in its history, ``b`` when ``a`` is in ``b``'s, else
        the merge commit (``commit-tree``: swarmd's identity, the newer
        commit's time at +0000, ``message``) of a merge in which the two sides
        only added or edited files, none the same (so no rename can be at
        play and git's merge writes the same tree). None: ask git."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._merge_disjoint, a, b, message)
        return found if isinstance(found, str) else None

    async def list_files(self, commit: str) -> list[tuple[int, bytes]] | None:
        """Every entry of ``commit``'s tree that is not a folder, as (mode, path)
        in git's order (``ls-tree -r --full-tree``); None: use git."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._list_files, commit)
        return found if isinstance(found, list) else None

    async def changes(self, a: str, b: str) -> list[TreeChange] | None:
        """Files changed from commit ``a`` to ``b`` (``diff-tree -r --no-renames``)."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._changes, a, b)
        return found if isinstance(found, list) else None

    async def is_ancestor(self, a: str, b: str) -> bool | None:
        """``git merge-base --is-ancestor a b`` (``a == b`` counts) for two commit ids; None: use git."""
        if not (_is_oid(a) and _is_oid(b) and self.usable()):
            return None
        if a == b:
            return True
        found = await asyncio.to_thread(self._guard, self._descends, b, a)
        return found if isinstance(found, bool) else None

    async def changed_paths(self, a: str, b: str) -> list[str] | None:
        """``git diff-tree -r --name-only --no-renames a b`` for two commit ids; None: use git."""
        if not (_is_oid(a) and _is_oid(b) and self.usable()):
            return None
        found = await asyncio.to_thread(self._guard, self._changed_paths, a, b)
        return found if isinstance(found, list) else None

    async def is_clean(self, path: Path) -> bool | None:
        """``git status --untracked-files=all`` shows nothing; None: use git."""
        if not self.usable():
            return None
        found = await asyncio.to_thread(self._guard, self._is_clean, path)
        return found if isinstance(found, bool) else None

    def is_clean_now(self, path: Path) -> bool | None:
        """:meth:`is_clean` on the calling thread (for a caller already on a worker thread)."""
        if not self.usable():
            return None
        found = self._guard(self._is_clean, path)
        return found if isinstance(found, bool) else None

    def _guard(self, step: Any, *args: Any) -> Any:
        assert _pygit2 is not None
        try:
            return step(*args)
        except (_pygit2.GitError, OSError, ValueError, KeyError, AttributeError):
            return None

    def _check_out(self, path: Path, paths: list[str] | None) -> bool:
        assert _pygit2 is not None
        repo = _open(path)
        if paths is None:
            repo.checkout_head(strategy=_pygit2.enums.CheckoutStrategy.FORCE)
        else:
            repo.checkout_head(strategy=_pygit2.enums.CheckoutStrategy.FORCE, paths=paths)
        return True

    def _add_and_write_tree(self, path: Path) -> str | None:
        staged = self._stage(path)
        if staged is None:
            return None
        index = staged[0].index
        index.write()
        return str(index.write_tree())

    def _stage(self, path: Path) -> tuple[Any, Any, list[str] | None] | None:
        """``add -A`` into the worktree's index in memory, or None to use git: the
        repository; for a lazy worktree, also the tree its index held before
        (free while the index's cached trees are valid) and the paths staged or
        removed, the only entries that can differ from that tree."""
        assert _pygit2 is not None
        repo = _open(path)
        if not is_lazy(path):
            repo.index.add_all()
            return repo, None, None
        before = repo.index.write_tree()
        touched = stage_lazy(repo, path)
        if touched is None:
            return None
        return repo, before, touched

    def _commit_all(self, path: Path, message: str) -> Snapshot | None:
        staged = self._stage(path)
        if staged is None:
            return None
        repo, before, touched = staged
        index = repo.index
        tree = index.write_tree()  # first: the index file keeps the trees it cached
        index.write()
        if touched is not None:
            stage_lazy_written(repo)
        head = repo.head  # raises GitError on an unborn branch: git's command line then
        parent = repo[head.target]
        on = "HEAD" if repo.head_is_detached else head.name
        if parent.tree_id == tree:
            return Snapshot(str(parent.id), on, "")
        new = self._commit(path, str(tree), str(parent.id), message, repo)
        changes = None
        if touched is not None and before == parent.tree_id:
            found = lazy_changes(parent.tree, index, touched)
            changes = None if found is None else [TreeChange(*c) for c in found]
        return Snapshot(str(parent.id), on, new, changes)

    def _commit(self, path: Path, tree: str, parent: str, message: str, repo: Any = None) -> str:
        assert _pygit2 is not None
        repo = repo or _open(path)
        author = _pygit2.Signature(GIT_IDENTITY["GIT_AUTHOR_NAME"], GIT_IDENTITY["GIT_AUTHOR_EMAIL"])
        committer = _pygit2.Signature(GIT_IDENTITY["GIT_COMMITTER_NAME"], GIT_IDENTITY["GIT_COMMITTER_EMAIL"])
        oid = repo.create_commit(None, author, committer, message, _pygit2.Oid(hex=tree), [_pygit2.Oid(hex=parent)])
        return str(oid)

    def _merge_disjoint(self, a: str, b: str, message: str) -> str | None:
        assert _pygit2 is not None
        repo = _open(self.top)
        oa, ob = _pygit2.Oid(hex=a), _pygit2.Oid(hex=b)
        base = repo.merge_base(oa, ob)
        if base is None:
            return None
        if base == ob:
            return a
        if base == oa:
            return b
        ca, cb, common = repo[oa], repo[ob], repo[base]
        touched: list[set[str]] = []
        for side in (ca, cb):
            paths: set[str] = set()
            for delta in repo.diff(common.tree, side.tree).deltas:
                if delta.status not in _SIMPLE:
                    return None
                paths.add(delta.new_file.path)
            touched.append(paths)
        if touched[0] & touched[1]:
            return None
        index = repo.merge_trees(common.tree, ca.tree, cb.tree)
        if index.conflicts is not None:
            return None
        tree = index.write_tree(repo)
        when = max(ca.commit_time, cb.commit_time)
        author = _pygit2.Signature(GIT_IDENTITY["GIT_AUTHOR_NAME"], GIT_IDENTITY["GIT_AUTHOR_EMAIL"], when, 0)
        committer = _pygit2.Signature(GIT_IDENTITY["GIT_COMMITTER_NAME"], GIT_IDENTITY["GIT_COMMITTER_EMAIL"], when, 0)
        # commit-tree -m ends the message with a newline: the same bytes, the same commit.
        return str(repo.create_commit(None, author, committer, message.rstrip("\n") + "\n", tree, [oa, ob]))

    def _list_files(self, commit: str) -> list[tuple[int, bytes]]:
        assert _pygit2 is not None
        repo = _open(self.top)
        out: list[tuple[int, bytes]] = []
        folder = int(_pygit2.enums.FileMode.TREE)

        def walk(tree: Any, prefix: bytes) -> None:
            for entry in tree:
                path = prefix + entry.raw_name
                if entry.filemode == folder:
                    walk(repo[entry.id], path + b"/")
                else:
                    out.append((entry.filemode, path))

        walk(repo[_pygit2.Oid(hex=commit)].peel(_pygit2.Tree), b"")
        return out

    def _changes(self, a: str, b: str) -> list[TreeChange]:
        assert _pygit2 is not None
        repo = _open(self.top)
        out: list[TreeChange] = []
        for delta in repo.diff(a, b).deltas:
            deleted = delta.status == _pygit2.enums.DeltaStatus.DELETED
            side = delta.old_file if deleted else delta.new_file
            mode = "000000" if deleted else f"{delta.new_file.mode:06o}"
            blob = "0" * 40 if deleted else str(delta.new_file.id)
            out.append(TreeChange(side.path, mode, blob, deleted))
        return out

    def _descends(self, b: str, a: str) -> bool:
        assert _pygit2 is not None
        repo = _open(self.top)
        return bool(repo.descendant_of(_pygit2.Oid(hex=b), _pygit2.Oid(hex=a)))

    def _changed_paths(self, a: str, b: str) -> list[str]:
        assert _pygit2 is not None
        repo = _open(self.top)
        trees = [repo[_pygit2.Oid(hex=x)].peel(_pygit2.Tree) for x in (a, b)]
        deleted = _pygit2.enums.DeltaStatus.DELETED
        return [
            os.fsdecode((d.old_file if d.status == deleted else d.new_file).raw_path)
            for d in repo.diff(trees[0], trees[1]).deltas
        ]

    def _is_clean(self, path: Path) -> bool | None:
        assert _pygit2 is not None
        if is_lazy(path):
            # What add -A would stage is HEAD's tree: nothing to lose (the
            # index is changed in memory only; blobs it hashes are harmless).
            staged = self._stage(path)
            if staged is None:
                return None
            repo, before, touched = staged
            head_tree = repo[repo.head.target].peel(_pygit2.Tree)
            if before == head_tree.id and touched is not None:
                found = lazy_changes(head_tree, repo.index, touched)
                if found is not None:
                    return not found
            return bool(repo.index.write_tree() == head_tree.id)
        repo = _open(path)
        return not repo.status(untracked_files="all", ignored=False)
