"""Retention: only processed signals past the cut-off go, in bounded batches, never the newest id."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from switchman.db.engine import Database
from switchman.signal_endpoints.retention import prune_signals, run_retention
from switchman.timeutil import utcnow
from tests.signal_endpoints.helpers import app_client, insert_signal, signal_rows


async def test_prune_deletes_only_old_processed_signals(db: Database) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=40), now - timedelta(days=5)
    cutoff = now - timedelta(days=30)
    doomed = [await insert_signal(db, source_id=1, created_at=old, processed_at=old) for _ in range(5)]
    pending_old = await insert_signal(db, source_id=1, created_at=old)
    recent_done = await insert_signal(db, source_id=1, created_at=recent, processed_at=recent)
    newest = await insert_signal(db, source_id=1, created_at=now, processed_at=now)
    assert await prune_signals(db, older_than=cutoff, batch_size=2) == len(doomed)
    assert [row.id for row in await signal_rows(db)] == [pending_old, recent_done, newest]
    assert await prune_signals(db, older_than=cutoff, batch_size=2) == 0


async def test_pruning_every_signal_never_lets_an_id_be_handed_out_again(db: Database) -> None:
    old = utcnow() - timedelta(days=40)
    ids = [await insert_signal(db, source_id=1, created_at=old, processed_at=old) for _ in range(3)]
    assert await prune_signals(db, older_than=utcnow(), batch_size=1000) == 3
    assert await signal_rows(db) == []
    # the next signal still gets a higher id, on SQLite too (AUTOINCREMENT, migration 0002)
    assert await insert_signal(db, source_id=1) > ids[-1]


async def test_the_background_pass_prunes(db: Database) -> None:
    old = utcnow() - timedelta(days=40)
    await insert_signal(db, source_id=1, created_at=old, processed_at=old)
    keep = await insert_signal(db, source_id=1)
    task = asyncio.create_task(run_retention(db, retention_days=30, first_delay=0, interval=3600))
    try:
        for _ in range(200):  # bounded wait for the first pass; no timing is asserted
            if [row.id for row in await signal_rows(db)] == [keep]:
                break
            await asyncio.sleep(0.05)
        assert [row.id for row in await signal_rows(db)] == [keep]
        assert not task.done()
    finally:
        task.cancel()


async def test_the_app_runs_retention_only_when_configured(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_retention_days=7) as (app, _client):
        task = app.state.runtime.retention
        assert isinstance(task, asyncio.Task) and not task.done()
    assert task.cancelled()
    async with app_client(db_url, signal_retention_days=0) as (app, _client):
        assert app.state.runtime.retention is None
