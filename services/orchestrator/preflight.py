"""Pre-flight checks (seed §13, which the seed never compiled): the workspace,
the configuration, the executor and the plan's size, before anything runs.

``PreflightReport.is_valid`` is false when any issue is an ERROR; a swarm
with an invalid report is refused (a dry run returns the report instead).
Git is asked through ``git`` subprocesses with a timeout, never through a
shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from swarmd.v1 import common_pb2

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "GitInfo",
    "PreflightBuilder",
    "estimate_tokens",
    "inspect_git",
]

DEFAULT_CONTEXT_WINDOW = 128_000
_GIT_TIMEOUT = 15.0

Severity: TypeAlias = common_pb2.PreflightSeverity


@dataclass
class GitInfo:
    """What the orchestrator learned about the target repository."""

    is_repo: bool = False
    branch: str = ""
    head: str = ""
    uncommitted_changes: int = 0
    has_untracked: bool = False
    can_create_worktrees: bool = False
    error: str = ""


async def _git(repo: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            repo,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
        )
    except OSError as exc:
        return 127, str(exc)
    try:
        async with asyncio.timeout(_GIT_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return 124, f"git {' '.join(args)} timed out after {_GIT_TIMEOUT:.0f}s"
    text = (out if proc.returncode == 0 else err).decode("utf-8", "replace")
    return proc.returncode or 0, text.strip()


async def inspect_git(repo_path: str) -> GitInfo:
    """Is ``repo_path`` a git work tree; its branch, HEAD and dirtiness."""
    info = GitInfo()
    code, out = await _git(repo_path, "rev-parse", "--is-inside-work-tree")
    if code != 0 or out != "true":
        info.error = out
        return info
    info.is_repo = True
    code, out = await _git(repo_path, "rev-parse", "--abbrev-ref", "HEAD")
    if code == 0:
        info.branch = out
    code, out = await _git(repo_path, "rev-parse", "--verify", "-q", "HEAD")
    if code == 0:
        info.head = out
    code, out = await _git(repo_path, "status", "--porcelain")
    if code == 0:
        lines = [line for line in out.splitlines() if line.strip()]
        info.uncommitted_changes = len(lines)
        info.has_untracked = any(line.startswith("??") for line in lines)
    code, _ = await _git(repo_path, "worktree", "list")
    info.can_create_worktrees = code == 0 and bool(info.head)
    return info


def estimate_tokens(subtasks: Sequence[common_pb2.SubTask]) -> tuple[int, int]:
    """Seed formula: prompt = 500 + Σ len(instruction)/4; completion = prompt/2."""
    prompt = 500 + sum(len(s.instruction) // 4 for s in subtasks)
    return prompt, prompt // 2


class PreflightBuilder:
    """Collects issues into a ``PreflightReport``."""

    def __init__(self) -> None:
        self.report = common_pb2.PreflightReport(context_window=DEFAULT_CONTEXT_WINDOW)

    def add(self, severity: Severity, category: str, message: str, suggestion: str = "") -> None:
        self.report.issues.add(
            severity=severity, category=category, message=message, suggestion=suggestion
        )

    def error(self, category: str, message: str, suggestion: str = "") -> None:
        self.add(common_pb2.PREFLIGHT_SEVERITY_ERROR, category, message, suggestion)

    def warning(self, category: str, message: str, suggestion: str = "") -> None:
        self.add(common_pb2.PREFLIGHT_SEVERITY_WARNING, category, message, suggestion)

    def info(self, category: str, message: str, suggestion: str = "") -> None:
        self.add(common_pb2.PREFLIGHT_SEVERITY_INFO, category, message, suggestion)

    def workspace(self, repo_path: str, git: GitInfo, worktree_enabled: bool) -> None:
        self.report.is_git_repo = git.is_repo
        self.report.current_branch = git.branch
        self.report.uncommitted_changes = git.uncommitted_changes
        if not git.is_repo:
            if worktree_enabled:
                # Nothing a sub-agent does could be committed or merged back.
                self.error(
                    "workspace",
                    f"{repo_path} is not in a git repository, so sub-agents' work cannot be "
                    "committed or merged",
                    "Run `git init` and commit, or set worktree_enabled: false to work in the "
                    "directory itself",
                )
            return
        if not git.head:
            if worktree_enabled:
                self.warning(
                    "workspace",
                    "The repository has no commits yet. Worktree isolation will be disabled.",
                    "Make an initial commit",
                )
            return
        if git.uncommitted_changes and not worktree_enabled:
            # Sub-agents would write in the working tree itself, over the
            # user's work, with nothing to merge it against.
            self.error(
                "workspace",
                f"worktrees are off and {repo_path} has {git.uncommitted_changes} uncommitted or "
                "untracked change(s); sub-agents working in place could overwrite them",
                "Commit or stash your changes first, or run with worktrees (drop --no-worktrees)",
            )
        elif git.uncommitted_changes:
            self.warning(
                "workspace",
                f"Found {git.uncommitted_changes} uncommitted change(s); sub-agents start from the last commit "
                f"({git.head[:12]}) and do not see them",
                "Commit or stash your changes first",
            )
        if worktree_enabled and not git.can_create_worktrees:
            self.warning(
                "workspace",
                "Unable to verify worktree creation capability",
                "Check `git worktree list`",
            )

    def configuration(self, config: common_pb2.SwarmConfig) -> None:
        """Settings that are legal but likely mistakes (the model string and
        its provider are checked at submission, with the executor service)."""
        if config.max_subagents > 100:
            self.warning(
                "configuration",
                f"max_subagents is {config.max_subagents}; plans this large are hard to review",
                "Use 50 or fewer",
            )
        if config.subtask_timeout_secs < config.subagent_timeout_secs:
            self.info(
                "configuration",
                f"subtask_timeout_secs ({config.subtask_timeout_secs}) is shorter than the per-step idle "
                f"timeout subagent_timeout_secs ({config.subagent_timeout_secs})",
            )
        if config.base_delay_ms > config.max_delay_ms:
            self.warning(
                "configuration",
                f"base_delay_ms ({config.base_delay_ms}) exceeds max_delay_ms ({config.max_delay_ms}); "
                "every retry waits up to max_delay_ms",
            )
        if config.max_concurrent > config.max_subagents:
            self.info(
                "configuration",
                f"max_concurrent ({config.max_concurrent}) exceeds max_subagents ({config.max_subagents})",
            )

    def tokens(self, subtasks: Sequence[common_pb2.SubTask]) -> None:
        prompt, completion = estimate_tokens(subtasks)
        self.report.estimated_prompt_tokens = prompt
        self.report.estimated_completion_tokens = completion
        total = prompt + completion
        window = self.report.context_window
        if total > window:
            self.warning(
                "token_estimate",
                f"Estimated {total:,} tokens exceeds the model's context window of {window:,}",
                "Split long instructions",
            )
        elif total > 0.8 * window:
            self.warning(
                "token_estimate",
                f"Estimated {total:,} tokens is at {100 * total / window:.0f}% of the context window",
            )

    def finish(self) -> common_pb2.PreflightReport:
        self.report.is_valid = not any(
            issue.severity == common_pb2.PREFLIGHT_SEVERITY_ERROR for issue in self.report.issues
        )
        return self.report
