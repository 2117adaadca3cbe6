"""One repository as swarmd sees it: git queries, worktree bookkeeping, the lock.

:class:`RepoBase` holds what every operation needs: the top-level and common
git directories, small queries (refs, ancestry, cleanliness), the registered
worktrees, removing a checkout without losing work, and :meth:`RepoBase.exclusive`.

The lock
    Changes to a repository's worktree bookkeeping and to the user's branch
    are serialised per repository by an asyncio lock and, across processes
    on one host, by an ``fcntl`` lock on ``.git/swarmd.lock``. It is held only
    for short steps (claiming a worktree slot, moving the user's branch);
    checkouts, commits and merge computations run outside it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import os
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from swarmd.plugins.runtime.worktree.facts import find_toplevel, hide_swarmd_dir
from swarmd.plugins.runtime.worktree.git import (
    GitRun,
    WtEntry,
    run_git,
    split_z,
)
from swarmd.plugins.runtime.worktree.libgit import Engine
from swarmd.plugins.runtime.worktree.model import (
    BASE_REF_PREFIX,
    BRANCH_PREFIX,
    WORKTREES_DIR,
    NotAGitRepository,
    Worktree,
    WorktreeError,
)
from swarmd.plugins.runtime.worktree.refbatch import Unavailable, reader_for, writer_for

__all__ = ["RepoBase"]

# One asyncio lock per (event loop, repository): asyncio locks are loop-bound.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
# Full commit ids known to be commits, per common git directory (objects never change).
_COMMITS: dict[str, set[str]] = {}




class RepoBase:
    """A repository's queries and bookkeeping shared by every worktree operation."""

    def __init__(
        self, repo: Path | str, *, git_timeout: float = 120.0, lock_timeout: float = 600.0
    ) -> None:
        self.repo = Path(repo)
        self.git_timeout = git_timeout
        self.lock_timeout = lock_timeout
        self._top: Path | None = None
        self._common: Path | None = None
        self._excluded = False
        #: Branch tips this object's commit() left (the merge need not ask again).
        self._tips: dict[str, str] = {}
        #: Where git marks a merge, rebase... in progress (``checkout.not_mergeable_now``).
        self._in_progress_paths: builtins.list[str] | None = None
        #: (base, commit) -> the files changed, when a patch already listed them.
        self._changes: dict[tuple[str, str], builtins.list[Any]] = {}
        #: ``auto`` or ``cli`` (default: $SWARMD_GIT_ENGINE, else auto); see :mod:`.libgit`.
        self.git_engine: str | None = None
        self._engine: Engine | None = None

    # -- basics ------------------------------------------------------------------

    @staticmethod
    async def is_git_repo(path: Path | str, *, timeout: float = 30.0) -> bool:
        """True when ``path`` is inside a git working tree."""
        path = Path(path)
        if not path.is_dir():
            return False
        run = await run_git(
            path, "rev-parse", "--is-inside-work-tree", timeout=timeout, check=False
        )
        return run.rc == 0 and run.text == "true"

    async def toplevel(self) -> Path:
        """The repository's top-level directory (resolved once).

        Asked of git once per folder in the process (managers made at the same
        moment share the answer), and trusted again while that top-level
        folder and its common dir's ``HEAD`` are still there.
        """
        if self._top is None:
            if not self.repo.is_dir():
                raise NotAGitRepository(f"{self.repo} does not exist or is not a directory")
            known = await find_toplevel(self.repo, self.git_timeout)
            self._top, self._common = known
        return self._top

    @property
    def worktrees_root(self) -> Path:
        """``<toplevel>/.swarmd/worktrees`` (call :meth:`toplevel` first)."""
        if self._top is None:
            raise WorktreeError("toplevel() has not been awaited yet")
        return self._top / WORKTREES_DIR

    async def head_commit(self) -> str:
        """The commit HEAD points at; the swarm's base when a swarm starts."""
        top = await self.toplevel()
        head = await self._ref("HEAD")
        if head is None:
            raise NotAGitRepository(f"{top} has no commit yet; make an initial commit first")
        return head

    async def tree_hash(self, commit: str) -> str:
        """The git tree id of ``commit`` (the cache keys on the base's tree)."""
        tree = await self._rev(f"{commit}^{{tree}}")
        if tree is None:
            raise WorktreeError(f"{commit!r} is not a commit in {self.repo}")
        return tree

    async def current_branch(self) -> str | None:
        """The branch checked out in the user's checkout, None when HEAD is detached."""
        run = await self._git("symbolic-ref", "-q", "--short", "HEAD", check=False)
        return run.text if run.rc == 0 else None

    async def _resolve_commit(self, rev: str, what: str) -> str:
        """The commit id ``rev`` names; a full id already seen as a commit is not asked again."""
        known = _COMMITS.setdefault(str(self._common), set())
        if rev in known:
            return rev
        commit = await self._rev(f"{rev}^{{commit}}")
        if commit is None:
            raise WorktreeError(f"{what} {rev!r} is not a commit in {self.repo}")
        if len(known) > 10_000:
            known.clear()
        known.add(commit)
        return commit

    def _known_commit(self, commit: str) -> None:
        """Remember a full commit id made or seen here (no need to resolve it again)."""
        known = _COMMITS.setdefault(str(self._common), set())
        if len(known) > 10_000:
            known.clear()
        known.add(commit)

    async def _is_ancestor(self, a: str, b: str) -> bool:
        known = await (await self._libgit()).is_ancestor(a, b)
        if known is not None:
            return known
        run = await self._git("merge-base", "--is-ancestor", a, b, check=False)
        if run.rc > 1:
            raise WorktreeError(f"git merge-base failed: {run.error}")
        return run.rc == 0

    async def _merge_tree(
        self, ours: str, theirs: str, *, check: bool = True
    ) -> tuple[str | None, builtins.list[str], builtins.list[str]]:
        """Merge two commits in the object store: (tree, conflicted paths, messages).

        The tree is None when git could not merge at all (messages hold why).
        """
        run = await self._git(
            "merge-tree", "--write-tree", "-z", "--name-only", ours, theirs, check=False
        )
        if run.rc not in (0, 1):
            if check:
                raise WorktreeError(f"git merge-tree failed: {run.error}")
            return None, [], [run.error]
        fields = run.out.split(b"\0")
        tree, conflicts, messages, i = fields[0].decode(), [], [], 1
        while run.rc == 1 and i < len(fields) and fields[i]:
            conflicts.append(os.fsdecode(fields[i]))
            i += 1
        i += 1
        # Messages: <path count> NUL <paths> NUL... <type> NUL <message> NUL
        while i < len(fields) and fields[i].isdigit():
            n = int(fields[i])
            if i + n + 2 < len(fields):
                messages.append(fields[i + n + 2].decode("utf-8", "replace").strip())
            i += n + 3
        return tree, conflicts, [m for m in messages if m.startswith("CONFLICT")] or messages

    async def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> GitRun:
        where = cwd or self._top or self.repo
        return await run_git(
            where, *args, timeout=self.git_timeout, check=check, stdin=stdin, env=env
        )

    async def _commit_tree(
        self, tree: str, parents: builtins.list[str], message: str, *, env: dict[str, str] | None = None
    ) -> str:
        """``git commit-tree`` (unsigned, the message on stdin): the new commit's id."""
        args = [a for p in parents for a in ("-p", p)]
        run = await self._git("commit-tree", "--no-gpg-sign", tree, *args, stdin=message.encode(), env=env)
        return run.text

    async def _ref(self, ref: str) -> str | None:
        """The commit ``ref`` (a full ref name or ``HEAD``) points at; None when it does not."""
        return await self._rev(f"{ref}^{{commit}}", trust_missing=True)

    async def _rev(self, rev: str, *, trust_missing: bool = False) -> str | None:
        """The object id ``rev`` names, None when git knows none (see :mod:`.refbatch`).

        The long-lived reader answers first; ``git rev-parse`` answers when the
        reader cannot, and when it reports ``rev`` missing unless
        ``trust_missing`` (a ref, read from disk on every question).
        """
        await self.toplevel()
        assert self._common is not None and self._top is not None
        try:
            found = await reader_for(self._top).resolve(rev, self.git_timeout)
            if found is not None:
                return found.oid
            if trust_missing:
                return None
        except Unavailable:
            pass
        run = await self._git("rev-parse", "--verify", "-q", "--end-of-options", rev, check=False)
        return run.text if run.rc == 0 else None

    async def _update_refs(self, lines: str) -> GitRun:
        """Apply ``update-ref --stdin`` lines all or nothing, combined with concurrent ones."""
        await self.toplevel()
        assert self._common is not None and self._top is not None
        return await writer_for(self._common, self._top, self.git_timeout).apply(lines)

    async def _changed_files(self, a: str, b: str) -> builtins.list[str]:
        known = await (await self._libgit()).changed_paths(a, b)
        if known is not None:
            return known
        return split_z(
            (await self._git("diff-tree", "-r", "--name-only", "-z", "--no-renames", a, b)).out
        )

    async def _libgit(self) -> Engine:
        """The in-process engine for this repository's hot steps (:mod:`.libgit`)."""
        if self._engine is None or self._engine.mode != (self.git_engine or self._engine.mode):
            self._engine = Engine(await self.toplevel(), self.git_engine)
        return self._engine

    async def _is_clean(self, path: Path) -> bool:
        clean = await (await self._libgit()).is_clean(path)
        if clean is not None:
            return clean
        run = await self._git(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
            cwd=path,
            check=False,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
        if run.rc != 0:
            raise WorktreeError(f"cannot tell whether {path} is clean: {run.error}")
        return not run.out

    @staticmethod
    def _never_checked_out(path: Path) -> bool:
        """A worktree whose files were never written: no index, nothing but ``.git``.

        What is left when the process making it died between registering the
        worktree and checking it out; it holds no work, whatever ``git status`` says.
        """
        try:
            gitdir = (path / ".git").read_text().strip().removeprefix("gitdir: ")
            return not (Path(gitdir) / "index").exists() and [p.name for p in path.iterdir()] == [".git"]
        except OSError:
            return False

    async def _is_merged(self, tip: str) -> bool:
        """True when ``tip`` is reachable from HEAD or a local branch outside swarmd/."""
        if await self._ref("HEAD") and await self._is_ancestor(tip, "HEAD"):
            return True
        run = await self._git(
            "for-each-ref", f"--contains={tip}", "--format=%(refname)", "refs/heads/"
        )
        return any(not r.startswith(f"refs/heads/{BRANCH_PREFIX}") for r in run.text.split())

    async def _has_unmerged_work(self, branch: str, tip: str) -> bool:
        base = await self._ref(f"{BASE_REF_PREFIX}{branch.removeprefix(BRANCH_PREFIX)}")
        return tip != base and not await self._is_merged(tip)

    async def branch_worktree(self, branch: str) -> tuple[Path | None, str | None]:
        """Where ``branch`` is checked out (None: nowhere in this repository)
        and the commit it started from (its base ref; None when unknown)."""
        path = next(
            (e.path for e in await self._worktree_entries() if e.branch == f"refs/heads/{branch}"),
            None,
        )
        return path, await self._ref(f"{BASE_REF_PREFIX}{branch.removeprefix(BRANCH_PREFIX)}")

    async def latest_attempt(self, branch: str) -> str:
        """``branch``, or its latest later attempt's ``<branch>@<n>`` checked out here."""
        best, found = 1, branch
        for entry in await self._worktree_entries():
            ref = (entry.branch or "").removeprefix("refs/heads/")
            number = ref.removeprefix(f"{branch}@")
            if number != ref and number.isdigit() and int(number) > best:
                best, found = int(number), ref
        return found

    async def _worktree_entries(self) -> builtins.list[WtEntry]:
        run = await self._git("worktree", "list", "--porcelain", "-z")
        entries: list[WtEntry] = []
        for block in run.out.split(b"\0\0"):
            attrs: dict[str, str] = {}
            for item in block.split(b"\0"):
                key, _, value = os.fsdecode(item).partition(" ")
                if key:
                    attrs[key] = value
            if "worktree" in attrs:
                entries.append(
                    WtEntry(
                        Path(attrs["worktree"]),
                        attrs.get("HEAD"),
                        attrs.get("branch"),
                        attrs.get("locked"),
                        "prunable" in attrs,
                    )
                )
        return entries

    def _admin_dir(self, path: Path) -> Path | None:
        """The administrative folder of the worktree at ``path`` when it is where git puts it."""
        try:
            text = (path / ".git").read_text()
        except OSError:
            return None
        if not text.startswith("gitdir: ") or self._common is None:
            return None
        admin = Path(text[len("gitdir: ") :].strip())
        if admin.parent != self._common / "worktrees" or not admin.is_dir():
            return None
        return admin

    async def _worktree_head(self, path: Path) -> tuple[str, str, str]:
        """A working tree's HEAD commit, its tree, and the ref HEAD is on (``HEAD`` if detached).

        Read from the worktree's own ``HEAD`` file and the reader; ``git
        rev-parse`` in the worktree when its layout is not the plain one.
        """

        def read_head() -> str | None:
            gitdir = self._admin_dir(path)
            if gitdir is None and path == self._top and (path / ".git").is_dir():
                gitdir = path / ".git"  # the main working tree
            try:
                return None if gitdir is None else (gitdir / "HEAD").read_text().strip()
            except OSError:
                return None

        text = await asyncio.to_thread(read_head)
        head = on = None
        if text is not None and text.startswith("ref: refs/"):
            on = text.removeprefix("ref: ")
            head = await self._ref(on)
        elif text is not None and len(text) in (40, 64):
            on, head = "HEAD", text
        tree = None if head is None else await self._rev(f"{head}^{{tree}}")
        if head is not None and tree is not None and on is not None:
            return head, tree, on
        run = await self._git(
            "rev-parse", "HEAD", "HEAD^{tree}", "--symbolic-full-name", "HEAD", cwd=path
        )
        head, tree, on = run.text.split()
        return head, tree, on

    async def _unlock_quick(self, path: Path) -> None:
        """Unlock the worktree at ``path`` without a git process when its layout is plain.

        ``git worktree unlock`` only deletes ``<admin>/locked``; the admin
        folder is named by the worktree's ``.git`` file. Anything unusual
        goes to git.
        """

        def unlink() -> bool:
            admin = self._admin_dir(path)
            if admin is None:
                return False
            try:
                (admin / "locked").unlink()
            except FileNotFoundError:
                pass
            except OSError:
                return False
            return True

        if not await asyncio.to_thread(unlink):
            await self._git("worktree", "unlock", str(path), check=False)

    async def _unlock(self, path: Path) -> None:
        entry = next((e for e in await self._worktree_entries() if e.path == path), None)
        if entry is not None and entry.locked is not None:
            await self._git("worktree", "unlock", str(path), check=False)

    async def _drop_checkout(self, entry: WtEntry, *, force: bool = False) -> bool:
        """Remove a registered checkout (unlocking it); git itself refuses a dirty one
        (unless ``force``: the caller made sure its changes are safe elsewhere)."""
        if entry.locked is not None:
            await self._git("worktree", "unlock", str(entry.path), check=False)
        if entry.prunable or not entry.path.exists():
            await self._git("worktree", "prune")
            return True
        run = await self._git(
            "worktree", "remove", *(["--force"] if force else []), str(entry.path), check=False
        )
        if run.rc != 0:
            return False
        with contextlib.suppress(OSError):
            await asyncio.to_thread(entry.path.parent.rmdir)  # the swarm folder, once empty
        return True

    async def _remove_checkout(self, wt: Worktree, *, keep_branch: bool = False) -> bool:
        """Remove ``wt`` if clean; then delete its branch if that loses nothing."""
        entry = next((e for e in await self._worktree_entries() if e.path == wt.path), None)
        if entry is not None:
            if not entry.prunable and entry.path.exists() and not await self._is_clean(wt.path):
                return False
            if not await self._drop_checkout(entry):
                return False
        tip = await self._ref(f"refs/heads/{wt.branch}")
        if (
            not keep_branch
            and tip is not None
            and not await self._has_unmerged_work(wt.branch, tip)
        ):
            await self._delete_branch(wt.branch)
        return True

    async def _delete_branch(self, branch: str) -> None:
        await self._git("branch", "-q", "-D", branch, check=False)
        await self._git(
            "update-ref",
            "-d",
            f"{BASE_REF_PREFIX}{branch.removeprefix(BRANCH_PREFIX)}",
            check=False,
        )

    async def exclude_swarmd_dir(self) -> None:
        """Hide ``.swarmd/`` (worktrees, the embedded database) from ``git status``."""
        await self.toplevel()
        await self._ensure_excluded()

    async def _ensure_excluded(self) -> None:
        """Hide ``.swarmd/`` from git via ``info/exclude`` (never the tracked .gitignore)."""
        assert self._common is not None
        if not self._excluded:
            await hide_swarmd_dir(self._common)
            self._excluded = True

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[float]:
        """Serialise changes to this repository: in this process, then across processes.

        Yields the seconds spent waiting for the lock.
        """
        top = await self.toplevel()
        assert self._common is not None
        asked = time.monotonic()
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(str(top), asyncio.Lock()):
            fd = await asyncio.to_thread(
                os.open, self._common / "swarmd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            try:
                deadline = time.monotonic() + self.lock_timeout
                delay = 0.005
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise WorktreeError(
                                f"another swarmd process has held {self._common / 'swarmd.lock'} "
                                f"for over {self.lock_timeout:g}s"
                            ) from None
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 0.1)
                yield time.monotonic() - asked
            finally:
                os.close(fd)  # closing releases the flock
