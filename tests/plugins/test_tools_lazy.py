"""The file tools on a lazy worktree give what they give on a full checkout.

Both worktrees start from the same generated commit; the same generated
sequence of tool calls runs on each, and every answer (or error) and the
tree each commit ends with must be equal. The lazy one must not have been
written whole by reads, listings and searches.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from helpers import git
from lazy_repo import DIRS, WORDS, context, generate, on_disk, pair

from swarmd.plugins import Tool, ToolContext, ToolError
from swarmd.plugins.runtime.worktree.lazy import is_lazy
from swarmd.plugins.tools.bash import BashTool
from swarmd.plugins.tools.files import EditTool, ListTool, MultiEditTool, ReadTool, WriteTool
from swarmd.plugins.tools.search import GlobTool, GrepTool

GLOBS = ["**/*.py", "*", "src/**", "**/f0*.txt", "docs/*.{md,crlf}", "**/*_link", "tests/**/*.md", "data/*"]
SPECIAL = ["run.sh", "AGENTS.md", "deep_link", "file_link", "deep_link/missing", "data/blob.bin", "docs/win.crlf", ".gitattributes"]


async def answer(tool: Tool, args: dict[str, Any], ctx: ToolContext) -> tuple[str, str]:
    try:
        result = await tool.run(args, ctx)
    except ToolError as exc:
        return "error", str(exc)
    return ("ok" if result.success else "failed"), result.output


def calls(rng: random.Random, texts: list[str], count: int) -> list[tuple[Tool, dict[str, Any]]]:
    """A random but reproducible mix of tool calls on the generated repository."""
    paths = texts + SPECIAL + ["nope.txt", "src/none/x.py"]
    out: list[tuple[Tool, dict[str, Any]]] = []
    for n in range(count):
        kind = rng.choice(["read", "read", "list", "glob", "grep", "grep", "edit", "write", "multiedit"])
        path = rng.choice(paths)
        if kind == "read":
            out.append((ReadTool(), {"path": path, "offset": rng.randint(1, 3), "limit": rng.randint(1, 8)}))
        elif kind == "list":
            out.append((ListTool(), {"path": rng.choice([*DIRS, ".", "deep_link", "src/core/deep/"])}))
        elif kind == "glob":
            out.append((GlobTool(), {"pattern": rng.choice(GLOBS), "path": rng.choice([".", "src", "docs"])}))
        elif kind == "grep":
            args: dict[str, Any] = {"pattern": rng.choice([*WORDS, r"^\w+ \w+$", "crlf\r$", "big"])}
            if rng.random() < 0.5:
                args["include"] = rng.choice(["*.py", "*.md", "src/**/*.txt", "*.crlf"])
            if rng.random() < 0.3:
                args["path"] = rng.choice(DIRS)
            args["case_insensitive"] = rng.random() < 0.3
            args["limit"] = 2000
            out.append((GrepTool(), args))
        elif kind == "edit":
            old = rng.choice(WORDS)
            out.append((EditTool(), {"path": path, "old_string": old, "new_string": f"{old}-{n}", "replace_all": True}))
        elif kind == "write":
            target = path if rng.random() < 0.5 else f"{rng.choice(DIRS)}/new{n}/made{n}.txt"
            out.append((WriteTool(), {"path": target, "content": f"written {n}\n"}))
        else:
            edits = [
                {"path": rng.choice(texts), "old_string": rng.choice(WORDS), "new_string": f"m{n}", "replace_all": True}
                for _ in range(2)
            ]
            out.append((MultiEditTool(), {"edits": edits}))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_tools_answer_alike_and_commits_match(git_repo: Path, seed: int) -> None:
    texts = generate(git_repo, seed=seed)
    mgr, full, lazy = await pair(git_repo)
    full_ctx, lazy_ctx = context(full), context(lazy)
    rng = random.Random(seed)
    for n, (tool, args) in enumerate(calls(rng, texts, 160)):
        want = await answer(tool, args, full_ctx)
        got = await answer(tool, args, lazy_ctx)
        assert got == want, f"call {n}: {tool.name} {args}"
    assert is_lazy(lazy.path), "the tools must not write the whole worktree"
    assert len(on_disk(lazy.path)) < len(on_disk(full.path)) / 2
    full_commit = await mgr.commit(full, "same work")
    lazy_commit = await mgr.commit(lazy, "same work")
    assert full_commit and lazy_commit
    assert git(git_repo, "rev-parse", f"{full_commit}^{{tree}}") == git(git_repo, "rev-parse", f"{lazy_commit}^{{tree}}")


async def test_reads_and_searches_write_only_what_they_open(git_repo: Path) -> None:
    texts = generate(git_repo)
    _, _, lazy = await pair(git_repo)
    ctx = context(lazy)
    before = on_disk(lazy.path)
    # Links, AGENTS.md and the attribute and ignore rules come at once.
    assert before == {".gitattributes", "AGENTS.md", "deep_link", "file_link"}
    await GrepTool().run({"pattern": "Hello"}, ctx)
    await GlobTool().run({"pattern": "**"}, ctx)
    await ListTool().run({"path": "src"}, ctx)
    # Searching followed file_link to the file it names (and deep_link to its folder,
    # created empty); no other file was written.
    assert files_on_disk(lazy.path) == before | {texts[0]}
    await ReadTool().run({"path": texts[5]}, ctx)
    assert texts[5] in on_disk(lazy.path)
    assert git(lazy.path, "status", "--porcelain") == ""
    assert f"S {texts[6]}" in git(lazy.path, "ls-files", "-t").splitlines()
    assert f"H {texts[5]}" in git(lazy.path, "ls-files", "-t").splitlines()


def files_on_disk(root: Path) -> set[str]:
    return {rel for rel in on_disk(root) if (root / rel).is_symlink() or not (root / rel).is_dir()}


async def test_bash_sees_the_whole_tree(git_repo: Path) -> None:
    generate(git_repo)
    _, full, lazy = await pair(git_repo)
    await EditTool().run({"path": "run.sh", "old_string": "Hello", "new_string": "Bye"}, context(lazy))
    await EditTool().run({"path": "run.sh", "old_string": "Hello", "new_string": "Bye"}, context(full))
    command = "find . -path ./.git -prune -o -print | sort | xargs -d '\\n' ls -ld --time-style=+ | awk '{print $1, $5, $NF}'"
    listing = {"command": command + "; git status --porcelain; ./run.sh; cat docs/win.crlf | od -c | head -2"}
    want = await BashTool().run(listing, context(full))
    got = await BashTool().run(listing, context(lazy))
    assert got.output == want.output and "Bye" in got.output
    assert not is_lazy(lazy.path)
    assert on_disk(lazy.path) == on_disk(full.path)
    assert not any(line.startswith("S ") for line in git(lazy.path, "ls-files", "-t").splitlines())
    assert git(lazy.path, "status", "--porcelain") == " M run.sh\n"
