"""Waiting until commits have landed on the user's branch.

A dependent may start from its parents' commits before their merge into the
user's branch (the orchestrator dispatches it on their ``WorkCommitted``
events). It must not be merged first: its merge would carry its parents'
unmerged work along, and a parent whose merge then conflicts would be merged
anyway. So before merging, such a dependent waits with :func:`wait_landed`
until every one of those commits is reachable from the user's HEAD.

Asking git whether a commit is reachable walks the branch's history (and
libgit2 holds the interpreter's lock while it walks), so it is asked as
little as it can be. The integrator tells :func:`notify_landed` which
sub-agent commits each batch it landed made reachable, and from which tip
to which; while HEAD is the tip it left, those commits are known reachable
without asking, and only the waiters whose commits were among them are woken.
Every other case (landings by another process, a commit that became
reachable as the ancestor of a landed one, the user moving the branch) is
noticed by looking again every ``poll`` seconds. The wait has no deadline of
its own: when a parent's merge fails, the orchestrator cancels its
dependents, and the subtask's timeout bounds it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from swarmd.plugins.runtime.worktree.model import WorktreeError
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["notify_landed", "wait_landed"]

#: Commits remembered as reachable from the tip this process left, at most.
_MAX_KNOWN = 100_000


@dataclass
class _Landings:
    """What this process's landings made reachable, and who waits for what."""

    #: The branch tip the last landing left (HEAD must still be there for ``reachable``).
    tip: str = ""
    reachable: set[str] = field(default_factory=set)
    #: commit -> the events of the waiters waiting for it.
    waiters: dict[str, set[asyncio.Event]] = field(default_factory=dict)


# Per (event loop, repository top level).
_STATE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Landings]] = weakref.WeakKeyDictionary()


def _state(top: str) -> _Landings:
    known = _STATE.setdefault(asyncio.get_running_loop(), {})
    return known.setdefault(top, _Landings())


def notify_landed(repo: RepoBase, old: str, new: str, commits: Iterable[str]) -> None:
    """A batch moved the user's branch from ``old`` to ``new`` and made ``commits``
    (the sub-agent commits it merged) reachable: wake those waiting for them."""
    if repo._top is None:
        return
    state = _state(str(repo._top))
    landed = set(commits)
    if state.tip != old or len(state.reachable) > _MAX_KNOWN:
        state.reachable = set()
    state.tip = new
    state.reachable |= landed
    for commit in landed:
        for event in state.waiters.get(commit, ()):
            event.set()


async def _missing(repo: RepoBase, state: _Landings, commits: Sequence[str]) -> bool:
    """True while some of ``commits`` is not reachable from HEAD (in process, or one git call)."""
    head = await repo._ref("HEAD")
    if head is not None and head == state.tip:
        commits = [c for c in commits if c not in state.reachable]
        if not commits:
            return False
    if head is not None:
        engine = await repo._libgit()
        known = [await engine.is_ancestor(c, head) for c in commits]
        if all(k is not None for k in known):
            if all(known) and head == state.tip:
                state.reachable.update(commits)
            return not all(known)
    run = await repo._git("rev-list", "--max-count=1", *commits, "^HEAD", "--", check=False)
    if run.rc != 0:
        raise WorktreeError(f"cannot tell whether {', '.join(c[:12] for c in commits)} landed: {run.error}")
    return bool(run.out.strip())


async def wait_landed(repo: RepoBase, commits: Sequence[str], *, poll: float = 1.0) -> None:
    """Return once every commit of ``commits`` is reachable from the user's HEAD."""
    if not commits:
        return
    state = _state(str(await repo.toplevel()))
    woken = asyncio.Event()
    for commit in commits:  # registered before looking, so no landing is missed
        state.waiters.setdefault(commit, set()).add(woken)
    try:
        while True:
            woken.clear()
            if not await _missing(repo, state, commits):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await woken.wait()
    finally:
        for commit in commits:
            events = state.waiters.get(commit)
            if events is not None:
                events.discard(woken)
                if not events:
                    del state.waiters[commit]
