"""The orchestrator's write-ahead journal: append, confirm, reopen, replay, crashes, locking, the cap."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import sys
import textwrap
from asyncio.subprocess import PIPE
from pathlib import Path

import grpc
import pytest

from swarmd.services.errors import Unavailable
from swarmd.services.orchestrator.events import SwarmEventLog
from swarmd.services.orchestrator.journal import Journal, JournalLocked
from swarmd.services.orchestrator.journal_replay import replay_journal
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.services.result_store.testing import serve_result_store
from swarmd.v1 import common_pb2

ROOT = Path(__file__).resolve().parents[2]


def event(swarm_id: str, sequence: int, text: str = "x") -> common_pb2.SwarmEvent:
    ev = common_pb2.SwarmEvent(swarm_id=swarm_id, sequence=sequence)
    ev.time.FromSeconds(1_700_000_000 + sequence)
    ev.warning.CopyFrom(common_pb2.SwarmWarning(code="note", message=text))
    return ev


def swarm(swarm_id: str, state: int = common_pb2.SWARM_STATE_RUNNING, *ids: str) -> common_pb2.Swarm:
    sw = common_pb2.Swarm(id=swarm_id, state=state)
    sw.created_at.FromSeconds(1_700_000_000)
    sw.config.model = "openai/m"
    for sid in ids:
        sw.subtasks.add().subtask.id = sid
    return sw


def subtask_state(sid: str, status: int, result: str = "") -> common_pb2.SubTaskState:
    st = common_pb2.SubTaskState(status=status)
    st.subtask.id = sid
    st.result.result = result
    return st


def rows(path: Path) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    with sqlite3.connect(path) as db:
        events = db.execute("SELECT swarm_id, sequence FROM events ORDER BY 1, 2").fetchall()
        states = db.execute("SELECT swarm_id, subtask_id FROM states ORDER BY version").fetchall()
    return events, states


async def test_appended_entries_survive_a_reopen_until_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path)
    for seq in range(1, 6):
        assert journal.add_event(event("s1", seq))
    v_swarm = journal.save_state("s1", swarm("s1", common_pb2.SWARM_STATE_RUNNING, "a", "b"))
    v_a = journal.save_state("s1", subtask_state("a", common_pb2.SUB_TASK_STATUS_COMPLETED, "done"))
    assert await journal.flush(5)
    assert rows(path) == ([("s1", n) for n in range(1, 6)], [("s1", ""), ("s1", "a")])
    journal.events_stored("s1", 3)
    journal.state_stored("s1", "", v_swarm)
    assert await journal.flush(5)
    assert rows(path) == ([("s1", 4), ("s1", 5)], [("s1", "a")])
    await journal.aclose()

    again = await Journal.open(path)
    try:
        assert [e.sequence for e in again.left_events["s1"]] == [4, 5]
        assert again.left_events["s1"][0] == event("s1", 4)
        [(version, swarm_id, subtask_id, state)] = again.left_states
        assert (version, swarm_id, subtask_id) == (v_a, "s1", "a")
        assert state.result.result == "done"
        # Versions go on after the ones on disk.
        assert again.save_state("s1", subtask_state("b", common_pb2.SUB_TASK_STATUS_RUNNING)) > v_a
    finally:
        await again.aclose()


async def test_what_the_store_confirms_before_the_commit_never_reaches_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path, flush_interval=0.2)
    try:
        for seq in range(1, 4):
            journal.add_event(event("s1", seq))
        version = journal.save_state("s1", swarm("s1"))
        journal.events_stored("s1", 3)
        journal.state_stored("s1", "", version)
        assert journal.empty
        assert await journal.flush(5)
        assert rows(path) == ([], [])
        assert journal.bytes == 0
    finally:
        await journal.aclose()


async def test_state_is_coalesced_and_only_the_newest_save_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path)
    try:
        old = journal.save_state("s1", subtask_state("a", common_pb2.SUB_TASK_STATUS_RUNNING))
        new = journal.save_state("s1", subtask_state("a", common_pb2.SUB_TASK_STATUS_COMPLETED))
        journal.save_state("s1", subtask_state("b", common_pb2.SUB_TASK_STATUS_RUNNING))
        journal.save_state("s2", subtask_state("a", common_pb2.SUB_TASK_STATUS_RUNNING))
        journal.state_stored("s1", "a", old)  # an older save confirmed: the newer one stays
        assert await journal.flush(5)
        assert rows(path)[1] == [("s1", "a"), ("s1", "b"), ("s2", "a")]
        # A whole-swarm save holds every subtask: it replaces the swarm's rows.
        journal.save_state("s1", swarm("s1", common_pb2.SWARM_STATE_SUCCEEDED, "a", "b"))
        journal.state_stored("s1", "a", new)  # replaced already: nothing left to drop
        assert await journal.flush(5)
        assert rows(path)[1] == [("s2", "a"), ("s1", "")]
    finally:
        await journal.aclose()


async def test_a_second_orchestrator_is_refused_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path)
    try:
        with pytest.raises(JournalLocked, match=f"process {os.getpid()}"):
            await Journal.open(path)
        script = textwrap.dedent(
            f"""
            import asyncio
            from pathlib import Path
            from swarmd.services.orchestrator.journal import Journal, JournalLocked
            try:
                asyncio.run(Journal.open(Path({str(path)!r})))
            except JournalLocked as exc:
                print("refused:", exc.message)
            """
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=PIPE, stderr=PIPE, cwd=ROOT
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert b"refused:" in out, err
        assert b"give each orchestrator its own journal_path" in out
    finally:
        await journal.aclose()
    reopened = await Journal.open(path)  # free again once closed
    await reopened.aclose()


async def test_an_embedded_orchestrator_falls_back_to_its_own_journal(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator-journal.db"
    primary = await Journal.open(path)
    try:
        mine = await Journal.open(path, fallback=True)
        assert mine.path == tmp_path / f"orchestrator-journal-{os.getpid()}.db"
        await mine.aclose()
        assert not mine.path.exists()  # left empty: removed

        mine = await Journal.open(path, fallback=True)
        mine.add_event(event("s9", 1))
        mine.save_state("s9", swarm("s9"))
        await mine.aclose()
        assert mine.path.exists()  # holds something unconfirmed: kept
    finally:
        await primary.aclose()
    # The next orchestrator on the primary journal takes in what the stopped one left.
    adopted = await Journal.open(path)
    try:
        assert [e.sequence for e in adopted.left_events["s9"]] == [1]
        assert [(s, k) for _, s, k, _ in adopted.left_states] == [("s9", "")]
        assert not mine.path.exists()
    finally:
        await adopted.aclose()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from swarmd.services.orchestrator.journal import Journal
    from swarmd.v1 import common_pb2

    async def main():
        journal = await Journal.open(Path(sys.argv[1]), flush_interval=0.001)
        seq = 0
        while True:
            for _ in range(50):
                seq += 1
                ev = common_pb2.SwarmEvent(swarm_id="s1", sequence=seq)
                ev.warning.message = "x" * 2000
                journal.add_event(ev)
            await journal.flush()
            if seq == 500:
                print("ready", flush=True)

    asyncio.run(main())
    """
)


async def test_a_crash_mid_write_leaves_a_dense_prefix(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(path), stdout=PIPE, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"ready"
        await asyncio.sleep(0.3)  # mid-stream of commits
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    journal = await Journal.open(path)
    try:
        seqs = [e.sequence for e in journal.left_events["s1"]]
        assert len(seqs) >= 500 and seqs == list(range(1, len(seqs) + 1))
    finally:
        await journal.aclose()


async def test_a_torn_last_record_is_discarded(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path)
    try:
        for batch in range(3):
            for seq in range(batch * 10 + 1, batch * 10 + 11):
                journal.add_event(event("s1", seq, "y" * 500))
            assert await journal.flush(5)
        # A copy of the files as a crash during the last commit leaves them.
        copy = tmp_path / "copy" / "j.db"
        copy.parent.mkdir()
        shutil.copy(path, copy)
        wal = path.with_name("j.db-wal")
        data = wal.read_bytes()
        assert data, "the commits are still in the write-ahead log"
        copy.with_name("j.db-wal").write_bytes(data[:-700])
    finally:
        await journal.aclose()
    torn = await Journal.open(copy)
    try:
        seqs = [e.sequence for e in torn.left_events.get("s1", [])]
        assert seqs == list(range(1, 21))  # the last batch is gone, the others whole
    finally:
        await torn.aclose()


async def test_replay_sends_what_the_store_misses_once(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path)
    final = swarm("s1", common_pb2.SWARM_STATE_SUCCEEDED, "a")
    final.subtasks[0].status = common_pb2.SUB_TASK_STATUS_COMPLETED
    final.last_sequence = 6
    for seq in range(1, 7):
        journal.add_event(event("s1", seq))
    journal.save_state("s1", final)
    journal.save_state("s1", subtask_state("a", common_pb2.SUB_TASK_STATUS_COMPLETED, "merged"))
    journal.save_state("gone", subtask_state("z", common_pb2.SUB_TASK_STATUS_COMPLETED))
    await journal.aclose()
    async with serve_result_store(tmp_path / "store.db") as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            store = StoreClient(channel, 5)
            running = swarm("s1", common_pb2.SWARM_STATE_RUNNING, "a")
            await store.save_swarm(running)
            await store.append_events("s1", [event("s1", 1), event("s1", 2)])  # stored before the crash
            journal = await Journal.open(path)
            try:
                report = await replay_journal(journal, store)
                assert (report.events, report.states, report.dropped) == (4, 2, 1)
                assert journal.empty and rows(path) == ([], [])
                again = await replay_journal(journal, store)
                assert not again.anything
            finally:
                await journal.aclose()
            events, last = await store.read_events("s1", 0)
            assert last == 6 and [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
            stored = await store.load_swarm("s1")
            assert stored.state == common_pb2.SWARM_STATE_SUCCEEDED
            assert stored.subtasks[0].result.result == "merged"


async def test_replay_against_a_store_that_is_down_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await Journal.open(path)
    journal.add_event(event("s1", 1))
    journal.save_state("s1", swarm("s1"))
    await journal.aclose()
    journal = await Journal.open(path)
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
            with pytest.raises(Unavailable):
                await replay_journal(journal, StoreClient(channel, 2))
        assert rows(path) == ([("s1", 1)], [("s1", "")])
    finally:
        await journal.aclose()


async def test_a_full_journal_never_blocks_the_log_and_says_so(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.db", max_bytes=4096, flush_interval=0.001)
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        log = SwarmEventLog("s1", StoreClient(channel, 1), journal=journal)
        try:
            for _ in range(20):
                log.emit("warning", common_pb2.SwarmWarning(code="note", message="z" * 500))
                await journal.flush(5)
            await asyncio.sleep(0.05)
            assert log.last_sequence == 21  # every event numbered, the warning included
            held = [seq for _, seq in rows(tmp_path / "j.db")[0]]
            assert held == list(range(1, len(held) + 1)) and 4 <= len(held) < 20
            warnings = [e for e in await log.read_after(0, 100) if e.warning.code == "journal_full"]
            assert len(warnings) == 1 and f"from {len(held) + 1} on" in warnings[0].warning.message
        finally:
            await log.aclose(0.1)
            await journal.aclose()
