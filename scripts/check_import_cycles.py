#!/usr/bin/env python3
"""Fail when swarmd's modules import each other in a circle.

    python scripts/check_import_cycles.py

Reads the source of every module under the ``swarmd`` namespace (the folders
setup.py maps: protos/swarmd/v1, services, plugins, clients) without importing
anything, and follows every ``import`` and ``from ... import`` statement to a
swarmd module: at the top level, inside functions and under
``if TYPE_CHECKING:`` alike, because a circle that only type checkers see is
still a circle in the design. ``from package import name`` counts as an import
of the submodule ``package.name`` when that is a module, else of the package.
Prints each circle found (one path through each strongly connected group) and
exits 1, or exits 0 when the graph is acyclic.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Import name -> folder, as setup.py maps them.
PACKAGES = {
    "swarmd.v1": "protos/swarmd/v1",
    "swarmd.services": "services",
    "swarmd.plugins": "plugins",
    "swarmd.clients": "clients",
}
SKIP_PARTS = {"node", "node_modules", "__pycache__"}


def module_files() -> dict[str, Path]:
    """Every swarmd module's import name and source file."""
    modules: dict[str, Path] = {}
    for name, folder in PACKAGES.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if SKIP_PARTS & set(rel.parts):
                continue
            parts = [name, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The swarmd modules ``module`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    edges: set[str] = set()
    for name in found:
        # `import swarmd.plugins.tools.bash` names the module itself; walk up to one we know.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            edges.add(name)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(root: str) -> None:  # Tarjan's algorithm, iterative
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [circle_in(group, graph) for group in groups]


def circle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return sorted(group)


def main() -> int:
    known = module_files()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    found = cycles(graph)
    for circle in found:
        print("import circle: " + " -> ".join(circle), file=sys.stderr)
    if found:
        print(f"{len(found)} import circle(s) among swarmd's modules", file=sys.stderr)
        return 1
    print(f"no import circles among {len(known)} swarmd modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
