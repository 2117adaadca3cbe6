"""Where embedded services keep the orchestrator journal, and two of them side by side."""

from __future__ import annotations

import os
from pathlib import Path

from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.services.config import Settings


def journal_of(embedded: EmbeddedSwarmd) -> Path:
    journal = embedded.services["orchestrator"].ctx.journal
    assert journal is not None
    return Path(journal.path)


async def test_the_journal_sits_beside_the_embedded_database(tmp_path: Path) -> None:
    async with EmbeddedSwarmd(db_path=tmp_path / "state" / "db.sqlite") as first:
        assert journal_of(first) == tmp_path / "state" / "orchestrator-journal.db"
        # A second command on the same repository while the first runs: its own journal.
        async with EmbeddedSwarmd(db_path=tmp_path / "state" / "db.sqlite") as second:
            mine = journal_of(second)
            assert mine == tmp_path / "state" / f"orchestrator-journal-{os.getpid()}.db"
        assert not mine.exists()  # closed empty: removed
    assert (tmp_path / "state" / "orchestrator-journal.db").exists()


async def test_an_in_memory_database_keeps_no_journal(tmp_path: Path) -> None:
    settings = Settings()
    async with EmbeddedSwarmd(settings, db_path=":memory:") as embedded:
        assert embedded.services["orchestrator"].ctx.journal is None
