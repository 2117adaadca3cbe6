"""The tool interface offered to sub-agents.

A tool has a name, a description, a JSON Schema for its arguments and an
async :meth:`Tool.run`. The runtime validates arguments against the schema
before calling ``run``: a bad argument becomes a tool error the model sees,
never a crash. Tools get a :class:`ToolContext` with the worktree they are
confined to; :meth:`ToolContext.resolve` is the one way to turn a
model-supplied path into a real one. In a lazy worktree (files written the
first time they are used) it also writes the files on the way, through the
context's :class:`WorktreeFiles`; a tool that hands the worktree to a
process calls :meth:`ToolContext.materialize_all` first.

A tool call must never hold up the event loop it is awaited on: the loop
also carries the service's gRPC streams and health checks. Blocking work
(file system walks, reads, regular expressions) goes through
:func:`run_blocking`, which runs it in a daemon thread and hands it a
:class:`CallStop` to poll. The toolbox bounds every call by
:meth:`Tool.timeout_secs` and stops it when that passes; the deadline is
visible to the call (:func:`call_deadline`), so blocking work can stop on
time by itself.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from swarmd.plugins import daemon_threads
from swarmd.plugins.sandbox import Sandbox

__all__ = [
    "BlobSource",
    "CallStop",
    "PathEscapeError",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolTimeout",
    "WorktreeFiles",
    "call_deadline",
    "deadline_scope",
    "run_blocking",
]

T = TypeVar("T")


class ToolError(Exception):
    """Raised by a tool for an error the model should see (not a crash)."""


class PathEscapeError(ToolError):
    """A path argument resolves outside the worktree."""


class ToolTimeout(ToolError):
    """A tool call ran out of time (its work was stopped)."""


@dataclass
class ToolResult:
    output: str
    success: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


class BlobSource(Protocol):
    """Reads files a lazy worktree has not written yet (see :meth:`WorktreeFiles.open_blobs`)."""

    def read(self, rel: str, limit: int) -> bytes | None:
        """The file's bytes; None when over ``limit`` bytes or written meanwhile (read it then)."""

    def close(self) -> None:
        """Stop reading."""


class WorktreeFiles(Protocol):
    """A lazy worktree's files not written yet (``swarmd.plugins.runtime.worktree.lazy``).

    ``rel`` paths are relative to the worktree, with ``/``; ``""`` is its top.
    Every method may block (it runs git): call them off the event loop.
    """

    @property
    def active(self) -> bool:
        """Whether some files are still not written."""

    def prepare(self, rel: str) -> None:
        """Write the tracked entries on the way to ``rel`` (or create the directory ``rel``)."""

    def children(self, rel: str) -> dict[str, bool]:
        """Entries of directory ``rel`` not written yet: {name: is a directory}."""

    def blob_id(self, rel: str) -> str | None:
        """The object id of ``rel`` when it is not written yet, else None."""

    def materialize_all(self) -> None:
        """Write every file: the worktree becomes a full checkout."""

    def open_blobs(self) -> BlobSource:
        """A reader of files not written yet."""


def _inside(root: Path, path: Path) -> str | None:
    if path == root:
        return ""
    if root in path.parents:
        return path.relative_to(root).as_posix()
    return None


@dataclass
class ToolContext:
    """What a tool may touch."""

    workdir: Path  # the worktree (or repository, for read-only subtasks); resolved, absolute
    swarm_id: str = ""
    subtask_id: str = ""
    #: Environment for subprocesses (secrets already scrubbed).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Extra objects the runtime provides, e.g. "share" -> shared-results client.
    services: dict[str, Any] = field(default_factory=dict)
    #: How commands (the bash tool's) are confined; None runs them unconfined.
    sandbox: Sandbox | None = None
    #: The files of a lazy worktree (None for a full checkout or the repository).
    files: WorktreeFiles | None = None

    def resolve(self, path: str, *, must_exist: bool = False) -> Path:
        """Resolve ``path`` (relative to the worktree) and refuse escapes.

        ``..`` segments, absolute paths outside the worktree and symlinks that
        resolve outside are refused with :class:`PathEscapeError`.
        """
        if not isinstance(path, str) or "\x00" in path:
            raise ToolError("path must be a string without NUL bytes")
        root = self.workdir.resolve()
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = self._materialize(root, candidate) if self.files is not None else Path(os.path.realpath(candidate))
        if resolved != root and root not in resolved.parents:
            raise PathEscapeError(f"path {path!r} is outside the worktree")
        if must_exist and not resolved.exists():
            raise ToolError(f"no such file or directory: {path}")
        return resolved

    def _materialize(self, root: Path, candidate: Path) -> Path:
        """Resolve ``candidate`` writing, in a lazy worktree, the files on its way
        (and those a link on the way leads to) first."""
        assert self.files is not None
        target = Path(os.path.normpath(candidate))
        resolved = target
        for _ in range(40):  # as many links as the kernel follows
            rel = _inside(root, target)
            if rel is not None:
                self.files.prepare(rel)
            resolved = Path(os.path.realpath(candidate))
            if resolved == target:
                break
            target = resolved
        return resolved

    async def aresolve(self, path: str, *, must_exist: bool = False) -> Path:
        """:meth:`resolve` for async code: off the event loop in a lazy worktree."""
        if self.files is None:
            return self.resolve(path, must_exist=must_exist)
        return await asyncio.to_thread(self.resolve, path, must_exist=must_exist)

    async def materialize_all(self) -> None:
        """Write every file of a lazy worktree (before a process sees the directory)."""
        if self.files is not None:
            await asyncio.to_thread(self.files.materialize_all)

    def relative(self, path: Path) -> str:
        """Path as shown to the model: relative to the worktree."""
        try:
            return str(path.resolve().relative_to(self.workdir.resolve())) or "."
        except ValueError:
            return str(path)


class Tool(abc.ABC):
    """Base class of sub-agent tools; register with ``swarmd_register_tools``."""

    #: Name the model calls the tool by.
    name: ClassVar[str]
    #: Description shown to the model.
    description: ClassVar[str]
    #: JSON Schema (an "object" schema) of the arguments.
    parameters: ClassVar[Mapping[str, Any]]
    #: True when the tool never modifies anything (offered to read-only subtasks).
    read_only: ClassVar[bool] = False

    @abc.abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run the tool with schema-valid ``args``; raise :class:`ToolError` for
        errors the model should see. Blocking work goes through :func:`run_blocking`."""

    def timeout_secs(self, args: dict[str, Any], default: float) -> float:
        """The longest this call may run before the toolbox stops it.

        ``default`` is the runtime's tool timeout (the ``tool_timeout_secs``
        executor option). A tool whose arguments carry a timeout of their own
        (bash, swarm_share's wait) returns that plus the time it needs to
        clean up, so its own, more informative, timeout fires first.
        """
        return default


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("swarmd_tool_deadline", default=None)


def call_deadline() -> float | None:
    """When the running tool call must be over (``time.monotonic()``), if bounded."""
    return _DEADLINE.get()


@contextlib.contextmanager
def deadline_scope(seconds: float) -> Iterator[float]:
    """Make ``seconds`` from now the deadline of the tool call run inside (the toolbox uses it)."""
    deadline = time.monotonic() + seconds
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


class CallStop:
    """What blocking work polls to learn that its call is over.

    Set when the awaiting task is cancelled (the toolbox's timeout, a
    cancelled sub-agent, a shutting-down service); past the call's deadline it
    counts as set too. :meth:`check` raises, so a loop needs one line.
    """

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._event = threading.Event()

    def set(self) -> None:
        """Mark the call as given up (done by :func:`run_blocking` on cancellation)."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """The awaiting task gave up on the call."""
        return self._event.is_set()

    @property
    def expired(self) -> bool:
        """The call's deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def is_set(self) -> bool:
        """Cancelled or expired: the work should stop."""
        return self.cancelled or self.expired

    def remaining(self, cap: float | None = None) -> float | None:
        """Seconds left (at most ``cap``; None when neither bounds it), never below a millisecond."""
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if cap is not None:
            left = cap if left is None else min(left, cap)
        return None if left is None else max(left, 0.001)

    def check(self) -> None:
        """Raise :class:`ToolTimeout` when the call is over."""
        if self.is_set():
            raise ToolTimeout("the tool call was stopped" if self.cancelled else "the tool call ran out of time")


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(stop, *args)`` on a daemon thread and await its result.

    ``stop`` is a :class:`CallStop` bounded by :func:`call_deadline`. When
    the awaiting task is cancelled, ``stop`` is set and the await ends at
    once; the work ends at its next ``stop.check()``. The thread is a
    daemon (unlike ``asyncio.to_thread``'s pool, which the interpreter joins
    at exit), so work stuck in a system call can never hold up the process's
    shutdown; idle ones are reused (:mod:`swarmd.plugins.daemon_threads`). Exceptions raised by ``fn`` propagate to the caller.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    stop = CallStop(call_deadline())
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = context.run(fn, stop, *args)
        except BaseException as exc:  # handed to the awaiting task
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    daemon_threads.submit(target, f"swarmd-tool-{getattr(fn, '__name__', 'work')}")
    try:
        return await future
    finally:
        stop.set()
