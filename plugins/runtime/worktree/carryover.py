"""Continuing in the worktree of an interrupted attempt.

When the process running a sub-agent dies (an executor killed mid-swarm),
its worktree stays behind, locked by a dead pid and often holding
uncommitted work. The subtask's next attempt goes on in that worktree
instead of starting a fresh ``<subtask>@2`` from the base, when the latest
earlier worktree of the same swarm and subtask

* is not in use by a live process (its lock is stale or absent),
* holds no work that already reached the user's branch (it is not merged),
* was started from the same commit the new attempt starts from (its
  ``BASE_REF_PREFIX`` ref equals the new start).

Its committed and uncommitted changes are kept (a checkout its process died
before writing is written now); it is locked again for this process, and :attr:`Worktree.carried_over` describes what the earlier attempt
left there (``git status`` and a diffstat against the base), for the
sub-agent's prompt. Otherwise nothing changes and the caller makes a
worktree as before.
"""

from __future__ import annotations

from pathlib import Path

from swarmd.plugins.runtime.worktree.git import WtEntry, lock_is_live, lock_reason, parse_branch
from swarmd.plugins.runtime.worktree.model import BASE_REF_PREFIX, BRANCH_PREFIX, Worktree
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["continue_interrupted"]

#: Lines of ``git status --short`` shown to the sub-agent.
STATUS_LINES = 20


async def continue_interrupted(repo: RepoBase, swarm_id: str, subtask_id: str, start: str) -> Worktree | None:
    """The latest earlier worktree of the subtask, locked again for this process, or None.

    Call it under the repository lock (see the module docstring for when it applies).
    """
    latest: tuple[int, WtEntry] | None = None
    for entry in await repo._worktree_entries():
        parsed = parse_branch((entry.branch or "").removeprefix("refs/heads/"))
        if parsed is None or parsed[:2] != (swarm_id, subtask_id):
            continue
        if latest is None or parsed[2] > latest[0]:
            latest = (parsed[2], entry)
    if latest is None:
        return None
    attempt, entry = latest
    assert entry.branch is not None
    branch = entry.branch.removeprefix("refs/heads/")
    if entry.prunable or not entry.path.is_dir() or lock_is_live(entry.locked):
        return None
    if await repo._ref(f"{BASE_REF_PREFIX}{branch.removeprefix(BRANCH_PREFIX)}") != start:
        return None
    tip = await repo._ref(f"refs/heads/{branch}")
    if tip is None or (tip != start and await repo._is_merged(tip)):
        return None
    if entry.locked is not None:
        await repo._git("worktree", "unlock", str(entry.path), check=False)
    await repo._git("worktree", "lock", "--reason", lock_reason(), str(entry.path))
    if repo._never_checked_out(entry.path):  # its process died before writing the files
        await repo._git("read-tree", "--reset", "-u", "HEAD", cwd=entry.path)
    summary = await _summary(repo, entry.path, start, tip)
    return Worktree(swarm_id, subtask_id, entry.path, branch, start, attempt, carried_over=summary)


async def _summary(repo: RepoBase, path: Path, start: str, tip: str) -> str:
    """What the earlier attempt left: status lines and a diffstat against the base; "" if nothing."""
    env = {"GIT_OPTIONAL_LOCKS": "0"}
    status = await repo._git("status", "--short", "--untracked-files=all", cwd=path, check=False, env=env)
    lines = [line for line in status.out.decode("utf-8", "replace").splitlines() if line.strip()]
    commits = 0
    if tip != start:
        counted = await repo._git("rev-list", "--count", f"{start}..{tip}", cwd=path, check=False)
        commits = int(counted.text or "0") if counted.rc == 0 else 0
    if not lines and not commits:
        return ""
    stat = await repo._git("diff", "--shortstat", start, cwd=path, check=False, env=env)
    parts = []
    if commits:
        parts.append(f"{commits} commit(s) on the branch since the base")
    if lines:
        shown = lines[:STATUS_LINES]
        more = len(lines) - len(shown)
        parts.append("git status --short:\n" + "\n".join(shown) + (f"\n... and {more} more" if more > 0 else ""))
    if stat.rc == 0 and stat.text:
        parts.append(f"against the base: {stat.text} (tracked files)")
    return "\n".join(parts)
