"""The deployment compose.tls.yaml describes, as three processes: mutual TLS
and bearer tokens on every service (scripts/gen_certs.sh, scripts/gen_tokens.sh),
the demo plan run by the CLI with a client token."""

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

pytestmark = pytest.mark.timeout(150)

SWARMD = str(Path(sys.executable).with_name("swarmd"))
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def start(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [SWARMD, "serve", *args, "--listen", "127.0.0.1:0"], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"service did not start: {line!r} {proc.communicate(timeout=10)[0]}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    return proc.returncode


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMD_TOKEN")}
    return subprocess.run([SWARMD, *args], capture_output=True, text=True, timeout=90, env=env)


def test_demo_plan_with_mutual_tls_and_tokens(tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str) -> None:
    pki, tokens = tmp_path / "pki", tmp_path / "tokens"
    subprocess.run([str(SCRIPTS / "gen_certs.sh"), str(pki)], check=True, capture_output=True)
    subprocess.run([str(SCRIPTS / "gen_tokens.sh"), str(tokens), "calc-team"], check=True, capture_output=True)
    (tokens / "other.token").write_text("swarmd_a_token_nobody_listed\n")
    tls = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server-key.pem"),
           "--tls-ca", str(pki / "ca.pem"), "--tls-client-auth", "require"]
    client = ["--tls-ca", str(pki / "ca.pem"), "--tls-cert", str(pki / "client.pem"),
              "--tls-key", str(pki / "client-key.pem")]
    env = {}
    for section in ("ORCHESTRATOR", "EXECUTOR", "RESULT_STORE"):
        env[f"SWARMD_{section}__AUTH__TOKEN_FILE"] = str(tokens / "tokens.yaml")
        env[f"SWARMD_{section}__AUTH__SERVICE_TOKEN_FILE"] = str(tokens / "service.token")
        env[f"SWARMD_{section}__AUTH__SUBAGENT_KEY_FILE"] = str(tokens / "subagent.key")
    procs: list[subprocess.Popen[str]] = []
    try:
        store, store_addr = start(["result-store", "--db", str(tmp_path / "store.db"), *tls], tmp_path, env)
        procs.append(store)
        executor, executor_addr = start(["executor", *tls], tmp_path, env)
        procs.append(executor)
        orch, orch_addr = start(
            ["orchestrator", "--result-store", store_addr, "--executor", executor_addr, *tls], tmp_path, env
        )
        procs.append(orch)
        run = cli("run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo),
                  "--orchestrator", orch_addr, "--request-delay-ms", "0", "--json", *client,
                  "--token-file", str(tokens / "client.token"))
        assert run.returncode == 0, run.stderr
        swarm = json.loads(run.stdout)
        assert swarm["state"] == "SWARM_STATE_SUCCEEDED" and swarm["tenant"] == "calc-team"
        assert len(swarm["subtasks"]) == 5
        assert "src/calc/cli.py" in git(calc_repo, "ls-tree", "-r", "--name-only", "HEAD")

        status = ("status", swarm["id"], "--orchestrator", orch_addr, *client)
        admin = cli(*status, "--token-file", str(tokens / "admin.token"))
        assert admin.returncode == 0 and "SUCCESS" in admin.stdout, admin.stderr
        anonymous = cli(*status)
        assert anonymous.returncode == 3 and "UNAUTHENTICATED" in anonymous.stderr
        unlisted = cli(*status, "--token-file", str(tokens / "other.token"))
        assert unlisted.returncode == 3 and "UNAUTHENTICATED" in unlisted.stderr
        # The services' own token is not a client's: it may not submit.
        service = cli("run", "--plan", str(demo_plan), "--model", demo_model, "--repo", str(calc_repo),
                      "--orchestrator", orch_addr, *client, "--token-file", str(tokens / "service.token"))
        assert service.returncode == 3 and "PERMISSION_DENIED" in service.stderr, service.stderr
    finally:
        codes = [stop(p) for p in reversed(procs)]
    assert codes == [0, 0, 0], "every service shuts down cleanly on SIGTERM"
