"""Every tool call is bounded and none freezes the event loop.

A ticker task runs beside each pathological call: it must keep ticking while
the call runs (a call that blocks the loop, or holds the GIL in a worker
thread, stops it dead). The call must end with the toolbox's timeout error
(or the tool's own), and whatever it started, threads or processes, must
be gone afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from helpers import process_running

from swarmd.plugins import ToolContext
from swarmd.plugins.runtime.env import scrub_environment
from swarmd.plugins.runtime.processes import group_running
from swarmd.plugins.runtime.share import ShareClient
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tool import CallStop, ToolTimeout, call_deadline, deadline_scope, run_blocking
from swarmd.plugins.tools import BUILTIN_TOOLS, GrepTool, SwarmShareTool

T = TypeVar("T")
#: The issue's own case: 34 a's and a '!' against (a+)+$.
ISSUE_LINE = "a" * 34 + "!"
#: A line no backtracking engine gets through with (a|aa)+$ (about 1.5e12 paths).
HOPELESS_LINE = "a" * 60 + "!"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    root.mkdir()
    (root / "issue.txt").write_text(f"{ISSUE_LINE}\n")
    (root / "hopeless.txt").write_text(f"fine\n{HOPELESS_LINE}\n")
    return root.resolve()


@pytest.fixture
def ctx(work: Path) -> ToolContext:
    return ToolContext(workdir=work, env=scrub_environment(os.environ))


async def while_ticking(call: Awaitable[T]) -> tuple[T, int]:
    """Await ``call`` while a 10 ms ticker runs; returns its result and the ticks seen during it."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await call
        return result, ticks
    finally:
        task.cancel()


def tool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("swarmd-tool-")]


async def eventually(check: Callable[[], bool], within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


async def test_the_reported_pattern_answers(ctx: ToolContext) -> None:
    box = Toolbox(BUILTIN_TOOLS, ctx, timeout=60)
    out, _ = await while_ticking(box.execute("grep", json.dumps({"pattern": "(a+)+$", "path": "issue.txt"})))
    assert out.success and out.output == "No matches for '(a+)+$' in 1 file(s)"


async def test_a_catastrophic_regex_is_stopped_at_the_timeout(ctx: ToolContext) -> None:
    box = Toolbox(BUILTIN_TOOLS, ctx, timeout=1.5)
    out, ticks = await while_ticking(box.execute("grep", json.dumps({"pattern": "(a|aa)+$"})))
    assert not out.success and out.metadata == {"timed_out": True}
    assert out.output.startswith("Error: the grep call did not finish within 1.5s and was stopped.")
    assert ticks >= 3, "the event loop was frozen during the call"
    assert await eventually(lambda: not tool_threads()), "the search thread kept running"


async def test_one_line_that_takes_too_long_is_named(ctx: ToolContext) -> None:
    class QuickGrep(GrepTool):
        match_timeout_secs = 0.3

    box = Toolbox([QuickGrep], ctx, timeout=60)
    out, ticks = await while_ticking(box.execute("grep", json.dumps({"pattern": "(a|aa)+$"})))
    assert not out.success and "timed_out" not in out.metadata
    assert "the pattern took more than 0.3s to match line 2 of hopeless.txt" in out.output
    assert "backtracks catastrophically" in out.output
    assert ticks >= 1
    # A glob include filter is matched the same way.
    out = await box.execute("grep", json.dumps({"pattern": "x", "include": "*.txt"}))
    assert out.success


async def test_cancelling_a_search_ends_it(ctx: ToolContext) -> None:
    box = Toolbox(BUILTIN_TOOLS, ctx, timeout=60)
    task = asyncio.create_task(box.execute("grep", json.dumps({"pattern": "(a|aa)+$"})))
    assert await eventually(lambda: bool(tool_threads()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await eventually(lambda: not tool_threads()), "the search thread kept running"


async def test_walks_stop_at_the_deadline(ctx: ToolContext, work: Path) -> None:
    for d in range(30):
        (work / f"d{d}").mkdir()
        for f in range(30):
            (work / f"d{d}" / f"f{f}.txt").write_text("x\n")
    # A deadline that has passed before the walk begins: every walking tool
    # must notice it, however small the tree.
    box = Toolbox(BUILTIN_TOOLS, ctx, timeout=1e-9)
    for name, args in [("glob", {"pattern": "**/*.py"}), ("grep", {"pattern": "y"}), ("list", {}), ("read", {"path": "issue.txt"})]:
        out = await box.execute(name, json.dumps(args))
        assert not out.success and out.metadata == {"timed_out": True}, (name, out.output)
        assert f"the {name} call did not finish within 1e-09s" in out.output
    assert await eventually(lambda: not tool_threads())


async def test_bash_that_ignores_sigterm_and_forks_is_killed_whole(ctx: ToolContext, work: Path) -> None:
    box = Toolbox(BUILTIN_TOOLS, ctx, timeout=60)
    command = (
        "trap '' TERM; (trap '' TERM; sleep 300) & echo $! > pids; "
        "sleep 300 & echo $! >> pids; bash -c \"trap '' TERM; sleep 300\" & echo $! >> pids; wait"
    )
    out, ticks = await while_ticking(box.execute("bash", json.dumps({"command": command, "timeout": 1.5})))
    assert not out.success and out.metadata["timed_out"]
    assert "[timed out after 1.5s; the command and its child processes were killed]" in out.output
    assert ticks >= 3
    pids = [int(p) for p in (work / "pids").read_text().split()]
    assert len(pids) == 3
    assert not group_running(out.metadata["pid"]), "a process of the command's group still runs"
    assert not any(process_running(p) for p in [*pids, out.metadata["pid"]])


async def test_bash_cancelled_while_starting_leaves_nothing(ctx: ToolContext, work: Path) -> None:
    marker = f"swarmd-start-{os.getpid()}"
    box = Toolbox(BUILTIN_TOOLS, ctx, timeout=60)
    for spins in range(12):
        task = asyncio.create_task(box.execute("bash", json.dumps({"command": f"exec -a {marker} sleep 300"})))
        for _ in range(spins):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    def leftovers() -> list[str]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().startswith(marker.encode()) and process_running(int(pid)):
                        found.append(pid)
            except OSError:
                continue
        return found

    assert await eventually(lambda: not leftovers(), within=5), "a cancelled start left a process running"


@pytest.fixture
async def black_hole() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers (a hung peer)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_swarm_share_against_a_hung_store_is_stopped(work: Path, black_hole: str) -> None:
    async with grpc.aio.insecure_channel(black_hole) as channel:
        share = ShareClient(channel, scope="s", producer="p")  # its own RPC deadline is 30 s
        box = Toolbox([SwarmShareTool], ToolContext(workdir=work, services={"share": share}), timeout=1.5)
        out, ticks = await while_ticking(
            box.execute("swarm_share", json.dumps({"action": "publish", "key": "k", "value": 1}))
        )
    assert not out.success and out.metadata == {"timed_out": True}
    assert "the swarm_share call did not finish within 1.5s" in out.output
    assert ticks >= 3
    # A wait may take as long as it asks for, and then some for its own answer.
    tool = SwarmShareTool()
    assert tool.timeout_secs({"action": "wait", "key": "k", "timeout_secs": 300}, 120) == 310
    assert tool.timeout_secs({"action": "get", "key": "k"}, 120) == 120


async def test_run_blocking_hands_over_results_errors_and_the_deadline() -> None:
    def work(stop: CallStop, x: int) -> tuple[int, float | None, float | None, bool]:
        return x * 2, stop.deadline, call_deadline(), threading.current_thread().daemon

    doubled, stop_deadline, seen, daemon = await run_blocking(work, 21)
    assert doubled == 42 and stop_deadline is None and seen is None and daemon
    with deadline_scope(30) as deadline:
        _, stop_deadline, seen, _ = await run_blocking(work, 1)
    assert stop_deadline == seen == deadline

    def fails(stop: CallStop) -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await run_blocking(fails)

    def expired(stop: CallStop) -> None:
        time.sleep(0.01)
        stop.check()

    with deadline_scope(0.001), pytest.raises(ToolTimeout, match="ran out of time"):
        await run_blocking(expired)


def test_the_tool_timeout_is_an_executor_option(ctx: ToolContext) -> None:
    from swarmd.plugins.runtime.attempt import RuntimeSettings, SettingsError

    assert RuntimeSettings.resolve({}).tool_timeout_secs == 120
    assert RuntimeSettings.resolve({"tool_timeout_secs": "30"}, {"tool_timeout_secs": "5"}).tool_timeout_secs == 5
    with pytest.raises(SettingsError, match="tool_timeout_secs"):
        RuntimeSettings.resolve({"tool_timeout_secs": "0"})
    with pytest.raises(ValueError, match="positive"):
        Toolbox(BUILTIN_TOOLS, ctx, timeout=0)
    bash = Toolbox(BUILTIN_TOOLS, ctx)._tools["bash"]
    assert bash.timeout_secs({"command": "x", "timeout": 600}, 120) > 600
