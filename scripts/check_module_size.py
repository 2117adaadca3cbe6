#!/usr/bin/env python3
"""Fail when a Python module in the repository is over 500 lines.

    python scripts/check_module_size.py

A module that long does more than one job: split it along the lines its
docstring draws, each part with one job and a name that says it. Code
generated from the protos (``*_pb2.py``, ``*_pb2.pyi``, ``*_pb2_grpc.py``) is
not written by hand and is exempt; so are the virtualenv, build output and
npm's node_modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 500
SKIP_DIRS = {".git", ".venv", "build", "dist", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
GENERATED = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def modules(root: Path) -> list[Path]:
    """Every hand-written .py file under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS & set(rel.parts[:-1]) or path.name.endswith(GENERATED):
            continue
        found.append(path)
    return found


def over_limit(root: Path) -> tuple[int, list[tuple[int, Path]]]:
    """How many modules were checked, and the (lines, path) of each one over the limit."""
    too_long = []
    checked = modules(root)
    for path in checked:
        with path.open("rb") as f:
            lines = sum(1 for _ in f)
        if lines > LIMIT:
            too_long.append((lines, path.relative_to(root)))
    return len(checked), too_long


def main() -> int:
    checked, too_long = over_limit(ROOT)
    for lines, rel in too_long:
        print(f"{rel}: {lines} lines (limit {LIMIT}); split it along its docstring's lines", file=sys.stderr)
    if too_long:
        return 1
    print(f"no module over {LIMIT} lines among {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
