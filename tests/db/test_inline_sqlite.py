"""SQLite connections run their statements in the event loop's thread, and a writer waiting for another
process's write lock does not block the event loop (switchman.db.engine, ADR 0017)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchman.config import to_async_url
from switchman.db.engine import Database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> Database:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'inline.db'}"))
    async with db.transaction() as conn:
        await conn.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
    yield db  # type: ignore[misc]
    await db.dispose()


async def test_statements_run_in_the_event_loop_thread(sqlite_db: Database) -> None:
    seen: list[int] = []
    async with sqlite_db.read() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        raw._conn.create_function("thread_id", 0, lambda: seen.append(threading.get_ident()) or 1)
        assert (await conn.execute(sa.text("SELECT thread_id()"))).scalar() == 1
    assert seen == [threading.get_ident()]


async def test_a_writer_waits_for_another_process_lock_without_blocking_the_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # Another process's writer, as SQLite sees it: a second connection holding the write lock.
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO counter VALUES (1)")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def write() -> None:
        async with sqlite_db.transaction() as conn:
            await conn.exec_driver_sql("INSERT INTO counter VALUES (2)")

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    assert not writer.done()  # still waiting for the lock …
    ticks_while_waiting = ticks
    other.execute("COMMIT")
    await asyncio.wait_for(writer, timeout=5)
    ticker.cancel()
    other.close()
    # … while the loop kept running (a blocked loop would not have ticked at all).
    assert ticks_while_waiting >= 20
    async with sqlite_db.read() as conn:
        rows = (await conn.exec_driver_sql("SELECT n FROM counter ORDER BY n")).scalars().all()
    assert rows == [1, 2]


async def test_a_failing_statement_leaves_the_connection_usable(sqlite_db: Database) -> None:
    with pytest.raises(sa.exc.OperationalError):
        async with sqlite_db.transaction() as conn:
            await conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
    async with sqlite_db.transaction() as conn:
        await conn.exec_driver_sql("INSERT INTO counter VALUES (3)")
    async with sqlite_db.read() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM counter")).scalar() == 1
