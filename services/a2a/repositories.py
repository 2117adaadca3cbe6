"""The repositories an A2A gateway may work on.

An A2A caller cannot hand swarmd a path on the gateway's machine, so the
gateway is configured with named repositories (``NAME=PATH`` or
``NAME=GIT_URL``) and a request names one in its metadata (key
``repository``, or ``repo``). A git URL is cloned once into the gateway's
workspace (``WORKSPACE/NAME``) when the gateway starts; an existing clone is
reused as it is. Anything not configured is refused.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Repositories", "Repository", "RepositoryError"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")


class RepositoryError(ValueError):
    """A repository specification or request the gateway refuses."""


@dataclass(frozen=True)
class Repository:
    """One configured repository: its name, the local path swarms run in,
    and the git URL it was cloned from (empty for a local path)."""

    name: str
    path: Path
    url: str = ""


class Repositories:
    """The configured repositories, by name."""

    def __init__(self, repositories: list[Repository] | None = None) -> None:
        self._by_name = {r.name: r for r in repositories or []}

    @classmethod
    def parse(cls, specs: list[str], workspace: Path | None = None) -> Repositories:
        """Parse ``NAME=PATH`` and ``NAME=URL`` specifications (URLs are cloned
        into ``workspace`` by :meth:`prepare`)."""
        found: list[Repository] = []
        for spec in specs:
            name, sep, target = spec.partition("=")
            name, target = name.strip(), target.strip()
            if not sep or not name or not target:
                raise RepositoryError(f"repository {spec!r}: expected NAME=PATH or NAME=GIT_URL")
            if not _NAME.match(name):
                raise RepositoryError(f"repository name {name!r}: letters, digits, '.', '_' and '-' only")
            if any(r.name == name for r in found):
                raise RepositoryError(f"repository {name!r} is configured twice")
            if _URL.match(target):
                if workspace is None:
                    raise RepositoryError(f"repository {name!r} is a git URL: give a workspace to clone it into")
                found.append(Repository(name, (workspace / name).resolve(), target))
            else:
                found.append(Repository(name, Path(target).expanduser().resolve()))
        return cls(found)

    @property
    def names(self) -> list[str]:
        """The configured names, sorted."""
        return sorted(self._by_name)

    def resolve(self, name: str) -> Repository:
        """The repository called ``name``; :class:`RepositoryError` otherwise."""
        if not name:
            choices = ", ".join(self.names) or "none are configured"
            raise RepositoryError(f"the request names no repository (metadata key 'repository'; configured: {choices})")
        repo = self._by_name.get(name)
        if repo is None:
            choices = ", ".join(self.names) or "none are configured"
            raise RepositoryError(f"unknown repository {name[:100]!r} (configured: {choices})")
        return repo

    async def prepare(self, timeout: float = 600.0) -> None:
        """Clone every git-URL repository missing from the workspace and check
        that every local one is a directory."""
        for repo in self._by_name.values():
            if repo.url and not (repo.path / ".git").exists():
                repo.path.parent.mkdir(parents=True, exist_ok=True)
                proc = await asyncio.create_subprocess_exec(
                    "git", "clone", "--quiet", "--", repo.url, str(repo.path),
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )
                try:
                    _out, err = await asyncio.wait_for(proc.communicate(), timeout)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                    raise RepositoryError(f"cloning {repo.name!r} took longer than {timeout:.0f}s") from None
                if proc.returncode:
                    raise RepositoryError(f"cannot clone {repo.name!r} from {repo.url}: {err.decode(errors='replace').strip()}")
            if not repo.path.is_dir():
                raise RepositoryError(f"repository {repo.name!r}: {repo.path} is not a directory")
