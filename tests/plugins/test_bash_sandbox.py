"""The bash tool in its bubblewrap sandbox: every escape the unconfined tool
allowed is tried, and none succeeds.

The worktree is a real ``git worktree`` of a real repository. These tests
need bwrap and a kernel that allows namespaces; where either is missing they
are skipped, unless ``SWARMD_REQUIRE_SANDBOX=1`` (set by ``.ci/run``, which
installs bubblewrap) makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import command_running, git

from swarmd.plugins import ToolContext, ToolError
from swarmd.plugins.runtime.env import scrub_environment
from swarmd.plugins.runtime.settings import RuntimeSettings, SettingsError
from swarmd.plugins.sandbox import Sandbox, SandboxPolicy, SandboxUnavailable, probe
from swarmd.plugins.tools.bash import BashTool
from swarmd.plugins.tools.files import WriteTool

pytestmark = pytest.mark.timeout(60)

WHY = probe()
if WHY is not None:
    if os.environ.get("SWARMD_REQUIRE_SANDBOX") == "1":
        raise RuntimeError(f"the bash sandbox is required here but cannot run: {WHY}")
    pytest.skip(f"no sandbox here: {WHY}", allow_module_level=True)


@pytest.fixture
def worktree(git_repo: Path) -> Path:
    path = git_repo / ".swarmd" / "worktrees" / "s1" / "t1"
    git(git_repo, "worktree", "add", "-q", "-b", "swarmd/s1/t1", str(path))
    return path


@pytest.fixture
def home() -> Iterator[Path]:
    # Outside /tmp, which the sandbox replaces by a private one.
    home = Path(tempfile.mkdtemp(prefix="swarmd-home-", dir="/var/tmp"))
    try:
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
        (home / ".netrc").write_text("machine example.invalid password hunter2\n")
        (home / "notes.txt").write_text("not a secret\n")
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def context(worktree: Path, home: Path, **options: str) -> ToolContext:
    policy = SandboxPolicy.from_options({"bash.sandbox": "on", **options})
    sandbox = Sandbox(policy, worktree, swarm_id="s1", home=str(home))
    return ToolContext(
        workdir=worktree.resolve(), swarm_id="s1", subtask_id="t1",
        env=scrub_environment(os.environ), sandbox=sandbox,
    )


async def bash_run(ctx: ToolContext, command: str, **args: object) -> tuple[bool, str]:
    out = await BashTool().run({"command": command, **args}, ctx)
    return out.success, out.output


async def bash(ctx: ToolContext, command: str, **args: object) -> str:
    return (await bash_run(ctx, command, **args))[1]


async def test_only_the_worktree_is_writable(worktree: Path, home: Path, tmp_path: Path) -> None:
    ctx = context(worktree, home)
    outside = tmp_path / "outside.txt"
    out = await bash(ctx, f"echo hi > inside.txt && cat inside.txt; echo pwned > {outside}; "
                              f"echo pwned > {home}/notes.txt; echo x > /etc/swarmd-pwned")
    assert "hi" in out
    assert (worktree / "inside.txt").read_text() == "hi\n"
    assert not outside.exists()
    assert (home / "notes.txt").read_text() == "not a secret\n"
    assert not Path("/etc/swarmd-pwned").exists()
    # /tmp is private: what a command leaves there is gone, and it never saw ours.
    marker = f"/tmp/swarmd-sandbox-{uuid.uuid4().hex}"
    await bash(ctx, f"touch {marker}")
    assert not Path(marker).exists()


async def test_secrets_are_hidden(worktree: Path, home: Path) -> None:
    hidden = home / "operator-secret.txt"
    hidden.write_text("operator secret\n")
    ctx = context(worktree, home, **{"bash.hide": str(hidden)})
    out = await bash(ctx, f"cat {home}/.ssh/id_ed25519 {home}/.netrc {hidden}; cat {home}/notes.txt")
    assert "PRIVATE KEY" not in out and "hunter2" not in out and "operator secret" not in out
    assert "not a secret" in out  # the rest stays readable
    # The result store's database next to the worktrees is out of sight too.
    db = worktree.parents[2] / "swarmd.db"
    db.write_text("rows\n")
    out = await bash(ctx, f"cat {db}")
    assert "rows" not in out


async def test_the_service_environment_is_out_of_reach(
    worktree: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak")
    ctx = context(worktree, home)
    out = await bash(ctx, "cat /proc/$PPID/environ /proc/1/environ /proc/*/environ 2>/dev/null | tr '\\0' '\\n'")
    assert "sk-do-not-leak" not in out
    out = await bash(ctx, "ls /proc | grep -c '^[0-9]'")
    assert int(out.split()[0]) < 10, "only the command's own processes are visible"


async def test_background_processes_do_not_outlive_the_command(worktree: Path, home: Path) -> None:
    ctx = context(worktree, home)
    tag = f"{uuid.uuid4().int % 10**6 + 300}.5"
    out = await bash(ctx, f"(setsid sleep {tag} &); nohup sleep {tag} > /dev/null 2>&1 & "
                              f"setsid bash -c 'sleep {tag}' & echo started")
    assert "started" in out
    await asyncio.sleep(0.2)
    assert not command_running(f"sleep {tag}"), "a process escaped the command's end"
    ok, out = await bash_run(ctx, f"(setsid sleep {tag} &); sleep 30", timeout=0.5)
    assert not ok and "timed out" in out
    assert not command_running(f"sleep {tag}")


async def test_no_network_unless_allowed(worktree: Path, home: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    probe_cmd = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected || echo refused"
    try:
        out = await bash(context(worktree, home), probe_cmd)
        assert "refused" in out and "connected" not in out
        out = await bash(context(worktree, home, **{"bash.network": "true"}), probe_cmd)
        assert "connected" in out
    finally:
        server.close()


async def test_hard_links_cannot_reach_outside(worktree: Path, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("original\n")
    ctx = context(worktree, home)
    out = await bash(ctx, f"ln {target} link.txt && echo linked")
    assert "linked" not in out and not (worktree / "link.txt").exists()
    # A link made some other way is never written through by the file tools.
    os.link(target, worktree / "made-outside.txt")
    with pytest.raises(ToolError, match="hard link"):
        await WriteTool().run({"path": "made-outside.txt", "content": "pwned\n"}, ctx)
    assert target.read_text() == "original\n"


async def test_git_commits_in_the_worktree_but_not_on_the_users_branches(
    worktree: Path, home: Path, git_repo: Path
) -> None:
    ctx = context(worktree, home)
    main_before = git(git_repo, "rev-parse", "main").strip()
    ok, out = await bash_run(ctx, "echo work > work.txt && git add work.txt && "
                              "git -c user.name=a -c user.email=a@b.invalid commit -q -m work && git log --oneline -1")
    assert ok, out
    assert git(git_repo, "log", "-1", "--format=%s", "swarmd/s1/t1").strip() == "work"
    ok, out = await bash_run(ctx, "git update-ref refs/heads/main HEAD")
    assert not ok
    assert git(git_repo, "rev-parse", "main").strip() == main_before


async def test_limits(worktree: Path, home: Path) -> None:
    ctx = context(worktree, home, **{"bash.file_size_mb": "1"})
    out = await bash(ctx, "head -c 3000000 /dev/zero > big.bin; echo rc=$?")
    assert "rc=0" not in out
    assert (worktree / "big.bin").stat().st_size <= 1024 * 1024
    out = await bash(ctx, "ulimit -f unlimited && echo raised")
    assert "raised" not in out, "a command cannot lift its limits"


async def test_mode_on_refuses_to_run_unconfined(worktree: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="bash.sandbox=on"):
        Sandbox(SandboxPolicy(mode="on"), worktree, bwrap="/nonexistent/bwrap")
    auto = Sandbox(SandboxPolicy(mode="auto"), worktree, bwrap="/nonexistent/bwrap")
    assert not auto.active and "cannot run" in (auto.unconfined_reason or "")
    off = Sandbox(SandboxPolicy(mode="off"), worktree)
    assert not off.active and off.unconfined_reason is None


def test_options_are_checked() -> None:
    assert RuntimeSettings.resolve({}).sandbox == SandboxPolicy()
    policy = RuntimeSettings.resolve({"bash.sandbox": "ON", "bash.network": "yes", "bash.cpu_secs": "30"}).sandbox
    assert (policy.mode, policy.network, policy.cpu_secs) == ("on", True, 30)
    for bad in ({"bash.sandbox": "maybe"}, {"bash.cpu_secs": "lots"}, {"bash.memory_mb": "-1"},
                {"bash.network": "perhaps"}, {"bash.hide": "relative/path"}):
        with pytest.raises(SettingsError):
            RuntimeSettings.resolve(bad)
