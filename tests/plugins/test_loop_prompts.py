"""Sub-agent prompts and AGENTS.md discovery."""

from __future__ import annotations

from pathlib import Path

from swarmd.plugins import ToolContext
from swarmd.plugins.runtime.prompts import (
    DependencyContext,
    build_system_prompt,
    build_user_prompt,
    find_agents_md,
)
from swarmd.plugins.runtime.toolbox import Toolbox
from swarmd.plugins.tools import BUILTIN_TOOLS


def specs(tmp_path: Path, *, read_only: bool = False, share: bool = True) -> list:  # type: ignore[type-arg]
    services = {"share": object()} if share else {}
    return Toolbox(BUILTIN_TOOLS, ToolContext(workdir=tmp_path, services=services), read_only=read_only).specs()


def test_mutating_prompt(tmp_path: Path) -> None:
    prompt = build_system_prompt(
        subtask_id="t1",
        specialty="Coder",
        working_dir="/wt/t1",
        tools=specs(tmp_path),
        worktree_branch="swarmd/s/t1",
        agents_md="Run make test.",
    )
    assert prompt.startswith("You are a Coder specialist sub-agent (ID: t1)")
    assert "WORKING DIRECTORY: /wt/t1" in prompt
    assert "You MUST use tools to make changes" in prompt
    for name in ["read", "write", "edit", "multiedit", "list", "glob", "grep", "bash", "swarm_share"]:
        assert f"\n- {name}: " in prompt
    for gone in ["prd", "ralph", "webfetch", "agent.spawn", "SMART SPAWN"]:
        assert gone not in prompt
    assert "own git worktree (branch swarmd/s/t1)" in prompt
    assert "committed and merged for you automatically" in prompt
    assert "swarm_share({action: 'wait'" in prompt
    assert "READ-ONLY" not in prompt
    assert prompt.endswith("PROJECT INSTRUCTIONS (from AGENTS.md):\nRun make test.")


def test_read_only_prompt(tmp_path: Path) -> None:
    prompt = build_system_prompt(
        subtask_id="r1", specialty="", working_dir="/repo", tools=specs(tmp_path, read_only=True, share=False), read_only=True
    )
    assert prompt.startswith("You are a sub-agent (ID: r1)")
    assert "READ-ONLY TASK: inspect, analyze, and report." in prompt
    assert "- write:" not in prompt and "- bash:" not in prompt and "SHARING RESULTS" not in prompt
    assert "committed" not in prompt and "MUST use tools to make changes" not in prompt


def test_user_prompt_labels_dependencies_by_name() -> None:
    assert build_user_prompt("Do X.") == "Complete this task:\n\nDo X."
    prompt = build_user_prompt(
        "Do Y.",
        [
            DependencyContext("Schema design", "users(id, name)"),
            DependencyContext("API", "half done", success=False, error="timed out"),
        ],
    )
    assert prompt == (
        "Complete this task:\n\nDo Y.\n\nContext from prior work:\n"
        "\n--- Result from dependency Schema design ---\nusers(id, name)\n"
        "\n--- Result from dependency API (FAILED: timed out) ---\nhalf done\n"
    )


def test_agents_md_nearest_wins_up_to_the_repo_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deep = repo / "pkg" / "sub"
    deep.mkdir(parents=True)
    (repo / ".git").mkdir()
    (tmp_path / "AGENTS.md").write_text("outside the repo")
    assert find_agents_md(deep) is None
    (repo / "AGENTS.md").write_text("root rules")
    assert find_agents_md(deep) == "root rules"
    (repo / "pkg" / "AGENTS.md").write_text("package rules")
    assert find_agents_md(deep) == "package rules"
    assert find_agents_md(repo) == "root rules"
    # With an explicit root the walk stops there.
    assert find_agents_md(deep, repo / "pkg" / "sub") is None
    assert find_agents_md(deep, repo) == "package rules"
    (repo / "AGENTS.md").write_text("x" * 30_000)
    assert find_agents_md(repo).endswith("[AGENTS.md truncated]")  # type: ignore[union-attr]
