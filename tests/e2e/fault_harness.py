"""The fault-injection harness: the three services as separate processes, a swarm on them.

A swarm of subtasks in three layers (``LAYERS``), each writing its own files
through the fake model server, runs against ``swarmd serve`` processes on
fixed ports, so a killed service restarts at the same address. The fault
tests (``test_fault_recovery.py`` and its neighbours) kill a service at a
seeded random moment (``SWARMD_FAULT_SEED``, default 1; ``SWARMD_FAULT_TRIALS``
trials per fault, default 1) and call :func:`check`, which asserts that every
subtask completed, every file is on the branch, no subtask was merged twice,
no subtask finished before the fault ran again, and the user's uncommitted
work is untouched.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
from helpers import git

from benchmarks.fake_model_behaviour import directive
from benchmarks.processes import FakeModelProcess
from swarmd.v1 import (
    common_pb2,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    result_store_pb2,
    result_store_pb2_grpc,
)

SWARMD = str(Path(sys.executable).with_name("swarmd"))
SEED = int(os.environ.get("SWARMD_FAULT_SEED", "1"))
TRIALS = int(os.environ.get("SWARMD_FAULT_TRIALS", "1"))
LAYERS = (10, 10, 10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One ``swarmd serve`` process on a fixed port (so a restart keeps its address)."""

    def __init__(self, kind: str, workdir: Path, env: dict[str, str], *args: str) -> None:
        self.kind, self.workdir, self.env, self.args = kind, workdir, env, args
        self.address = f"127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[str] | None = None
        self.log = workdir / f"{kind}.log"

    def start(self) -> Service:
        out = self.log.open("a")
        self.proc = subprocess.Popen(
            [SWARMD, "serve", self.kind, "--listen", self.address, *self.args],
            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        out.close()
        deadline = time.monotonic() + 60
        while "listening on" not in self.log.read_text():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"{self.kind} did not start"
            time.sleep(0.05)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """End the process with ``sig`` (SIGTERM: a graceful stop) and wait for it."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)
        # A restart appends to the log: forget the old banner.
        self.log.write_text(self.log.read_text().replace("listening on", "was listening on"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_plan() -> common_pb2.Plan:
    plan = common_pb2.Plan()
    previous: list[str] = []
    for layer, width in enumerate(LAYERS):
        ids = [f"l{layer}s{i}" for i in range(width)]
        for i, sid in enumerate(ids):
            plan.subtasks.add(
                id=sid,
                instruction=f"Write the files of {sid}. " + directive(id=sid, steps=3, latency=0.4, tool="write"),
                dependencies=[previous[i % len(previous)]] if previous else [],
            )
        previous = ids
    return plan


class Swarm:
    """The services, the repository and one swarm on them."""

    def __init__(self, workdir: Path, repo: Path, fake: FakeModelProcess) -> None:
        env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-fake",
               "SWARMD_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}
        self.repo = repo
        self.fake = fake
        self.store = Service("result-store", workdir, env, "--db", str(workdir / "store.db")).start()
        self.executor = Service("executor", workdir, env).start()
        self.orchestrator = Service(
            "orchestrator", workdir, env,
            "--result-store", self.store.address, "--executor", self.executor.address,
        ).start()
        self.channel = grpc.insecure_channel(self.orchestrator.address)
        self.stub = orchestrator_pb2_grpc.OrchestratorServiceStub(self.channel)
        self.id = ""

    def submit(self) -> None:
        config = common_pb2.SwarmConfig(
            model="openai/fake-model", repo_path=str(self.repo), request_delay_ms=0,
            cache_enabled=False, max_concurrent=8,
        )
        reply = self.stub.SubmitSwarm(
            orchestrator_pb2.SubmitSwarmRequest(plan=make_plan(), config=config), timeout=60
        )
        self.id = reply.swarm.id

    def stored(self) -> common_pb2.Swarm:
        with grpc.insecure_channel(self.store.address) as channel:
            stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
            request = result_store_pb2.LoadSwarmStateRequest(swarm_id=self.id)
            return stub.LoadSwarmState(request, timeout=30).swarm

    def wait_terminal(self, timeout: float = 150) -> common_pb2.Swarm:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                swarm = self.stub.GetSwarm(orchestrator_pb2.GetSwarmRequest(swarm_id=self.id), timeout=10).swarm
            except grpc.RpcError:
                time.sleep(0.2)
                continue
            if swarm.state in (common_pb2.SWARM_STATE_SUCCEEDED, common_pb2.SWARM_STATE_FAILED,
                               common_pb2.SWARM_STATE_CANCELLED):
                return swarm
            time.sleep(0.2)
        raise AssertionError(f"swarm {self.id} did not finish; see the service logs")

    def merges(self) -> Counter[str]:
        """Merge commits on the branch per subtask of this swarm."""
        log = git(self.repo, "log", "--merges", "--format=%B%x1e", "HEAD")
        found: Counter[str] = Counter()
        for body in log.split("\x1e"):
            if f"Swarmd-Swarm: {self.id}" in body:
                match = re.search(r"^Swarmd-Subtask: (\S+)$", body, re.M)
                if match:
                    found[match.group(1)] += 1
        return found

    def close(self) -> None:
        self.channel.close()
        for service in (self.orchestrator, self.executor, self.store):
            service.stop()


def user_work(repo: Path) -> dict[str, str]:
    (repo / "notes.txt").write_text("my uncommitted notes\n")
    (repo / "README.md").write_text("# demo\n\nmy uncommitted edit\n")
    return {"notes.txt": "my uncommitted notes\n", "README.md": "# demo\n\nmy uncommitted edit\n"}


def check(swarm: Swarm, final: common_pb2.Swarm, finished_before: set[str], fault_at: float,
          mine: dict[str, str]) -> None:
    assert final.state == common_pb2.SWARM_STATE_SUCCEEDED, [
        (s.subtask.id, s.status_reason) for s in final.subtasks if s.status != common_pb2.SUB_TASK_STATUS_COMPLETED
    ]
    ids = [s.subtask.id for s in final.subtasks]
    assert len(ids) == sum(LAYERS)
    tree = set(git(swarm.repo, "ls-tree", "-r", "--name-only", "HEAD").split())
    assert {f"bench/{sid}/step{k}-0.txt" for sid in ids for k in (1, 2)} <= tree
    merges = swarm.merges()
    assert set(merges) == set(ids) and max(merges.values()) == 1, f"merged twice: {merges}"
    # No subtask that had finished before the fault called the model again.
    rerun = {row[2] for row in swarm.fake.log() if row[0] > fault_at + 0.5 and row[2] in finished_before}
    assert not rerun, f"finished subtasks ran again: {rerun}"
    for name, text in mine.items():
        assert (swarm.repo / name).read_text() == text


def finished(swarm: common_pb2.Swarm) -> set[str]:
    return {s.subtask.id for s in swarm.subtasks if s.status == common_pb2.SUB_TASK_STATUS_COMPLETED}
