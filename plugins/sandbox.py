"""Confinement for commands a sub-agent runs: bubblewrap around ``bash -c``.

A command the model writes runs with the rights of the executor service
unless something stops it. :class:`Sandbox` wraps it in `bubblewrap`_
(``bwrap``, Debian's and most distributions' ``bubblewrap`` package), which
uses Linux namespaces, so neither root nor a setuid helper is needed:

* the whole file system is mounted **read-only**; the worktree is bound
  read-write, and so are the parts of the repository's git directory that a
  commit in the worktree writes (the worktree's own admin folder, the object
  store, and the ref folders of the subtask's own swarm), so ``git commit``
  in the worktree works and the user's branches stay out of reach;
* credential stores in the home folder (``~/.ssh``, ``~/.aws``, ...), the
  swarmd state folder the worktree lives in (the result store's database is
  there) and any configured ``hide`` path are replaced by empty ones;
* a private ``/tmp``, ``/dev`` and ``/proc``; new PID, IPC and UTS
  namespaces, so ``/proc`` shows only the command's own processes (not the
  service and its environment); no network unless the swarm allows it;
* every capability dropped, so root inside cannot remount anything;
* limits (CPU seconds, address space, file size, processes) set with
  ``ulimit`` as hard limits before the command starts;
* when the command's shell exits, or is killed, the PID namespace ends and
  the kernel kills every process left in it: a double fork (``setsid``,
  ``nohup ... &``) no longer outlives its subtask.

``mode`` is ``auto`` (sandbox when bwrap works here, otherwise run as before
and say so), ``on`` (refuse to run unconfined) or ``off``. Where the kernel
refuses namespaces (some containers do), ``auto`` falls back with the reason
from :func:`probe`.

.. _bubblewrap: https://github.com/containers/bubblewrap
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOME_SECRETS", "Sandbox", "SandboxPolicy", "SandboxUnavailable", "probe"]

#: Folders and files under the service's home that hold credentials; hidden.
HOME_SECRETS = (
    ".ssh",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".gnupg",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
)
MODES = ("auto", "on", "off")


class SandboxUnavailable(RuntimeError):
    """The sandbox was required (``mode=on``) and cannot run here."""


@dataclass(frozen=True)
class SandboxPolicy:
    """How commands are confined (executor options ``bash.*``)."""

    #: ``auto``, ``on`` or ``off`` (see the module docstring).
    mode: str = "auto"
    #: Whether the command may use the network (a swarm may allow it).
    network: bool = False
    #: Hard limits; 0 leaves a limit as the service has it.
    cpu_secs: int = 0
    memory_mb: int = 0
    file_size_mb: int = 0
    #: Counted per user over the whole machine (RLIMIT_NPROC), so set it with care.
    max_processes: int = 0
    #: Extra absolute paths replaced by empty ones inside the sandbox.
    hide: tuple[str, ...] = ()
    #: The bwrap program; empty: ``bwrap`` on PATH.
    bwrap: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"bash.sandbox must be one of {', '.join(MODES)}, not {self.mode!r}")
        for limit in (self.cpu_secs, self.memory_mb, self.file_size_mb, self.max_processes):
            if limit < 0:
                raise ValueError("bash sandbox limits must be zero (no limit) or positive")
        for path in self.hide:
            if not os.path.isabs(path):
                raise ValueError(f"bash.hide paths must be absolute: {path!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> SandboxPolicy:
        """Read ``bash.sandbox``, ``bash.network``, ``bash.cpu_secs``,
        ``bash.memory_mb``, ``bash.file_size_mb``, ``bash.max_processes`` and
        ``bash.hide`` (comma-separated) and ``bash.bwrap`` from executor options;
        raises ValueError."""

        def number(name: str) -> int:
            raw = options.get(f"bash.{name}", "") or "0"
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"executor option bash.{name}={raw!r} is not a whole number") from None

        network = options.get("bash.network", "false").strip().lower()
        if network not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"executor option bash.network={network!r} must be true or false")
        hide = tuple(p.strip() for p in options.get("bash.hide", "").split(",") if p.strip())
        return cls(
            mode=options.get("bash.sandbox", "auto").strip().lower() or "auto",
            network=network in ("true", "1", "yes"),
            cpu_secs=number("cpu_secs"),
            memory_mb=number("memory_mb"),
            file_size_mb=number("file_size_mb"),
            max_processes=number("max_processes"),
            hide=hide,
            bwrap=options.get("bash.bwrap", "").strip(),
        )


@functools.lru_cache(maxsize=4)
def probe(bwrap: str | None = None) -> str | None:
    """None when bubblewrap can build a sandbox here, else why it cannot."""
    exe = bwrap or shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (install the bubblewrap package)"
    argv = [exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
            "--unshare-net", "--cap-drop", "ALL", "--die-with-parent", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot run: {exc}"
    if done.returncode != 0:
        return f"bwrap cannot create namespaces here: {done.stderr.strip()[:300] or done.returncode}"
    return None


def _git_dirs(workdir: Path) -> tuple[Path | None, Path | None]:
    """(the worktree's own git dir, the repository's common git dir), read from
    ``.git`` the way git does, without running git."""
    dot_git = workdir / ".git"
    if dot_git.is_dir():
        return dot_git, dot_git
    try:
        text = dot_git.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None, None
    if not text.startswith("gitdir:"):
        return None, None
    own = Path(text[len("gitdir:") :].strip())
    own = own if own.is_absolute() else (workdir / own)
    try:
        common_rel = (own / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return own.resolve(), own.resolve()
    common = Path(common_rel)
    return own.resolve(), (common if common.is_absolute() else own / common).resolve()


class Sandbox:
    """Builds the bwrap command line for one sub-agent's commands."""

    def __init__(
        self,
        policy: SandboxPolicy,
        workdir: Path,
        *,
        swarm_id: str = "",
        home: str | None = None,
        bwrap: str | None = None,
    ) -> None:
        self.policy = policy
        self.workdir = workdir.resolve()
        self.swarm_id = swarm_id
        self.home = home if home is not None else os.path.expanduser("~")
        bwrap = bwrap or policy.bwrap or None
        self._bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        #: Why commands run unconfined (None when they are confined or the mode is off).
        self.unconfined_reason: str | None = None
        self.active = False
        if policy.mode != "off":
            why = probe(bwrap)
            if why is None:
                self.active = True
            elif policy.mode == "on":
                raise SandboxUnavailable(f"bash.sandbox=on but the sandbox cannot run: {why}")
            else:
                self.unconfined_reason = why

    def writable_paths(self) -> list[Path]:
        """What the command may write besides ``/tmp``: the worktree and the git
        folders a commit in it writes."""
        paths = [self.workdir]
        own, common = _git_dirs(self.workdir)
        if own is not None and common is not None and own != common:
            paths.append(own)
            paths.append(common / "objects")
            if self.swarm_id:
                for sub in ("refs/heads/swarmd", "logs/refs/heads/swarmd"):
                    folder = common / sub / self.swarm_id
                    folder.mkdir(parents=True, exist_ok=True)
                    paths.append(folder)
        return [p for p in paths if p.exists()]

    def hidden_paths(self) -> list[Path]:
        hidden = [Path(self.home) / name for name in HOME_SECRETS] if self.home else []
        # The swarmd state folder the worktree lives in (REPO/.swarmd) holds the database.
        for parent in self.workdir.parents:
            if parent.name == ".swarmd":
                hidden.append(parent)
                break
        hidden.extend(Path(p) for p in self.policy.hide)
        return [p for p in hidden if os.path.lexists(p) and p != self.workdir and p not in self.workdir.parents]

    def _limits(self) -> str:
        p = self.policy
        parts = []
        if p.cpu_secs:
            parts.append(f"-t {p.cpu_secs}")
        if p.memory_mb:
            parts.append(f"-v {p.memory_mb * 1024}")
        if p.file_size_mb:
            # bash counts -f in 1024-byte blocks.
            parts.append(f"-f {p.file_size_mb * 1024}")
        if p.max_processes:
            parts.append(f"-u {p.max_processes}")
        return f"ulimit {' '.join(parts)} || exit 126; " if parts else ""

    def command(self, command: str, cwd: Path) -> list[str]:
        """The argv that runs ``bash -c command`` in ``cwd``, confined when active."""
        inner = ["/bin/bash", "-c", f'{self._limits()}exec /bin/bash -c "$1"', "swarmd-bash", command]
        if not self.active:
            return [*inner[:2], command] if not self._limits() else inner
        argv = [
            self._bwrap,
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
        ]
        for path in self.hidden_paths():
            if path.is_dir():
                argv += ["--tmpfs", str(path)]
            else:
                argv += ["--ro-bind", "/dev/null", str(path)]
        # The repository's git folder stays readable even where it lives under
        # /tmp (replaced by a private one above); parts of it are writable below.
        _, common = _git_dirs(self.workdir)
        if common is not None and common.is_dir() and not common.is_relative_to(self.workdir):
            argv += ["--ro-bind", str(common), str(common)]
        for path in self.writable_paths():
            argv += ["--bind", str(path), str(path)]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not self.policy.network:
            argv.append("--unshare-net")
        argv += [
            "--cap-drop", "ALL",
            "--die-with-parent",
            "--new-session",
            "--setenv", "TMPDIR", "/tmp",
            "--chdir", str(cwd),
            "--",
            *inner,
        ]
        return argv

    def describe(self) -> str:
        """One line for events and logs."""
        if self.active:
            net = "with network" if self.policy.network else "no network"
            return f"bash runs in a bubblewrap sandbox ({net}; only the worktree is writable)"
        if self.policy.mode == "off":
            return "bash runs unconfined (bash.sandbox=off)"
        return f"bash runs unconfined: {self.unconfined_reason}"
