"""The processes a benchmark run starts, and what they cost.

* :class:`FakeModelProcess` — the fake model server in its own process,
  with a small control client for its ``/bench/*`` endpoints;
* :class:`ServiceProcesses` — the three swarmd services as separate
  ``swarmd serve`` processes (result store, executor, orchestrator), the
  deployment the README describes, so each one's memory and CPU can be
  measured apart;
* :class:`ResourceSampler` — a thread polling each process's RSS and CPU
  with psutil (peak RSS, CPU seconds) while a scenario runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.fake_model_behaviour import ServerConfig

__all__ = ["FakeModelProcess", "ResourceSampler", "ServiceProcesses", "repo_root"]

STARTUP_TIMEOUT_SECS = 60.0


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    root = str(repo_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("SWARMD_DISABLE_PLUGIN_AUTOLOAD", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _swarmd_command() -> list[str]:
    """The ``swarmd`` CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("swarmd")
    if script.exists():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from swarmd.clients.cli import main; sys.exit(main())",
    ]


def _read_banner(proc: subprocess.Popen[str], marker: str, what: str) -> str:
    """The first stdout line containing ``marker`` (the process's listening banner)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited before it listened (exit code {proc.wait()})")
        if marker in line:
            return line.strip()
    raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT_SECS:g}s")


def _stop(proc: subprocess.Popen[str] | None, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class FakeModelProcess:
    """``python -m benchmarks.fake_model_server`` in a child process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> FakeModelProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fake_model_server", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
            env=_python_env(),
            cwd=repo_root(),
        )
        banner = _read_banner(self.proc, "listening on", "the fake model server")
        self.url = banner.rsplit(" ", 1)[-1]
        return self

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="GET" if body is None else "POST"
        )
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def configure(self, config: ServerConfig) -> None:
        self._call("/bench/config", config.to_json())

    def reset(self) -> None:
        self._call("/bench/reset", {})

    def stats(self) -> dict[str, Any]:
        return self._call("/bench/stats")

    def log(self) -> list[tuple[float, float, str, int, int]]:
        return [tuple(row) for row in self._call("/bench/log")]  # type: ignore[misc]

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


@dataclass
class ServiceProcesses:
    """The three swarmd services as separate processes on loopback."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    def _spawn(self, kind: str, *args: str) -> subprocess.Popen[str]:
        log = open(self.workdir / f"{kind}.log", "w")
        proc = subprocess.Popen(
            [*_swarmd_command(), "serve", kind, "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_python_env(self.env),
            cwd=self.workdir,
        )
        log.close()
        self.procs[kind] = proc
        return proc

    def start(self) -> ServiceProcesses:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            store = self._spawn("result-store", "--db", str(self.workdir / "swarmd.db"))
            executor = self._spawn("executor")
            for kind, proc in (("result-store", store), ("executor", executor)):
                self.addresses[kind] = _read_banner(proc, "listening on", f"swarmd {kind}").rsplit(
                    " ", 1
                )[-1]
            orch = self._spawn(
                "orchestrator",
                "--result-store",
                self.addresses["result-store"],
                "--executor",
                self.addresses["executor"],
            )
            self.addresses["orchestrator"] = _read_banner(
                orch, "listening on", "swarmd orchestrator"
            ).rsplit(" ", 1)[-1]
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {kind: proc.pid for kind, proc in self.procs.items()}

    def stop(self) -> None:
        for kind in ("orchestrator", "executor", "result-store"):
            _stop(self.procs.get(kind))
        self.procs.clear()


@dataclass
class Usage:
    peak_rss_bytes: int = 0
    cpu_seconds: float = 0.0


class ResourceSampler:
    """Peak RSS and CPU seconds of some processes, sampled every ``interval`` s.

    Used as ``with ResourceSampler({"executor": pid, ...}) as sampler:``;
    afterwards ``sampler.usage[name]`` holds the figures for that window.
    """

    def __init__(self, pids: Mapping[str, int], interval: float = 0.05) -> None:
        self.interval = interval
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._cpu0: dict[str, float] = {}
        self.usage: dict[str, Usage] = {name: Usage() for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)

    def _sample(self) -> None:
        for name, proc in self._procs.items():
            with contextlib.suppress(psutil.Error):
                rss = proc.memory_info().rss
                usage = self.usage[name]
                usage.peak_rss_bytes = max(usage.peak_rss_bytes, rss)

    def _cpu(self, name: str) -> float:
        with contextlib.suppress(psutil.Error):
            times = self._procs[name].cpu_times()
            return times.user + times.system
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        self._cpu0 = {name: self._cpu(name) for name in self._procs}
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        for name in self._procs:
            self.usage[name].cpu_seconds = max(0.0, self._cpu(name) - self._cpu0[name])


async def run_python_module(
    module: str, payload: Any, env: Mapping[str, str] | None = None
) -> tuple[Any, Usage]:
    """Run ``python -m module`` with ``payload`` as JSON on stdin; its JSON reply and its usage."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_python_env(env),
        cwd=repo_root(),
    )
    with ResourceSampler({"child": proc.pid}) as sampler:
        out, err = await proc.communicate(json.dumps(payload).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"python -m {module} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out), sampler.usage["child"]
