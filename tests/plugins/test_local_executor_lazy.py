"""Whole attempts of the ``local`` executor in lazy worktrees (``worktree.checkout``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git
from lazy_repo import generate
from test_local_executor import call, cassette, collect, make_request

import swarmd.plugins.executors.local as local_mod
import swarmd.plugins.providers.openai as openai_mod
import swarmd.plugins.providers.replay as replay_mod
import swarmd.plugins.tools as tools_mod
from swarmd.plugins import ExecutorContext
from swarmd.plugins.executors.local import LocalExecutor
from swarmd.plugins.manager import Plugins, load_plugins
from swarmd.plugins.runtime.worktree.lazy import is_lazy
from swarmd.v1 import common_pb2

BLOCK = {"SWARMD_BLOCK_PLUGINS": "local,remote,kubernetes,openai,replay,builtin-tools"}
LAZY = {"worktree.checkout": "auto", "worktree.lazy_threshold": "100"}


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins([openai_mod, replay_mod, tools_mod, local_mod], env=BLOCK)


async def test_lazy_attempt_merges_exactly_its_work(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    texts = generate(git_repo)
    base = git(git_repo, "rev-parse", "HEAD").strip()
    model = cassette(
        tmp_path / "c.jsonl",
        "t1",
        {"tool_calls": [call("grep", pattern="Hello", include="*.sh"), call("read", path=texts[0])]},
        {"tool_calls": [call("write", path=texts[1], content="rewritten\n"), call("write", path="new/x.txt", content="x\n")]},
        # bash (sandboxed where bubblewrap works) gets the whole tree, written first.
        {"tool_calls": [call("bash", command=f"test -f {texts[5]} && rm {texts[4]} && git status --short")]},
        {"content": "done"},
    )
    request = make_request(model, git_repo, worktree=True, base_commit=base, executor_options=LAZY)
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        events, result = await collect(executor, request)
    assert result.success, result.error
    assert result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED and result.merge.files_changed == 3
    names = git(git_repo, "diff-tree", "-r", "--name-status", base, "HEAD").split("\n")
    assert sorted(n for n in names if n) == sorted([f"M\t{texts[1]}", "A\tnew/x.txt", f"D\t{texts[4]}"])
    outputs = [e.agent_tool_call_detail.output_preview for e in events if e.HasField("agent_tool_call_detail")]
    assert any("run.sh:2: echo Hello" in o for o in outputs), outputs


async def test_failed_lazy_attempt_keeps_a_lazy_worktree(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    texts = generate(git_repo)
    model = cassette(
        tmp_path / "c.jsonl",
        "t1",
        {"tool_calls": [call("write", path=texts[2], content="half done\n")]},
        {"tool_calls": [call("list", path="src")]},
    )
    request = make_request(model, git_repo, worktree=True, max_steps_per_subagent=2, executor_options=LAZY)
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(executor, request)
    assert not result.success and result.failure_kind == common_pb2.FAILURE_KIND_MAX_STEPS
    kept = Path(result.worktree_path)
    assert is_lazy(kept) and (kept / texts[2]).read_text() == "half done\n"
    assert not (kept / texts[3]).exists()
    assert git(kept, "status", "--porcelain") == f" M {texts[2]}\n"


async def test_bad_checkout_option_fails_the_attempt(plugins: Plugins, git_repo: Path, tmp_path: Path) -> None:
    model = cassette(tmp_path / "c.jsonl", "t1", {"content": "never"})
    request = make_request(model, git_repo, worktree=True, executor_options={"worktree.checkout": "sparse"})
    async with LocalExecutor(ExecutorContext(plugins=plugins)) as executor:
        _, result = await collect(executor, request)
    assert not result.success and "worktree checkout mode 'sparse'" in result.error
