"""The branch as the record of what was merged: the trailers of swarmd's merge commits.

Every merge commit swarmd lands a sub-agent's work with ends with::

    Swarmd-Swarm: <swarm id>
    Swarmd-Subtask: <subtask id>

so the user's branch itself says which subtasks' work is on it, whatever
any store or process remembers. The merge point reads it (a subtask already
merged is never merged again: a late merge from an old attempt racing a
re-dispatch is recognised), and so does an orchestrator resuming a swarm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from swarmd.plugins.runtime.worktree.model import Worktree
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = [
    "LOG_FORMAT",
    "SUBTASK_TRAILER",
    "SWARM_TRAILER",
    "MergedWork",
    "log_args",
    "merge_message",
    "merges_on",
    "one_per_subtask",
    "parse_log",
    "trailers",
]

SWARM_TRAILER = "Swarmd-Swarm"
SUBTASK_TRAILER = "Swarmd-Subtask"
_T = TypeVar("_T")

#: ``git log`` format :func:`parse_log` reads: hash, parents, NUL, body, RS.
LOG_FORMAT = "%H %P%x00%B%x1e"


@dataclass(frozen=True)
class MergedWork:
    """One merge of a subtask's work found on a branch."""

    #: The merge commit.
    merge_commit: str
    #: The sub-agent's commit it merged (its second parent).
    commit: str
    #: The swarmd branch the merge came from (from its subject).
    branch: str


def merge_message(wt: Worktree, target: str, message: str = "") -> str:
    """The message of the merge commit bringing ``wt``'s work into ``target`` (trailers last)."""
    body = f"Merge {wt.branch} into {target}\n\nWork of subtask {wt.subtask_id} in swarm {wt.swarm_id}.\n"
    if message.strip():
        body += f"\n{message.strip()}\n"
    return f"{body}\n{trailers(wt.swarm_id, wt.subtask_id)}"


def trailers(swarm_id: str, subtask_id: str) -> str:
    """The trailer lines naming a subtask's work (end of a commit message)."""
    return f"{SWARM_TRAILER}: {swarm_id}\n{SUBTASK_TRAILER}: {subtask_id}\n"


def log_args(swarm_ids: set[str] | list[str], tip: str, *, since: int | None = None) -> list[str]:
    """``git log`` arguments listing the merges of these swarms reachable from ``tip``, oldest first.

    ``since`` (a Unix time) stops the walk at older commits.
    """
    args = ["log", "--merges", "--reverse", "--fixed-strings", f"--format={LOG_FORMAT}"]
    args += [f"--grep={SWARM_TRAILER}: {s}" for s in sorted(swarm_ids)]
    if since is not None:
        args.append(f"--since={since}")
    return [*args, tip, "--"]


def parse_log(out: str, swarm_ids: set[str] | list[str]) -> dict[tuple[str, str], MergedWork]:
    """(swarm, subtask) -> its first merge in :func:`log_args` output."""
    wanted = set(swarm_ids)
    found: dict[tuple[str, str], MergedWork] = {}
    for record in out.split("\x1e"):
        head, _, body = record.strip().partition("\x00")
        parents = head.split()
        if len(parents) < 3:
            continue
        fields = dict(line.split(":", 1) for line in body.splitlines() if line.startswith("Swarmd-") and ":" in line)
        swarm = fields.get(SWARM_TRAILER, "").strip()
        sid = fields.get(SUBTASK_TRAILER, "").strip()
        if swarm in wanted and sid and (swarm, sid) not in found:
            branch = body.splitlines()[0].removeprefix("Merge ").split(" into ")[0]
            found[(swarm, sid)] = MergedWork(parents[0], parents[2], branch)
    return found


async def merges_on(
    repo: RepoBase, tip: str, swarm_ids: Iterable[str], bases: Iterable[str]
) -> dict[tuple[str, str], MergedWork]:
    """The merges of these swarms reachable from ``tip``, by (swarm, subtask).

    ``bases`` are the commits the subtasks started from: their merges are
    younger, so the walk stops a day (of clock skew) before the oldest.
    """
    swarms = set(swarm_ids)
    dates = await repo._git("log", "--no-walk", "--format=%ct", *sorted(set(bases)), "--")
    since = min((int(d) for d in dates.text.split()), default=0) - 86400
    log = await repo._git(*log_args(swarms, tip, since=max(0, since)))
    return parse_log(log.out.decode("utf-8", "replace"), swarms)


def one_per_subtask(queue: list[_T], worktree: Callable[[_T], Worktree]) -> tuple[list[_T], list[_T]]:
    """The first of ``queue`` per (swarm, subtask), and the others (for a later batch)."""
    first: list[_T] = []
    later: list[_T] = []
    seen: set[tuple[str, str]] = set()
    for item in queue:
        wt = worktree(item)
        (later if (wt.swarm_id, wt.subtask_id) in seen else first).append(item)
        seen.add((wt.swarm_id, wt.subtask_id))
    return first, later
