"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import git

# The conformance kit swarmd ships for plugin authors (its fixtures are prefixed swarmd_).
pytest_plugins = ["swarmd.plugins.testing"]

# Plugins installed in the developer's environment must not change test results.
os.environ.setdefault("SWARMD_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(autouse=True)
def _hermetic_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Entry points of swarmd itself and of distributions tests install under
    their temporary directories only: plugins installed in the environment
    must not change results, even for tests that turn autoload on."""
    import swarmd.plugins.manager as manager

    base = str(tmp_path_factory.getbasetemp().resolve())
    every = manager._entry_points

    def ours() -> list[Any]:
        kept = []
        for ep in every():
            dist = getattr(ep, "dist", None)
            if dist is None or dist.metadata["Name"] == manager.BUILTIN_DISTRIBUTION:
                kept.append(ep)
            elif str(Path(str(dist.locate_file(""))).resolve()).startswith(base):
                kept.append(ep)
        return kept

    monkeypatch.setattr(manager, "_entry_points", ours)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh git repository with one commit on branch main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.invalid")
    (repo / "README.md").write_text("# demo\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "demo"


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    """The demo's starting repository."""
    repo = tmp_path / "calc"
    (repo / "src" / "calc").mkdir(parents=True)
    (repo / "README.md").write_text("# calc\n\nA tiny calculator.\n")
    (repo / "src" / "calc" / "__init__.py").write_text('"""A tiny calculator."""\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    return repo


@pytest.fixture
def demo_plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLES / "plan.yaml", path)
    return path


@pytest.fixture
def demo_model() -> str:
    return f"replay/{EXAMPLES / 'cassette.jsonl'}"
