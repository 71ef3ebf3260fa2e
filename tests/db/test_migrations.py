"""Migrations: build the whole schema from empty on both databases, and match tables.py exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from switchman.config import to_async_url
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.db.migrate import current_revision, head_revision, migrate


async def test_migrated_schema_equals_table_metadata(db: Database) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(sync_conn), t.metadata))

    async with db.read() as conn:
        differences = await conn.run_sync(diff)
    # Server-side default rendering differs by dialect and is not a schema difference.
    assert [d for d in differences if not (isinstance(d, list) and d and d[0][0] == "modify_default")] == []


async def test_database_is_at_head_and_migrate_is_idempotent(db_url: str) -> None:
    url = to_async_url(db_url)
    assert await current_revision(url) == head_revision()
    await migrate(url)  # a second run finds nothing to do
    assert await current_revision(url) == head_revision()


async def test_seed_rows_exist(db: Database) -> None:
    async with db.read() as conn:
        projects = (await conn.execute(sa.select(t.project.c.id))).scalars().all()
        environments = (await conn.execute(sa.select(t.environment.c.name))).scalars().all()
        enabled_in_default = (
            (
                await conn.execute(
                    sa.select(t.project_environment.c.environment_name).where(
                        t.project_environment.c.project_id == "default"
                    )
                )
            )
            .scalars()
            .all()
        )
        tag_types = (await conn.execute(sa.select(t.tag_type.c.name))).scalars().all()
    assert projects == ["default"]
    assert sorted(environments) == ["development", "production"]
    assert sorted(enabled_in_default) == ["development", "production"]
    assert tag_types == ["simple"]


async def test_foreign_keys_are_enforced(db: Database) -> None:
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    try:
        async with db.transaction() as conn:
            await conn.execute(
                t.feature.insert().values(
                    name="orphan", project_id="no-such-project", created_at=datetime.now(UTC)
                )
            )
    except IntegrityError:
        return
    raise AssertionError("a feature in a missing project was accepted")


async def test_migrate_at_head_takes_no_write_lock(tmp_path: Path) -> None:
    """Starting a process on an up-to-date SQLite file must not wait for (or hold) the write lock.

    Before, every start ran the upgrade inside `BEGIN IMMEDIATE`: while another process wrote, the
    start waited; while the start loaded Alembic's scripts, ingestion waited (stress.crash saw 10 s
    stalls when a worker restarted). Here another connection holds the write lock throughout; the
    old code failed with "database is locked" after the busy timeout.
    """
    path = tmp_path / "switchman.db"
    url = to_async_url(f"sqlite:///{path}")
    await migrate(url)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        await migrate(url)
        assert await current_revision(url) == head_revision()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
