"""The house-rule checks `make lint` runs: import circles and module size."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cycles_check = _script("check_import_cycles")
size_check = _script("check_module_size")


def test_a_circle_is_found_and_shown_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles_check.cycles(graph) == [["a", "b", "c", "a"]]


def test_a_line_of_imports_has_no_circle() -> None:
    graph = {"run": {"scheduling", "live"}, "scheduling": {"attempts", "live"}, "attempts": {"live"}, "live": set()}
    assert cycles_check.cycles(graph) == []


def test_type_checking_and_function_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "attempts.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from swarmd.services.orchestrator import live\n"
        "if TYPE_CHECKING:\n"
        "    from swarmd.services.orchestrator.run import SwarmRun\n"
        "def later():\n"
        "    import swarmd.plugins.tools.bash\n"
    )
    known = {
        name: source
        for name in (
            "swarmd.services.orchestrator",
            "swarmd.services.orchestrator.attempts",
            "swarmd.services.orchestrator.live",
            "swarmd.services.orchestrator.run",
            "swarmd.plugins.tools",
        )
    }
    edges = cycles_check.imported("swarmd.services.orchestrator.attempts", source, known)
    assert edges == {
        "swarmd.services.orchestrator.live",
        "swarmd.services.orchestrator.run",
        "swarmd.plugins.tools",
    }


def test_swarmd_has_no_import_circle() -> None:
    known = cycles_check.module_files()
    assert "swarmd.services.orchestrator.run" in known
    graph = {name: cycles_check.imported(name, path, known) for name, path in known.items()}
    assert cycles_check.cycles(graph) == []


def test_a_long_module_is_reported_and_generated_code_is_not(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * 500)
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * 501)
    (tmp_path / "pkg" / "thing_pb2.py").write_text("x = 1\n" * 900)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "vendored.py").write_text("x = 1\n" * 900)
    checked, too_long = size_check.over_limit(tmp_path)
    assert checked == 2
    assert too_long == [(501, Path("pkg/long.py"))]
