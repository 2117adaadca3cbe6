"""The same plan with the three services as separate processes, driven by the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git

pytestmark = pytest.mark.timeout(120)

SWARMD = str(Path(sys.executable).with_name("swarmd"))


def start(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [SWARMD, "serve", *args, "--listen", "127.0.0.1:0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        rest = proc.communicate(timeout=10)[0]
        raise AssertionError(f"service did not start: {line!r} {rest}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)  # drains and closes the pipe
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    return proc.returncode


def test_plan_across_three_processes(tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str) -> None:
    procs: list[subprocess.Popen[str]] = []
    try:
        store, store_addr = start("result-store", "--db", str(tmp_path / "store.db"), cwd=tmp_path)
        procs.append(store)
        executor, executor_addr = start("executor", cwd=tmp_path)
        procs.append(executor)
        orch, orch_addr = start("orchestrator", "--result-store", store_addr, "--executor", executor_addr, cwd=tmp_path)
        procs.append(orch)

        run = subprocess.run(
            [SWARMD, "run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo),
             "--orchestrator", orch_addr, "--request-delay-ms", "0", "--json"],
            capture_output=True, text=True, timeout=90,
        )
        assert run.returncode == 0, run.stderr
        swarm = json.loads(run.stdout)
        assert swarm["state"] == "SWARM_STATE_SUCCEEDED"
        assert len(swarm["subtasks"]) == 5
        assert "src/calc/cli.py" in git(calc_repo, "ls-tree", "-r", "--name-only", "HEAD")

        # The swarm is durable in the store process: status and list answer from it.
        status = subprocess.run(
            [SWARMD, "status", swarm["id"], "--orchestrator", orch_addr],
            capture_output=True, text=True, timeout=30,
        )
        assert status.returncode == 0 and "SUCCESS" in status.stdout
        listing = subprocess.run([SWARMD, "list", "--orchestrator", orch_addr], capture_output=True, text=True, timeout=30)
        assert swarm["id"] in listing.stdout
    finally:
        codes = [stop(p) for p in reversed(procs)]
    assert codes == [0, 0, 0], "every service shuts down cleanly on SIGTERM"


def test_plan_across_three_processes_with_mutual_tls(
    tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str
) -> None:
    """Every server requires a client certificate from the CA; the services
    dial each other with their own certificates, the CLI with the client's."""
    pki = tmp_path / "pki"
    gen = Path(__file__).resolve().parents[2] / "scripts" / "gen_certs.sh"
    subprocess.run([str(gen), str(pki)], check=True, capture_output=True)
    tls = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server-key.pem"),
           "--tls-ca", str(pki / "ca.pem"), "--tls-client-auth", "require"]
    client = ["--tls-ca", str(pki / "ca.pem"), "--tls-cert", str(pki / "client.pem"),
              "--tls-key", str(pki / "client-key.pem")]
    procs: list[subprocess.Popen[str]] = []
    try:
        store, store_addr = start("result-store", "--db", str(tmp_path / "store.db"), *tls, cwd=tmp_path)
        procs.append(store)
        executor, executor_addr = start("executor", *tls, cwd=tmp_path)
        procs.append(executor)
        orch, orch_addr = start(
            "orchestrator", "--result-store", store_addr, "--executor", executor_addr, *tls, cwd=tmp_path
        )
        procs.append(orch)
        run = subprocess.run(
            [SWARMD, "run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo),
             "--orchestrator", orch_addr, "--request-delay-ms", "0", "--json", *client],
            capture_output=True, text=True, timeout=90,
        )
        assert run.returncode == 0, run.stderr
        swarm = json.loads(run.stdout)
        assert swarm["state"] == "SWARM_STATE_SUCCEEDED" and len(swarm["subtasks"]) == 5
        assert "src/calc/cli.py" in git(calc_repo, "ls-tree", "-r", "--name-only", "HEAD")
        # Without a client certificate, or in plaintext, the orchestrator is out of reach.
        for flags in (["--tls-ca", str(pki / "ca.pem")], []):
            status = subprocess.run(
                [SWARMD, "status", swarm["id"], "--orchestrator", orch_addr, *flags],
                capture_output=True, text=True, timeout=60,
            )
            assert status.returncode != 0 and "UNAVAILABLE" in status.stderr, status.stderr
    finally:
        codes = [stop(p) for p in reversed(procs)]
    assert codes == [0, 0, 0]
