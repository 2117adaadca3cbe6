"""Writing a fresh worktree's files while its sub-agent starts.

A sub-agent's first step is a model call, which needs the worktree's path,
branch and ``AGENTS.md`` but none of its other files. So for a fresh full
checkout :meth:`~.manager.WorktreeManager.create` returns as soon as the
branch is created and the worktree registered (its folder, admin folder and
lock exist, and ``AGENTS.md`` is written), and the rest of the checkout (the
index and every file) and the record of its base are written by a background
task while the model thinks. :attr:`~.model.Worktree.ready` is that task;
everything that reads or writes the files awaits :func:`ready` first: every
tool call (the toolbox's gate), and the manager's commit, patch and remove.

The agent therefore never sees a partial checkout, and the files it sees
are exactly those of a synchronous checkout. A checkout that fails removes
the worktree and its branch as a failed synchronous one does, and the
failure reaches the attempt at its first tool call or at its commit. Only
checkouts written in process (libgit2) are deferred; lazy worktrees (an index
only) and git's command line keep the synchronous path.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from swarmd.plugins.runtime.worktree import lazy
from swarmd.plugins.runtime.worktree.model import WorktreeError
from swarmd.plugins.runtime.worktree.timing import record

if TYPE_CHECKING:
    from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["create_fresh", "eligible", "gate", "ready", "start", "unregister", "write_eager"]


async def eligible(repo: RepoBase, start_commit: str, policy: lazy.CheckoutPolicy) -> bool:
    """Whether a new worktree of ``start_commit`` is a full checkout libgit2 writes."""
    if policy.mode != "full":
        layout = await lazy.layout_of(repo, start_commit, policy)
        if layout.index is not None and policy.lazy_for(layout.files):
            return False
    return (await repo._libgit()).usable()


async def write_eager(repo: RepoBase, path: Path, start_commit: str, policy: lazy.CheckoutPolicy) -> bool:
    """Write the files the prompt reads (:data:`~.lazy.EAGER_FILES`) now, when
    ``start_commit`` has any; False: cannot."""
    layout = await lazy.layout_of(repo, start_commit, policy)
    wanted = sorted(lazy.EAGER_FILES.intersection(layout.eager))
    if not wanted:
        return True
    return await (await repo._libgit()).check_out(path, wanted)


async def create_fresh(
    repo: RepoBase,
    register: Callable[[str, Path], Path | None],
    *,
    policy: lazy.CheckoutPolicy,
    branch: str,
    path: Path,
    start_commit: str,
    base_line: str,
    who: tuple[str, str],
) -> asyncio.Task[None] | None:
    """Create ``branch`` at ``start_commit``, register ``path`` as its worktree
    (``register`` returns the admin folder, None when the folder is taken),
    write the eager files, and start writing the rest; the task that does,
    or None when the slot was taken (nothing is left behind then)."""
    created = await repo._update_refs(f"create refs/heads/{branch} {start_commit}")
    if created.rc != 0:
        return None
    admin: Path | None = None
    try:
        admin = await asyncio.to_thread(register, branch, path)
        if admin is not None and await write_eager(repo, path, start_commit, policy):
            return start(repo, path, admin, branch=branch, start_commit=start_commit, base_line=base_line, who=who)
    except BaseException:
        if admin is not None:
            await asyncio.to_thread(unregister, admin, path)
        await repo._update_refs(f"delete refs/heads/{branch} {start_commit}")
        raise
    if admin is not None:
        await asyncio.to_thread(unregister, admin, path)
    await repo._update_refs(f"delete refs/heads/{branch} {start_commit}")
    return None


def start(
    repo: RepoBase,
    path: Path,
    admin: Path,
    *,
    branch: str,
    start_commit: str,
    base_line: str,
    who: tuple[str, str],
) -> asyncio.Task[None]:
    """Write the rest of the checkout of ``path`` and record its base in the background."""

    async def finish() -> None:
        began = time.monotonic()
        try:
            engine = await repo._libgit()
            if not await engine.check_out(path, background=True):
                await repo._git("read-tree", "--reset", "-u", "HEAD", cwd=path)
            based = await repo._update_refs(base_line)
            if based.rc != 0:
                raise WorktreeError(f"cannot record the base of {branch}: {based.error}")
        except BaseException:
            await asyncio.to_thread(unregister, admin, path)
            await repo._update_refs(f"delete refs/heads/{branch} {start_commit}")
            raise
        record("checkout", who[0], who[1], time.monotonic() - began)

    return asyncio.create_task(finish(), name=f"swarmd-checkout {path.name}")


async def ready(ready_future: asyncio.Future[None] | None) -> None:
    """Wait until a worktree's files are written; WorktreeError if that failed.

    A cancelled caller does not cancel the checkout (another caller, or the
    attempt's wrap-up, may still need it).
    """
    if ready_future is None:
        return
    try:
        await asyncio.shield(ready_future)
    except asyncio.CancelledError:
        if ready_future.cancelled():
            raise WorktreeError("the worktree's checkout was cancelled") from None
        raise
    except WorktreeError:
        raise
    except Exception as exc:
        raise WorktreeError(f"cannot write the worktree's files: {exc}") from exc


def gate(ready_future: asyncio.Future[None] | None) -> Callable[[], Awaitable[None]] | None:
    """What a toolbox awaits before each tool call (None: nothing to wait for)."""
    if ready_future is None:
        return None
    return lambda: ready(ready_future)


def unregister(admin: Path, path: Path) -> None:
    """Remove a worktree's admin folder and its folder (a checkout that failed)."""
    shutil.rmtree(admin, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
