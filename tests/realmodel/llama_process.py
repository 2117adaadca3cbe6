"""llama-cpp-python's OpenAI-compatible server as a child process, for the
realmodel tests.

The server and its model (SmolLM2-135M-Instruct) are built once per machine by
``scripts/build_llama_server.sh`` (``make llama-server``) into a cache
directory; the tests find it through ``SWARMD_LLAMA_SERVER_DIR`` (set by
``make test``) or, when that is unset, by asking the script with ``--check``.
Nothing built is a test *failure* naming the command to run, never a skip.

:class:`LlamaServer` runs ``python -m llama_cpp.server`` with the
``chatml-function-calling`` chat format on 127.0.0.1, on a free port, waits
until ``GET /v1/models`` answers, and can be killed (SIGKILL, as a crash) and
started again on the same port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build_llama_server.sh"
ENV_VAR = "SWARMD_LLAMA_SERVER_DIR"
#: The model's context here: big enough for a sub-agent's system prompt and tool schemas.
N_CTX = 4096
READY_TIMEOUT_SECS = 120.0


def server_dir() -> Path:
    """The built server's cache directory, or a test failure saying how to build it."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        path = Path(value)
    else:
        probe = subprocess.run(["bash", str(BUILD_SCRIPT), "--check"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.fail(
                f"{ENV_VAR} is not set and {probe.stderr.strip() or 'the llama.cpp server is not built'} "
                "(make test builds it)",
                pytrace=False,
            )
        path = Path(probe.stdout.strip())
    python, model = path / "venv" / "bin" / "python", path / "model.gguf"
    if not python.exists() or not model.exists():
        pytest.fail(f"{ENV_VAR}={path} holds no venv/bin/python and model.gguf; run: make llama-server", pytrace=False)
    return path


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, however it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """One ``llama_cpp.server`` process (see the module docstring)."""

    def __init__(self, directory: Path, log_path: Path) -> None:
        self.directory = directory
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_path(self) -> Path:
        return self.directory / "model.gguf"

    def start(self, port: int = 0) -> None:
        """Start on ``port`` (0: a free one) and wait until it answers."""
        for _attempt in range(3):
            self.port = port or free_port()
            self._spawn()
            if self._wait_ready():
                return
            if port:  # the port was asked for: no other will do
                break
        raise RuntimeError(f"llama_cpp.server did not start on port {self.port}:\n{self.log_tail()}")

    def _spawn(self) -> None:
        command = [
            str(self.directory / "venv" / "bin" / "python"),
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--chat_format",
            "chatml-function-calling",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(N_CTX),
            "--verbose",
            "false",
        ]
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # exited (for instance: the port was taken meanwhile)
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        return False

    def kill(self) -> None:
        """SIGKILL, as a crash would; returns once the process is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def requests_answered(self, status: int | None = None) -> int:
        """``POST /v1/chat/completions`` answers in the server's access log (with ``status``)."""
        wanted = '"POST /v1/chat/completions HTTP/1.1" '
        count = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            if wanted in line:
                code = line.split(wanted, 1)[1].split(" ", 1)[0]
                count += status is None or code == str(status)
        return count

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
