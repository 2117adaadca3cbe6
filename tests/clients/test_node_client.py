"""The Node.js client (clients/node), generated from the protos, against live services."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from swarmd.clients.launcher import EmbeddedSwarmd

pytestmark = pytest.mark.timeout(120)

NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


async def test_node_client_runs_a_swarm(tmp_path: Path, calc_repo: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is required for the Node client's tests"
    assert (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir(), (
        "clients/node dependencies are missing: `make test` installs them (npm ci --prefix clients/node)"
    )
    cassette = tmp_path / "cassette.jsonl"
    lines = [
        {"key": "parser", "step": 1, "tool_calls": [{"name": "write", "arguments": {"path": "src/calc/parser.py", "content": "X = 1\n"}}]},
        {"key": "parser", "step": 2, "content": "wrote the parser"},
        {"key": "review", "step": 1, "content": "looks fine"},
    ]
    cassette.write_text("".join(json.dumps(line) + "\n" for line in lines))
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb:
        proc = await asyncio.create_subprocess_exec(
            node, "--test", "test/",
            cwd=NODE_CLIENT,
            env={
                **os.environ,
                "SWARMD_ADDRESS": emb.orchestrator_address,
                "SWARMD_TEST_REPO": str(calc_repo),
                "SWARMD_TEST_MODEL": f"replay/{cassette}",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    report = out.decode()
    assert proc.returncode == 0, report
    assert "# pass 3" in report and "# fail 0" in report, report  # tls.test.js, auth.test.js: skipped here
    assert "# skipped 4" in report, report
    assert (calc_repo / "src" / "calc" / "parser.py").read_text() == "X = 1\n"


def test_node_client_over_mutual_tls(tmp_path: Path) -> None:
    """The Node client against three ``swarmd serve`` processes that require mTLS."""
    node = shutil.which("node")
    assert node, "Node.js is required for the Node client's tests"
    pki = tmp_path / "pki"
    gen = Path(__file__).resolve().parents[2] / "scripts" / "gen_certs.sh"
    subprocess.run([str(gen), str(pki)], check=True, capture_output=True)
    tls = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server-key.pem"),
           "--tls-ca", str(pki / "ca.pem"), "--tls-client-auth", "require"]
    swarmd = str(Path(sys.executable).with_name("swarmd"))
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        proc = subprocess.Popen(
            [swarmd, "serve", *args, "--listen", "127.0.0.1:0", *tls], cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        assert match, line
        return match.group(1)

    try:
        store = start("result-store", "--db", str(tmp_path / "store.db"))
        executor = start("executor")
        orchestrator = start("orchestrator", "--result-store", store, "--executor", executor)
        run = subprocess.run(
            [node, "--test", "test/tls.test.js"], cwd=NODE_CLIENT, timeout=90, capture_output=True, text=True,
            env={**os.environ, "SWARMD_TLS_ADDRESS": orchestrator, "SWARMD_TEST_PKI": str(pki)},
        )
    finally:
        for p in procs:
            p.terminate()
            p.communicate(timeout=30)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "# pass 2" in report and "# fail 0" in report and "# skipped 0" in report, report


async def test_node_client_presents_a_bearer_token(tmp_path: Path) -> None:
    """The Node client against services that authenticate: its token reads its
    tenant's swarm; no token, a wrong one and another tenant's are refused."""
    from fakes.auth_world import make_world, serve_with_auth, token_of
    from fakes.swarm_services import fast_config, plan, subtask

    from swarmd.clients.client import SwarmdClient

    node = shutil.which("node")
    assert node, "Node.js is required for the Node client's tests"
    world = make_world(tmp_path / "auth")
    async with serve_with_auth(world, tmp_path) as services:
        async with SwarmdClient(services.orchestrator_address, token=token_of("alice")) as alice:
            reply = await alice.submit(task="t", plan=plan(subtask("only")), config=fast_config())
            await alice.wait(reply.swarm.id)
        proc = await asyncio.create_subprocess_exec(
            node, "--test", "test/auth.test.js",
            cwd=NODE_CLIENT,
            env={
                **os.environ,
                "SWARMD_AUTH_ADDRESS": services.orchestrator_address,
                "SWARMD_AUTH_TOKEN": token_of("alice"),
                "SWARMD_AUTH_OTHER_TOKEN": token_of("bob"),
                "SWARMD_AUTH_SWARM": reply.swarm.id,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    report = out.decode()
    assert proc.returncode == 0, report
    assert "# pass 2" in report and "# fail 0" in report and "# skipped 0" in report, report
