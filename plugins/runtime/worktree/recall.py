"""What the integrator knows about the user's branch at the tip it left it.

Each batch asks two questions of the branch's history before it plans its
merges: which subtasks of its swarms are merged already (the ledger walk,
two ``git log`` processes), and which files changed since each sub-agent's
base (``merge-base`` and ``diff-tree``). Both answers are functions of the
commits alone. After a batch lands, the integrator knows exactly what it
added on top of the old tip, so it carries the answers forward to the new
tip instead of asking git again: the merges it made join the ledger, the
files they changed join each base's changed files. The next batch uses them
only when it starts from that same tip; if the branch moved any other way
(the user committed, another process merged), git is asked again.

The carried file sets are a superset of what git would list (a file changed
and changed back stays in), which can only send a merge down the careful
path, never skip a check.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field

from swarmd.plugins.runtime.worktree import ledger
from swarmd.plugins.runtime.worktree.fastmerge import Claims
from swarmd.plugins.runtime.worktree.repo import RepoBase

__all__ = ["Recall"]

# Forget everything past this many swarms or bases (a long-lived executor).
_LIMIT = 1000


@dataclass
class _Merged:
    tip: str
    found: dict[tuple[str, str], ledger.MergedWork] = field(default_factory=dict)


class Recall:
    """The ledger and changed files of one repository's target, kept across batches."""

    def __init__(self) -> None:
        self._merged: dict[str, _Merged] = {}
        #: base -> (tip, files changed from base to tip), None when base is not an ancestor.
        self._since: dict[str, tuple[str, Claims | None]] = {}

    async def merges_on(
        self, repo: RepoBase, tip: str, swarm_ids: Iterable[str], bases: Iterable[str]
    ) -> dict[tuple[str, str], ledger.MergedWork]:
        """:func:`.ledger.merges_on`, asked of git only for swarms not known at ``tip``."""
        swarms = set(swarm_ids)
        unknown = {s for s in swarms if (m := self._merged.get(s)) is None or m.tip != tip}
        found: dict[tuple[str, str], ledger.MergedWork] = {}
        if unknown:
            if len(self._merged) > _LIMIT:
                self._merged.clear()
            asked = await ledger.merges_on(repo, tip, unknown, bases)
            for s in unknown:
                self._merged[s] = _Merged(tip, {k: v for k, v in asked.items() if k[0] == s})
        for s in swarms:
            found.update(self._merged[s].found)
        return found

    async def changed_since(self, repo: RepoBase, base: str, tip: str) -> Claims | None:
        """Files changed from ``base`` to ``tip``; None when ``base`` is not an ancestor of ``tip``."""
        known = self._since.get(base)
        if known is not None and known[0] == tip:
            return known[1]
        if len(self._since) > _LIMIT:
            self._since.clear()
        claims = Claims(await repo._changed_files(base, tip)) if await repo._is_ancestor(base, tip) else None
        self._since[base] = (tip, claims)
        return claims

    def landed(
        self, old: str, new: str, merges: builtins.list[tuple[str, str, ledger.MergedWork, builtins.list[str]]]
    ) -> None:
        """The branch moved from ``old`` to ``new`` by exactly ``merges``:
        (swarm, subtask, the merge, the files it changed)."""
        for entry in self._merged.values():
            if entry.tip == old:
                entry.tip = new
        for swarm, subtask, work, _paths in merges:
            known = self._merged.get(swarm)
            if known is not None and known.tip == new:
                known.found[(swarm, subtask)] = work
        paths = [p for *_rest, changed in merges for p in changed]
        for base, (tip, claims) in list(self._since.items()):
            if tip == old:
                if claims is not None:
                    claims.add(paths)
                self._since[base] = (new, claims)
