"""The bash tool: run a shell command inside the worktree.

* ``cwd`` (optional) goes through :meth:`ToolContext.resolve`, so it stays
  inside the worktree; the default is the worktree itself.
* ``timeout`` defaults to 120 s, at most 600 s.
* The command runs in its own session and process group
  (``start_new_session=True``). When it times out, when the call is
  cancelled (also while the process is still being started), and also when
  it finishes, the **whole process group** is killed with SIGKILL (a command
  that ignores SIGTERM changes nothing), and the call returns once no
  process of the group runs any more: a command cannot leave processes
  behind, and a background child holding the output pipe cannot hang the
  call. (A killed child may stay a zombie for a while: it is reaped by
  whoever inherits it, often PID 1, and it runs nothing.)
* The environment is the service's with secrets removed
  (:func:`swarmd.plugins.runtime.env.scrub_environment`).
* Output (stdout and stderr interleaved) is kept within ``output_limit``
  characters: the head and the tail survive, the middle is cut with a note,
  because build and test failures are reported at the end.

With a sandbox in the context (:mod:`swarmd.plugins.sandbox`, the default
where bubblewrap works), the command runs confined: only the worktree (and
the git folders a commit in it writes) is writable, the rest of the file
system is read-only, credential stores are hidden, ``/tmp`` is private,
there is no network unless allowed, and the command's PID namespace ends
with it, so even a process that left the group (``setsid``, ``nohup``) is
killed. Without one (``bash.sandbox=off``, or bwrap unavailable), a process
that leaves the group is out of reach: it is not killed, only kept from
hanging the call, and the command may do whatever the service's user may.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, ClassVar

from swarmd.plugins.runtime.env import scrub_environment
from swarmd.plugins.runtime.processes import group_running, kill_process_group
from swarmd.plugins.tool import Tool, ToolContext, ToolError, ToolResult, run_blocking

__all__ = ["BashTool"]

DEFAULT_TIMEOUT_SECS = 120
MAX_TIMEOUT_SECS = 600
OUTPUT_LIMIT = 6000
#: Bytes of raw output kept in memory (head and tail) while a command runs.
CAPTURE_BYTES = 256 * 1024
#: After the shell exits, how long to wait for background children to close the pipe.
DRAIN_GRACE_SECS = 0.5
#: Beyond the command's own timeout, what killing it and collecting its output may take.
CLEANUP_SECS = 15.0
#: How long to wait for the killed group's processes to be gone.
KILL_WAIT_SECS = 5.0


async def _group_gone(pgid: int) -> None:
    """Wait (at most KILL_WAIT_SECS) until no process of the killed group runs."""
    delay = 0.005
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(KILL_WAIT_SECS):
            # Reading /proc takes a while when many processes run: not on the event loop.
            while await run_blocking(lambda stop: group_running(pgid)):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)


class _Capture:
    """Keeps the first and last CAPTURE_BYTES/2 bytes of a stream."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        half = CAPTURE_BYTES // 2
        room = half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > half:
                del self.tail[: len(self.tail) - half]

    def text(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail)
        out = self.head.decode("utf-8", errors="replace")
        if dropped > 0:
            out += f"\n[... {dropped} bytes omitted ...]\n"
        return out + self.tail.decode("utf-8", errors="replace")


def fit_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """Keep the head (a third) and the tail (the rest) of ``text`` within ``limit``."""
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close our end of the output pipe when a process that left the group
    (``setsid``) still holds it open; asyncio offers no public way to do it."""
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Wait for the shell itself to exit.

    ``Process.wait()`` also waits for the output pipe to close, which a
    background child can hold open forever; the return code is set as soon as
    the shell exits, so poll it (5 ms at first, backing off to 50 ms).
    """
    delay = 0.005
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _drain(stream: asyncio.StreamReader, capture: _Capture) -> None:
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return
        capture.add(chunk)


async def _start(argv: list[str], cwd: Any, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``argv`` (``bash -c command``, confined or not) in a new session.

    A cancellation that arrives while asyncio is still setting the process
    up would leave it running (asyncio then kills the shell alone, not what
    it started): the start is shielded, and a cancelled one is finished,
    killed as a group and reaped before the cancellation goes on.
    """
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    )
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            proc = await starting
            kill_process_group(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            async with asyncio.timeout(KILL_WAIT_SECS):
                await _exited(proc)
            await _group_gone(proc.pid)
            _close_pipes(proc)
        raise
    except OSError as exc:
        raise ToolError(f"cannot start bash: {exc}") from None


class BashTool(Tool):
    name = "bash"
    description = (
        "Run a bash command in the working directory (or in `cwd`, a directory inside it). "
        f"Timeout in seconds: default {DEFAULT_TIMEOUT_SECS}, at most {MAX_TIMEOUT_SECS}. "
        "stdout and stderr are combined; long output keeps its beginning and end. Processes the "
        "command starts are stopped when it finishes."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "description": "The command (run with bash -c)."},
            "cwd": {"type": "string", "description": "Directory to run in, relative to the working directory."},
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_TIMEOUT_SECS,
                "description": f"Seconds before the command is killed (default {DEFAULT_TIMEOUT_SECS}).",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    #: Characters of output returned to the model.
    output_limit: ClassVar[int] = OUTPUT_LIMIT

    def timeout_secs(self, args: dict[str, Any], default: float) -> float:
        # The command's own timeout governs; the toolbox only stops a call whose cleanup hangs.
        return float(args.get("timeout", DEFAULT_TIMEOUT_SECS)) + CLEANUP_SECS

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        # bash sees the raw file system: a lazy worktree is written whole first.
        await ctx.materialize_all()
        cwd = ctx.resolve(args.get("cwd") or ".", must_exist=True)
        if not cwd.is_dir():
            raise ToolError(f"cwd {ctx.relative(cwd)} is not a directory")
        timeout = float(args.get("timeout", DEFAULT_TIMEOUT_SECS))
        # The sandbox's own processes get only the scrubbed environment too:
        # /proc/1/environ inside shows what bwrap was started with.
        env = dict(ctx.env) if ctx.env else scrub_environment(os.environ)
        sandbox = ctx.sandbox
        if sandbox is not None:
            argv = await run_blocking(lambda stop: sandbox.command(args["command"], cwd))
        else:
            argv = ["/bin/bash", "-c", args["command"]]
        proc = await _start(argv, cwd, env)
        assert proc.stdout is not None
        capture = _Capture()
        reader = asyncio.create_task(_drain(proc.stdout, capture))
        timed_out = False
        try:
            try:
                async with asyncio.timeout(timeout):
                    await _exited(proc)
            except TimeoutError:
                timed_out = True
            else:
                # Background children may still hold the pipe open: give them a moment.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DRAIN_GRACE_SECS):
                        await asyncio.shield(reader)
        finally:
            kill_process_group(proc.pid)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_WAIT_SECS):
                    await _exited(proc)
            await _group_gone(proc.pid)
            if not reader.done():
                # The group is dead, so the pipe normally closes at once.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(reader)
            if not reader.done():
                # Something that left the group (setsid) still holds the pipe.
                reader.cancel()
                _close_pipes(proc)
        output = fit_output(capture.text().rstrip("\n"), self.output_limit) or "(no output)"
        meta = {"exit_code": proc.returncode, "pid": proc.pid, "timed_out": timed_out}
        if timed_out:
            return ToolResult(
                f"{output}\n[timed out after {timeout:g}s; the command and its child processes were killed]",
                success=False,
                metadata=meta,
            )
        code = proc.returncode
        return ToolResult(f"{output}\n[exit code: {code}]", success=code == 0, metadata=meta)
