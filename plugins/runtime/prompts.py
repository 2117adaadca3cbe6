"""Sub-agent prompts (after seed §4.4, rewritten for swarmd's tool set).

Differences from the seed, on purpose: no prd/ralph/agent-spawn or webfetch
tools; the tool list is generated from the tools actually offered; the agent
is told its changes are committed and merged for it; read-only subtasks get
a reduced READ-ONLY prompt (seed v4.7, §15.1); dependency results are
labelled with the dependency's *name*, and a failed dependency is marked as
such with its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmd.plugins.model import ToolSpec

PROMPT_TEMPLATE_VERSION = "1"
"""Bump when the prompt templates change meaning: it is part of every cache key."""

__all__ = [
    "AGENTS_MD",
    "DependencyContext",
    "build_system_prompt",
    "build_user_prompt",
    "find_agents_md",
]

AGENTS_MD = "AGENTS.md"
MAX_AGENTS_MD_CHARS = 20_000

#: One-line descriptions of the built-in tools for the prompt.
TOOL_LINES = {
    "read": "Read a file with line numbers (offset/limit for long files)",
    "write": "Create or overwrite a file",
    "edit": "Replace an exact, unique piece of text in a file (replace_all for every occurrence)",
    "multiedit": "Several edits across files, applied all-or-nothing",
    "list": "List a directory",
    "glob": "Find files by pattern, e.g. **/*.py",
    "grep": "Search file contents with a regular expression",
    "bash": "Run shell commands (tests, builds); they start in the working directory",
    "swarm_share": "Share results with the other sub-agents running in parallel",
}

SHARING = """
SHARING RESULTS:
Use swarm_share to collaborate with the other sub-agents of this swarm:
- swarm_share({action: 'publish', key: 'my-finding', value: '...', tags: ['research']}) to share a result
- swarm_share({action: 'get', key: 'some-key'}) to retrieve a result from another agent
- swarm_share({action: 'list'}) to see all shared results
- swarm_share({action: 'query_tags', tags: ['research']}) to find results by tag
- swarm_share({action: 'wait', key: 'some-key', timeout_secs: 120}) to wait until another agent publishes a key
"""


@dataclass(frozen=True)
class DependencyContext:
    """A finished dependency as the prompt shows it."""

    name: str
    result: str
    success: bool = True
    error: str = ""


def find_agents_md(working_dir: Path, repo_root: Path | None = None) -> str | None:
    """The nearest AGENTS.md from ``working_dir`` up to ``repo_root``.

    Without ``repo_root`` the walk stops at the first directory that holds
    ``.git`` (a directory, or the file a worktree has). Returns the file's
    text (bounded), or None.
    """
    start = working_dir.resolve()
    stop = repo_root.resolve() if repo_root is not None else None
    for directory in (start, *start.parents):
        if stop is not None and directory != stop and stop not in directory.parents:
            break  # walked above the repository
        candidate = directory / AGENTS_MD
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            if len(text) > MAX_AGENTS_MD_CHARS:
                text = text[:MAX_AGENTS_MD_CHARS] + "\n[AGENTS.md truncated]"
            return text
        if directory == stop or (stop is None and (directory / ".git").exists()):
            break
    return None


def _tool_lines(tools: Sequence[ToolSpec]) -> str:
    lines = []
    for tool in tools:
        text = TOOL_LINES.get(tool.name) or (tool.description.strip().split("\n", 1)[0] or tool.name)
        lines.append(f"- {tool.name}: {text}")
    return "\n".join(lines)


def build_system_prompt(
    *,
    subtask_id: str,
    specialty: str,
    working_dir: str,
    tools: Sequence[ToolSpec],
    read_only: bool = False,
    worktree_branch: str = "",
    agents_md: str | None = None,
) -> str:
    """The system prompt of one sub-agent."""
    who = f"a {specialty} specialist sub-agent" if specialty.strip() else "a sub-agent"
    names = {t.name for t in tools}
    parts = [
        f"You are {who} (ID: {subtask_id}) in a swarm of AI agents working in parallel on one task. "
        "You have access to tools to complete your task.",
    ]
    if read_only:
        parts.append(
            "READ-ONLY TASK: inspect, analyze, and report. You cannot modify files or run commands; "
            "your tools only read. Base your report on what you actually find."
        )
    parts.append(
        f"WORKING DIRECTORY: {working_dir}\n"
        "All file paths are relative to this directory; paths outside it are refused."
    )
    if not read_only:
        parts.append(
            "IMPORTANT: You MUST use tools to make changes. Do not just describe what to do - "
            "actually do it using the tools available."
        )
    parts.append("Available tools:\n" + _tool_lines(tools))
    if "swarm_share" in names:
        parts.append(SHARING.strip())
    if not read_only:
        where = f"your own git worktree (branch {worktree_branch})" if worktree_branch else "the repository"
        parts.append(
            f"YOUR CHANGES: you work in {where}. When you finish, everything you changed is committed "
            "and merged for you automatically. Do not run git commit, merge, rebase, push or checkout "
            "yourself, and do not leave work uncommitted elsewhere. Other agents work on other parts in "
            "parallel: change only what your task needs."
        )
        parts.append(
            "When done, reply WITHOUT calling any tool and give a brief summary of what you accomplished "
            "(files changed, checks run, anything left undone)."
        )
    else:
        parts.append("When done, reply WITHOUT calling any tool and give your findings as a concise report.")
    prompt = "\n\n".join(parts)
    if agents_md:
        prompt += f"\n\nPROJECT INSTRUCTIONS (from AGENTS.md):\n{agents_md}"
    return prompt


def build_user_prompt(
    instruction: str, dependencies: Sequence[DependencyContext] = (), carried_over: str = ""
) -> str:
    """``Complete this task:`` plus the results of the dependencies, by name.

    ``carried_over`` describes the changes an interrupted earlier attempt left
    in the worktree this attempt continues in (``git status``, a diffstat).
    """
    prompt = f"Complete this task:\n\n{instruction}"
    if carried_over:
        prompt += (
            "\n\nAn earlier attempt at this task was interrupted before it finished. Its changes are "
            "already in your working directory; check them and continue from them rather than "
            f"starting over:\n{carried_over}"
        )
    context = ""
    for dep in dependencies:
        if dep.success:
            context += f"\n--- Result from dependency {dep.name} ---\n{dep.result}\n"
        else:
            body = dep.result or "(no output)"
            context += f"\n--- Result from dependency {dep.name} (FAILED: {dep.error or 'unknown error'}) ---\n{body}\n"
    if context.strip():
        prompt += f"\n\nContext from prior work:\n{context}"
    return prompt
