"""Apply Alembic migrations, safely when several replicas start at once.

On PostgreSQL the whole upgrade runs in one transaction that first takes a transaction-scoped advisory
lock, so concurrent starters queue and the later ones find the schema already at head. On SQLite the
upgrade runs in one `BEGIN IMMEDIATE` transaction, which has the same effect across processes.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from switchman.db.engine import create_engine

# Arbitrary constant shared by every switchman process: "switchman" as 8 bytes.
MIGRATION_LOCK_KEY = 0x737769746368_6D61


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "switchman:migrations")
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate(url: URL) -> None:
    """Upgrade the database at `url` to the latest revision.

    A database already at head is left alone without taking any lock: on SQLite the locked upgrade
    holds the write lock while Alembic loads its scripts, which stalled every ingestion on the same file
    for seconds each time a process started (found by `stress.crash`, docs/reliability.md).
    """
    if await current_revision(url) == head_revision():
        return
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            if url.get_backend_name() == "sqlite":
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                if url.get_backend_name() == "postgresql":
                    await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
                await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(sync_conn: Any) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")


async def current_revision(url: URL) -> str | None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()
