"""Retention: prune signals older than `SWITCHMAN_SIGNAL_RETENTION_DAYS` in the background — and their
decision trace with them (ADR 0022) — and the delivery-id claims older than `SWITCHMAN_SIGNAL_DELIVERY_WINDOW_SECONDS` (a claim past its window no longer
stops a repeat, ADR 0019); and action set events older than `SWITCHMAN_ACTION_SET_EVENT_RETENTION_DAYS`
(ADR 0032; 0 keeps them all), deleted by their owner, `action_sets.event_store.delete_events`.

Only processed signals are pruned: a pending signal is work the worker has not done yet. Action set
events keep their own snapshot of the signal, so pruning loses nothing they show. Deletion runs in
bounded batches, each its own short transaction, so ingestion (SQLite's single writer in particular)
is never blocked for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.decision_store import delete_decisions
from switchman.action_sets.event_store import delete_events
from switchman.db.engine import Database
from switchman.signal_endpoints import repository
from switchman.timeutil import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 1_000
# First pass a while after start-up (not while a fleet of replicas is starting), then hourly.
FIRST_DELAY_SECONDS = 60.0
INTERVAL_SECONDS = 3_600.0


async def _in_batches(
    db: Database, delete: Callable[[AsyncConnection], Awaitable[int]], batch_size: int
) -> int:
    """Call `delete` (which deletes at most `batch_size` rows) in its own transaction until it deletes
    fewer; the total. Writers waiting for the database get in between batches."""
    total = 0
    while True:
        async with db.transaction() as conn:
            deleted = await delete(conn)
        total += deleted
        if deleted < batch_size:
            return total
        await asyncio.sleep(0)


async def prune_signals(db: Database, *, older_than: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete processed signals created before `older_than`, `batch_size` per transaction; returns the count."""
    return await _in_batches(
        db,
        lambda conn: repository.delete_processed_signals(conn, older_than=older_than, limit=batch_size),
        batch_size,
    )


async def prune_decisions(db: Database, *, older_than: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete trace decisions recorded before `older_than`, `batch_size` per transaction; the count."""
    return await _in_batches(
        db, lambda conn: delete_decisions(conn, older_than=older_than, limit=batch_size), batch_size
    )


async def prune_deliveries(db: Database, *, claimed_before: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete delivery-id claims made before `claimed_before`, `batch_size` per transaction; the count."""
    return await _in_batches(
        db,
        lambda conn: repository.delete_expired_deliveries(
            conn, claimed_before=claimed_before, limit=batch_size
        ),
        batch_size,
    )


async def prune_events(db: Database, *, older_than: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete action set events created before `older_than` (with their flag changes and undo; runs in
    progress and policies' open runs stay), `batch_size` per transaction; the count."""
    return await _in_batches(
        db, lambda conn: delete_events(conn, older_than=older_than, limit=batch_size), batch_size
    )


async def retention_pass(
    db: Database,
    *,
    retention_days: int,
    delivery_window: timedelta = timedelta(hours=24),
    event_retention_days: int = 0,
) -> None:
    """One pass. A retention of 0 days keeps that kind of row: signals (with their trace and delivery
    claims), or action set events."""
    if retention_days > 0:
        cutoff = utcnow() - timedelta(days=retention_days)
        deleted = await prune_signals(db, older_than=cutoff)
        if deleted:
            log.info("pruned %d signals older than %d days", deleted, retention_days)
        await prune_decisions(db, older_than=cutoff)
        await prune_deliveries(db, claimed_before=utcnow() - delivery_window)
    if event_retention_days > 0:
        deleted = await prune_events(db, older_than=utcnow() - timedelta(days=event_retention_days))
        if deleted:
            log.info("pruned %d action set events older than %d days", deleted, event_retention_days)


async def run_retention(
    db: Database,
    *,
    retention_days: int,
    delivery_window: timedelta = timedelta(hours=24),
    event_retention_days: int = 0,
    first_delay: float = FIRST_DELAY_SECONDS,
    interval: float = INTERVAL_SECONDS,
) -> None:
    """Prune forever (until cancelled); a failing pass is logged and retried at the next interval."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            await retention_pass(
                db,
                retention_days=retention_days,
                delivery_window=delivery_window,
                event_retention_days=event_retention_days,
            )
        except Exception as exc:
            log.warning("retention pass failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)
