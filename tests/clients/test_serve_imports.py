"""A service's process loads what it serves, and not the rest of swarmd.

Each check runs in a fresh interpreter, as ``swarmd serve`` does: the CLI's
serve-only parser, then the service built (not started). Memory is the
reason: PyJWT and cryptography, libgit2 and the CLI's client side cost a
service about 25 MB it never uses (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Loaded by no service unless its settings ask for it.
NEVER = ("jwt", "cryptography", "pygit2", "kubernetes", "swarmd.clients.cli.commands", "swarmd.clients.cli.render")
#: Only the executor runs agent loops (tool schemas, the worktree code); the
#: orchestrator imports the executor plugins' modules to know their names.
EXECUTOR_ONLY = ("jsonschema", "swarmd.plugins.runtime.toolbox", "swarmd.plugins.runtime.worktree.manager")
#: ... but not what those plugins load once they run sub-agents: the agent
#: runtime, the worktree code, an HTTP client for the model.
RUNS_SUBAGENTS = (
    "httpx",
    "jsonschema",
    "swarmd.plugins.runtime.attempt",
    "swarmd.plugins.runtime.toolbox",
    "swarmd.plugins.runtime.worktree.manager",
)

PROBE = """
import asyncio, json, sys
from swarmd.clients.cli import build_parser
from swarmd.clients.launcher import build_service
from swarmd.services.config import load_settings

import os

kind, db, jwks_url, watched = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
args = build_parser(serve_only=True).parse_args(["serve", kind, "--listen", "127.0.0.1:0"])
settings = load_settings(None, env={})
settings.result_store.db_path = db
settings.orchestrator.journal_path = None
settings.orchestrator.result_store_address = "127.0.0.1:1"
settings.orchestrator.executor_address = "127.0.0.1:2"
section = {"result-store": settings.result_store, "executor": settings.executor,
           "orchestrator": settings.orchestrator}[kind]
section.listen = args.listen
settings.telemetry.enabled = False
if jwks_url:
    section.auth.jwt.jwks_url = jwks_url

async def build():
    host, _service = await build_service(kind, settings)

asyncio.run(build())
print(json.dumps([name for name in watched if name in sys.modules]), flush=True)
os._exit(0)  # the store's database thread would keep the interpreter up
"""


def _loaded(kind: str, tmp_path: Path, *, jwks_url: str = "") -> list[str]:
    watched = [*NEVER, *EXECUTOR_ONLY, *RUNS_SUBAGENTS]
    run = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(tmp_path / "swarmd.db"), jwks_url, json.dumps(watched)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["result-store", "orchestrator", "executor"])
def test_a_service_loads_only_what_it_serves(kind: str, tmp_path: Path) -> None:
    loaded = _loaded(kind, tmp_path)
    assert not set(loaded) & set(NEVER)
    if kind == "executor":
        assert "swarmd.plugins.runtime.toolbox" in loaded  # the probe sees what a service imports
    else:
        assert not set(loaded) & set(RUNS_SUBAGENTS)
    if kind == "result-store":
        assert not set(loaded) & set(EXECUTOR_ONLY)


def test_a_service_that_accepts_jwts_loads_pyjwt(tmp_path: Path) -> None:
    # Built, not started: the keys would be fetched in the background once it serves.
    assert "jwt" in _loaded("result-store", tmp_path, jwks_url="http://127.0.0.1:9/jwks.json")


def test_swarmd_serve_does_not_import_the_other_commands(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from swarmd.clients.cli import main\n"
        "rc = main(['-v', 'serve', 'no-such-service'])\n"
    )
    probe = code.replace("rc = ", "try:\n    ") + (
        "except SystemExit as exc:\n    rc = exc.code\n"
        "print(rc, 'swarmd.clients.cli.commands' in sys.modules, 'swarmd.clients.cli.arguments' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert run.stdout.split() == ["2", "False", "False"], run.stdout + run.stderr
    assert "invalid choice: 'no-such-service'" in run.stderr
