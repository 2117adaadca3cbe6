"""The journal across an orchestrator's life: the store down, the orchestrator stopped, then both back."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import grpc
from fakes.swarm_services import fast_config, plan, serve_swarm_services, subtask, wait_terminal

from swarmd.services._host import ServiceHost
from swarmd.services.config import ResultStoreSettings, TelemetrySettings
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.peers import StoreClient
from swarmd.services.result_store import build_result_store
from swarmd.services.result_store.testing import serve_result_store
from swarmd.v1 import common_pb2


def journal_rows(path: Path) -> tuple[int, int]:
    """(events, states) the journal file holds."""
    with sqlite3.connect(path) as db:
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        states = db.execute("SELECT COUNT(*) FROM states").fetchone()[0]
    return events, states


async def stored_events(address: str, swarm_id: str) -> list[common_pb2.SwarmEvent]:
    async with grpc.aio.insecure_channel(address) as channel:
        store = StoreClient(channel, 5)
        events: list[common_pb2.SwarmEvent] = []
        while True:
            page, _ = await store.read_events(swarm_id, events[-1].sequence if events else 0)
            if not page:
                return events
            events.extend(page)


async def stored_swarm(address: str, swarm_id: str) -> common_pb2.Swarm:
    async with grpc.aio.insecure_channel(address) as channel:
        return await StoreClient(channel, 5).load_swarm(swarm_id)


async def test_what_the_store_missed_is_replayed_by_the_next_orchestrator(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    journal = tmp_path / "orchestrator-journal.db"
    store_cm = serve_result_store(db)
    store = await store_cm.__aenter__()
    store_up = True
    try:
        async with serve_swarm_services(tmp_path, store_address=store.address) as first:
            first.orchestrator.ctx.flush_timeout_secs = 0.2
            reply = await first.submit(
                plan=plan(
                    subtask("a", duration_ms=300),
                    subtask("b", "a", tool_calls=3),
                    subtask("c", "b"),
                ),
                config=fast_config(),
            )
            swarm_id = reply.swarm.id
            await store_cm.__aexit__(None, None, None)
            store_up = False
            swarm = await wait_terminal(first, swarm_id)
            assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
            seen = swarm.last_sequence
        # The orchestrator stopped without the store: the journal holds the rest.
        events_left, states_left = journal_rows(journal)
        assert events_left > 0 and states_left > 0
        store_cm = serve_result_store(db)
        store = await store_cm.__aenter__()
        store_up = True
        before = await stored_swarm(store.address, swarm_id)
        assert before.state == common_pb2.SWARM_STATE_RUNNING
        async with serve_swarm_services(tmp_path, store_address=store.address) as second:
            for _ in range(500):
                stored = await stored_swarm(store.address, swarm_id)
                if stored.state == common_pb2.SWARM_STATE_SUCCEEDED:
                    break
                await asyncio.sleep(0.02)
            assert stored.state == common_pb2.SWARM_STATE_SUCCEEDED
            assert [s.status for s in stored.subtasks] == [common_pb2.SUB_TASK_STATUS_COMPLETED] * 3
            events = await stored_events(store.address, swarm_id)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            assert len(events) == seen  # every event, each once, as the orchestrator numbered it
            assert events[-1].HasField("complete") and events[-1].complete.success
            assert stored.last_sequence == events[-1].sequence
            # Nothing was resumed: the swarm had finished.
            assert second.orchestrator.live(swarm_id) is None
        assert journal_rows(journal) == (0, 0)
    finally:
        if store_up:
            await store_cm.__aexit__(None, None, None)


async def test_a_clean_shutdown_with_the_store_up_leaves_the_journal_empty(tmp_path: Path) -> None:
    async with serve_swarm_services(tmp_path) as services:
        reply = await services.submit(
            plan=plan(subtask("a", tool_calls=5), subtask("b", "a")), config=fast_config()
        )
        await wait_terminal(services, reply.swarm.id)
        other = await services.submit(plan=plan(subtask("x", hang_attempts=1)), config=fast_config())
        await asyncio.sleep(0.2)
        assert other.swarm.id
    assert journal_rows(tmp_path / "orchestrator-journal.db") == (0, 0)


async def test_an_orchestrator_started_without_its_store_replays_once_the_store_is_back(
    tmp_path: Path,
) -> None:
    journal = await Journal.open(tmp_path / "orchestrator-journal.db")
    final = common_pb2.Swarm(id="left", state=common_pb2.SWARM_STATE_SUCCEEDED, last_sequence=3)
    final.created_at.FromSeconds(1_700_000_000)
    final.config.model = "scripted/planner"
    for seq in (1, 2, 3):
        event = common_pb2.SwarmEvent(swarm_id="left", sequence=seq)
        event.time.FromSeconds(1_700_000_000 + seq)
        event.warning.code = f"note{seq}"
        journal.add_event(event)
    journal.save_state("left", final)
    await journal.aclose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    async with serve_swarm_services(tmp_path, store_address=address):
        await asyncio.sleep(0.5)  # the replay meets no store, and waits
        assert journal_rows(tmp_path / "orchestrator-journal.db") == (3, 1)
        config = ResultStoreSettings(db_path=tmp_path / "late.db", listen=address, grace_period_secs=0)
        host = ServiceHost("result-store", config, telemetry_settings=TelemetrySettings(enabled=False))
        await build_result_store(host, config)
        await host.start()
        try:
            for _ in range(500):
                if journal_rows(tmp_path / "orchestrator-journal.db") == (0, 0):
                    break
                await asyncio.sleep(0.02)
            stored = await stored_swarm(address, "left")
            assert stored.state == common_pb2.SWARM_STATE_SUCCEEDED
            events = await stored_events(address, "left")
            assert [e.warning.code for e in events] == ["note1", "note2", "note3"]
        finally:
            await host.stop(0)
