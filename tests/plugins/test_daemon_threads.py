"""The reused daemon workers behind run_blocking: reuse, no cap, idle exit."""

from __future__ import annotations

import threading
import time

import pytest

from swarmd.plugins import daemon_threads

pytestmark = pytest.mark.timeout(30)


def _wait(check, within: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_an_idle_worker_takes_the_next_job_and_is_named_after_it() -> None:
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def job() -> None:
        me = threading.current_thread()
        seen.append((me.ident or 0, me.name))
        done.set()

    daemon_threads.submit(job, "swarmd-tool-first")
    assert done.wait(5)
    assert _wait(lambda: any(t.name.startswith("swarmd-idle-") for t in threading.enumerate()))
    done.clear()
    daemon_threads.submit(job, "swarmd-tool-second")
    assert done.wait(5)
    assert seen[0][0] == seen[1][0]  # the same thread, reused
    assert [name for _, name in seen] == ["swarmd-tool-first", "swarmd-tool-second"]
    assert threading.current_thread().daemon is False  # the test's own thread
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith(("swarmd-idle-", "swarmd-tool-")))


def test_jobs_that_block_each_get_a_thread() -> None:
    release = threading.Event()
    running = threading.Semaphore(0)

    def job() -> None:
        running.release()
        release.wait(10)

    for _ in range(12):
        daemon_threads.submit(job, "swarmd-tool-blocked")
    try:
        for _ in range(12):  # all twelve run at once: none waits for another to finish
            assert running.acquire(timeout=5)
    finally:
        release.set()


def test_idle_workers_exit_after_the_idle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_threads, "IDLE_SECONDS", 0.05)
    done = threading.Event()
    ran_on: list[threading.Thread] = []

    def job() -> None:
        ran_on.append(threading.current_thread())
        done.set()

    daemon_threads.submit(job, "swarmd-tool-short")
    assert done.wait(5)
    assert _wait(lambda: not ran_on[0].is_alive())  # it waited 0.05 s for more work, then ended
    # Still works after every worker left.
    again = threading.Event()
    daemon_threads.submit(again.set, "swarmd-tool-again")
    assert again.wait(5)
