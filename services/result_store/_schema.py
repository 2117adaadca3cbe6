"""The database schema, as an ordered list of migrations.

``PRAGMA user_version`` holds the number of migrations applied. Opening a
database applies the missing ones in order, each in its own ``BEGIN
IMMEDIATE`` transaction that also bumps ``user_version`` — so a crash leaves
the database at a whole version, and two processes opening the same file
at once do not apply a step twice (the version is re-read under the write
lock). A database whose version is newer than the code knows is refused
rather than half-understood.

Rules for adding a migration: append, never edit a released step; keep each
step's statements self-contained; move data in the same step that changes
its shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from swarmd.services.errors import FailedPrecondition

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SchemaTooNewError",
    "migrate",
    "schema_version",
]


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it produces and the statements to get there."""

    version: int
    description: str
    statements: tuple[str, ...]


class SchemaTooNewError(FailedPrecondition):
    """The database was written by a newer swarmd than this one."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "shared results, result cache, swarm state and event log",
        (
            """
            CREATE TABLE shared_results (
                scope           TEXT    NOT NULL,
                key             TEXT    NOT NULL,
                producer_id     TEXT    NOT NULL,
                value_json      TEXT    NOT NULL,
                type_name       TEXT    NOT NULL,
                tags_json       TEXT    NOT NULL DEFAULT '[]',
                published_at_us INTEGER NOT NULL,
                expires_at_us   INTEGER,  -- NULL: never expires
                PRIMARY KEY (scope, key)
            )
            """,
            "CREATE INDEX shared_results_by_producer ON shared_results (scope, producer_id)",
            "CREATE INDEX shared_results_by_time ON shared_results (scope, published_at_us)",
            """
            CREATE INDEX shared_results_by_expiry ON shared_results (expires_at_us)
            WHERE expires_at_us IS NOT NULL
            """,
            """
            CREATE TABLE cache_entries (
                key               TEXT    PRIMARY KEY,
                result            BLOB    NOT NULL,  -- serialized SubTaskResult
                patch             BLOB    NOT NULL,
                base_tree         TEXT    NOT NULL,
                task_name         TEXT    NOT NULL,
                created_at_us     INTEGER NOT NULL,
                last_access_at_us INTEGER NOT NULL,
                lru_tick          INTEGER NOT NULL,  -- larger = used more recently
                expires_at_us     INTEGER NOT NULL,
                size_bytes        INTEGER NOT NULL
            )
            """,
            "CREATE INDEX cache_entries_by_lru ON cache_entries (lru_tick)",
            "CREATE INDEX cache_entries_by_expiry ON cache_entries (expires_at_us)",
            """
            CREATE TABLE swarms (
                id            TEXT    PRIMARY KEY,
                state         INTEGER NOT NULL,
                created_at_us INTEGER NOT NULL,
                updated_at_us INTEGER NOT NULL,
                swarm         BLOB    NOT NULL  -- serialized Swarm
            )
            """,
            "CREATE INDEX swarms_by_created ON swarms (created_at_us)",
            "CREATE INDEX swarms_by_state ON swarms (state, created_at_us)",
            """
            CREATE TABLE subtask_states (
                swarm_id      TEXT    NOT NULL REFERENCES swarms (id) ON DELETE CASCADE,
                subtask_id    TEXT    NOT NULL,
                state         BLOB    NOT NULL,  -- serialized SubTaskState
                updated_at_us INTEGER NOT NULL,
                PRIMARY KEY (swarm_id, subtask_id)
            )
            """,
            """
            CREATE TABLE swarm_events (
                swarm_id TEXT    NOT NULL,
                sequence INTEGER NOT NULL,
                time_us  INTEGER NOT NULL,
                kind     TEXT    NOT NULL,
                event    BLOB    NOT NULL,  -- serialized SwarmEvent
                PRIMARY KEY (swarm_id, sequence)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        2,
        "index shared-result tags in their own table (tag queries used to scan tags_json)",
        (
            """
            CREATE TABLE shared_result_tags (
                scope TEXT NOT NULL,
                key   TEXT NOT NULL,
                tag   TEXT NOT NULL,
                PRIMARY KEY (scope, tag, key),
                FOREIGN KEY (scope, key) REFERENCES shared_results (scope, key) ON DELETE CASCADE
            ) WITHOUT ROWID
            """,
            "CREATE INDEX shared_result_tags_by_result ON shared_result_tags (scope, key)",
            """
            INSERT OR IGNORE INTO shared_result_tags (scope, key, tag)
            SELECT r.scope, r.key, t.value
            FROM shared_results AS r, json_each(r.tags_json) AS t
            WHERE t.type = 'text'
            """,
        ),
    ),
    Migration(
        3,
        "persist the cache's hit, miss, eviction and expiry counters (they lived in memory and "
        "were lost with each store process, so an embedded `swarmd cache stats` always saw 0)",
        (
            """
            CREATE TABLE cache_counters (
                id              INTEGER PRIMARY KEY CHECK (id = 1),  -- exactly one row
                hits            INTEGER NOT NULL DEFAULT 0,
                misses          INTEGER NOT NULL DEFAULT 0,
                evictions       INTEGER NOT NULL DEFAULT 0,
                expired_removed INTEGER NOT NULL DEFAULT 0
            )
            """,
            "INSERT INTO cache_counters (id) VALUES (1)",
        ),
    ),
    Migration(
        4,
        "audit records: decisions taken about a swarm (collapse kills and promotions) with the "
        "observations behind them, read back by swarm",
        (
            """
            CREATE TABLE audit_records (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                swarm_id      TEXT NOT NULL,
                kind          TEXT NOT NULL,
                subtask_id    TEXT NOT NULL DEFAULT '',
                detail        TEXT NOT NULL,  -- JSON object
                created_at_us INTEGER NOT NULL
            )
            """,
            "CREATE INDEX audit_records_by_swarm ON audit_records (swarm_id, id)",
        ),
    ),
    Migration(
        5,
        "the tenant that submitted each swarm, so listings of one tenant are one indexed query "
        "(swarms stored before have none: they belong to no tenant, only admins see them)",
        (
            "ALTER TABLE swarms ADD COLUMN tenant TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX swarms_by_tenant ON swarms (tenant, created_at_us, id)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


async def schema_version(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def migrate(
    conn: aiosqlite.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    target: int | None = None,
    where: str = "database",
) -> int:
    """Bring ``conn``'s database up to ``target`` (default: the newest) and return its version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the
    explicit transactions here are the only ones. ``where`` names the
    database in error messages.
    """
    for expected, step in enumerate(migrations, start=1):
        if step.version != expected:
            raise ValueError(
                f"migration versions must be 1, 2, 3...; found {step.version} at {expected}"
            )
    known = len(migrations)
    target = known if target is None else target
    current = await schema_version(conn)
    if current > known:
        raise SchemaTooNewError(
            f"{where} has schema version {current}, but this swarmd only knows versions up to "
            f"{known}; upgrade swarmd or point db_path at another file"
        )
    for step in migrations[current:target]:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if await schema_version(conn) >= step.version:
                await conn.execute("ROLLBACK")
                continue
            for statement in step.statements:
                await conn.execute(statement)
            # PRAGMA arguments cannot be bound; the version is our own integer.
            await conn.execute(f"PRAGMA user_version = {int(step.version)}")
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
    return await schema_version(conn)
