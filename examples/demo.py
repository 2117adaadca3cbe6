#!/usr/bin/env python3
"""`make demo`: run a five-subtask swarm end to end on a throwaway git repository.

The model is the replay provider playing examples/demo/cassette.jsonl, so the
demo needs no network and no API key; everything else is real: the three
gRPC services (embedded, on loopback), git worktrees, tools, merges, the
result store and the event stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWARMD = Path(sys.executable).with_name("swarmd")
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Demo User",
    "GIT_AUTHOR_EMAIL": "demo@example.invalid",
    "GIT_COMMITTER_NAME": "Demo User",
    "GIT_COMMITTER_EMAIL": "demo@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> Path:
    repo = root / "calc"
    (repo / "src" / "calc").mkdir(parents=True)
    (repo / "README.md").write_text("# calc\n\nA tiny calculator.\n")
    (repo / "src" / "calc" / "__init__.py").write_text('"""A tiny calculator."""\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Start the calculator project")
    return repo


def banner(text: str) -> None:
    print(f"\n\033[1m== {text} ==\033[0m" if sys.stdout.isatty() else f"\n== {text} ==", flush=True)


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="swarmd-demo-"))
    repo = make_repo(root)
    banner(f"throwaway repository: {repo}")
    print(git(repo, "log", "--oneline"), end="")

    command = [
        str(SWARMD), "run",
        "--plan", str(HERE / "demo" / "plan.yaml"),
        "--model", f"replay/{HERE / 'demo' / 'cassette.jsonl'}",
        "--repo", str(repo),
        "--plain",
    ]
    banner("swarmd run --plan examples/demo/plan.yaml --model replay/examples/demo/cassette.jsonl")
    code = subprocess.run(command, cwd=root, env=GIT_ENV).returncode

    banner("the repository afterwards: every sub-agent's work committed and merged")
    print(git(repo, "log", "--oneline", "--graph", "--all", "-n", "20"), end="")
    banner("the calculator the swarm built")
    run = subprocess.run(
        [sys.executable, "-m", "calc.cli", "6", "*", "7"],
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo / "src")}, capture_output=True, text=True,
    )
    print(f"$ python -m calc.cli 6 '*' 7\n{run.stdout or run.stderr}", end="")
    banner("README.md")
    print((repo / "README.md").read_text(), end="")
    print(f"\n(the swarm's database is {repo / '.swarmd' / 'swarmd.db'}; try: "
          f"{SWARMD} list --repo {repo})")
    return code


if __name__ == "__main__":
    sys.exit(main())
