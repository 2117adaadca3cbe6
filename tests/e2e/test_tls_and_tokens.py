"""The README's "TLS and tokens" block, run line by line: mutual TLS and
bearer tokens on the three services as separate processes (certificates
from scripts/gen_certs.sh, tokens from scripts/gen_tokens.sh), the demo
plan run by the CLI with a client token, and the A2A gateway in front of
them. The shell setup lines run in bash; each ``swarmd`` line runs as a
process with its fixed port replaced by one the system picks."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers import git

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SWARMD = str(Path(sys.executable).with_name("swarmd"))
ADDRESS = re.compile(r"127\.0\.0\.1:\d+")


def readme_block() -> list[str]:
    """The README's TLS-and-tokens commands, continuation lines joined, comments left out."""
    text = (ROOT / "README.md").read_text()
    start = text.index("**TLS and tokens.**")
    body = text[text.index("```sh\n", start) + 6 : text.index("```\n", text.index("```sh\n", start) + 6)]
    lines: list[str] = []
    pending = ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1].strip() + " "
            continue
        line = (pending + raw.strip()).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def expand(line: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), line)


class Runner:
    """Runs the block's lines in ``cwd``; fixed addresses become the ones bound."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        self.procs: list[subprocess.Popen[str]] = []

    def setup(self, lines: list[str]) -> None:
        script = "set -euo pipefail -a\n" + "\n".join(lines) + "\nenv -0\n"
        out = subprocess.run(["bash", "-c", script], cwd=self.cwd, capture_output=True, text=True, check=True,
                             timeout=60, env={"PATH": os.environ["PATH"], "HOME": str(self.cwd)})
        self.env = dict(item.split("=", 1) for item in out.stdout.split("\0") if "=" in item)
        self.env["PWD"] = str(self.cwd)

    def _map(self, text: str) -> str:
        return ADDRESS.sub(lambda m: self.addresses.get(m.group(0), m.group(0)), text)

    def _argv(self, line: str) -> tuple[dict[str, str], list[str], str | None]:
        words = shlex.split(expand(line, self.env))
        extra: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            extra[name] = value
        listen = None
        if "--listen" in words:
            at = words.index("--listen") + 1
            listen, words[at] = words[at], "127.0.0.1:0"
        assert words[0] == "swarmd", line
        return extra, [SWARMD, *(self._map(w) for w in words[1:])], listen

    def _process_env(self, extra: dict[str, str]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SWARMD_")}
        return {**base, **{k: v for k, v in self.env.items() if k.startswith("SWARMD_")}, **extra,
                "PYTHONUNBUFFERED": "1"}

    def serve(self, line: str) -> None:
        extra, argv, listen = self._argv(line.removesuffix("&").strip())
        proc = subprocess.Popen(argv, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=self._process_env(extra))
        self.procs.append(proc)
        assert proc.stdout is not None and listen is not None
        seen = []
        for _ in range(20):
            seen.append(proc.stdout.readline())
            match = re.search(r"listening on (\S+)", seen[-1])
            if match:
                self.addresses[listen] = match.group(1)
                return
            if not seen[-1]:
                break
        raise AssertionError(f"{line!r} did not start: {''.join(seen)}")

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        if line.startswith("curl "):
            return subprocess.run(["bash", "-c", self._map(line)], cwd=self.cwd, capture_output=True, text=True,
                                  timeout=60, env={"PATH": os.environ["PATH"]})
        extra, argv, _ = self._argv(line)
        return subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True, timeout=120,
                              env=self._process_env(extra))

    def stop(self) -> list[int | None]:
        codes = []
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            codes.append(proc.returncode)
        return codes


def test_the_readme_tls_and_tokens_block(tmp_path: Path, calc_repo: Path) -> None:
    assert calc_repo == tmp_path / "calc"
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    shutil.copytree(ROOT / "examples" / "demo", tmp_path / "examples" / "demo")
    lines = readme_block()
    first = next(i for i, line in enumerate(lines) if re.match(r"(\S+=\S+ )*(swarmd|curl) ", line))
    runner = Runner(tmp_path)
    runner.setup(lines[:first])
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for line in lines[first:]:
            if line.endswith("&"):
                runner.serve(line)
                continue
            done = runner.run(line)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            outputs[line.split()[0] if line.startswith("curl") else line.split()[1]] = done
        assert set(outputs) == {"run", "list", "curl"} and len(runner.procs) == 4

        # What the block did: the demo swarm succeeded in the client's tenant, and merged.
        assert "src/calc/cli.py" in git(calc_repo, "ls-tree", "-r", "--name-only", "HEAD")
        tasks = json.loads(outputs["curl"].stdout)["tasks"]
        assert len(tasks) == 1 and tasks[0]["status"]["state"] == "TASK_STATE_COMPLETED", tasks
        swarm_id = tasks[0]["id"]
        listed = outputs["list"].stdout.splitlines()
        assert len(listed) == 1 and re.match(rf"{swarm_id}\s+succeeded\s+5/5 ok", listed[0]), listed

        # And what it refuses.
        tokens = tmp_path / "tokens"
        (tokens / "other.token").write_text("swarmd_a_token_nobody_listed\n")
        orch = runner.addresses["127.0.0.1:50051"]
        client = shlex.split(runner.env["CLIENT"])
        status = f"swarmd status {swarm_id} --orchestrator {orch} {shlex.join(client)}"
        admin = runner.run(status + " --token-file tokens/admin.token")
        assert admin.returncode == 0 and "SUCCESS" in admin.stdout, admin.stderr
        anonymous = runner.run(status)
        assert anonymous.returncode == 3 and "UNAUTHENTICATED" in anonymous.stderr
        unlisted = runner.run(status + " --token-file tokens/other.token")
        assert unlisted.returncode == 3 and "UNAUTHENTICATED" in unlisted.stderr
        # The services' own token is not a client's: it may not submit, nor use the gateway.
        service = runner.run(
            f"swarmd run --plan examples/demo/plan.yaml --model replay/examples/demo/cassette.jsonl --repo calc "
            f"--orchestrator {orch} {shlex.join(client)} --token-file tokens/service.token"
        )
        assert service.returncode == 3 and "PERMISSION_DENIED" in service.stderr, service.stderr
        gateway = "http://" + runner.addresses["127.0.0.1:8080"] + "/rest/tasks"
        headers = {"A2A-Version": "1.0"}
        assert httpx.get(gateway, headers=headers, timeout=30).status_code == 401
        token = (tokens / "service.token").read_text().strip()
        assert httpx.get(gateway, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=30).status_code == 403
    finally:
        codes = runner.stop()
    assert codes == [0, 0, 0, 0], "every service shuts down cleanly on SIGTERM"
