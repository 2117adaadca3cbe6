"""Waiting until commits have landed on the user's branch.

A dependent may start from its parents' commits before their merge into the
user's branch (the orchestrator dispatches it on their ``WorkCommitted``
events). It must not be merged first: its merge would carry its parents'
unmerged work along, and a parent whose merge then conflicts would be merged
anyway. So before merging, such a dependent waits with :func:`wait_landed`
until every one of those commits is reachable from the user's HEAD.

Batches landed by this process wake the waiters at once
(:func:`notify_landed`, called by the integrator after each batch); landings
made by another process are noticed by looking again every ``poll`` seconds.
The wait has no deadline of its own: when a parent's merge fails, the
orchestrator cancels its dependents, and the subtask's timeout bounds it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Sequence

from swarmd.plugins.runtime.worktree.model import WorktreeError
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["notify_landed", "wait_landed"]

# Set (and replaced) whenever a batch landed, per (event loop, repository top level).
_LANDED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Event]] = (
    weakref.WeakKeyDictionary()
)


def _event(top: str) -> asyncio.Event:
    known = _LANDED.setdefault(asyncio.get_running_loop(), {})
    return known.setdefault(top, asyncio.Event())


def notify_landed(repo: RepoBase) -> None:
    """Wake every :func:`wait_landed` of ``repo`` in this event loop (a batch landed)."""
    if repo._top is None:
        return
    known = _LANDED.setdefault(asyncio.get_running_loop(), {})
    old = known.pop(str(repo._top), None)
    if old is not None:
        old.set()


async def _missing(repo: RepoBase, commits: Sequence[str]) -> bool:
    """True while some of ``commits`` is not reachable from HEAD (in process, or one git call)."""
    head = await repo._ref("HEAD")
    if head is not None:
        engine = await repo._libgit()
        known = [await engine.is_ancestor(c, head) for c in commits]
        if all(k is not None for k in known):
            return not all(known)
    run = await repo._git("rev-list", "--max-count=1", *commits, "^HEAD", "--", check=False)
    if run.rc != 0:
        raise WorktreeError(f"cannot tell whether {', '.join(c[:12] for c in commits)} landed: {run.error}")
    return bool(run.out.strip())


async def wait_landed(repo: RepoBase, commits: Sequence[str], *, poll: float = 1.0) -> None:
    """Return once every commit of ``commits`` is reachable from the user's HEAD."""
    if not commits:
        return
    top = str(await repo.toplevel())
    while True:
        landed = _event(top)  # taken before looking, so no landing is missed
        if not await _missing(repo, commits):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll):
                await landed.wait()
