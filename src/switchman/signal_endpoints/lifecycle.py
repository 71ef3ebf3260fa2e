"""Start-up and shutdown of the signal components (group committer, rate limiter, retention)."""

from __future__ import annotations

import asyncio
import contextlib

from switchman.context import AppContext
from switchman.signal_endpoints.group_commit import GroupCommitter
from switchman.signal_endpoints.ingest import COMMITTER, RATE_LIMITER
from switchman.signal_endpoints.intake import IngestCall, Outcome, SignalWriter, make_signal_writer
from switchman.signal_endpoints.rate_limit import RateLimiter
from switchman.signal_endpoints.retention import run_retention

RETENTION_TASK = "signal_retention"
WRITER = "signal_writer"
# PostgreSQL: two batches in flight, so one is sent while the other waits for its WAL flush. SQLite has
# one writer at a time, so a second batch would only queue on the database lock.
POSTGRES_BATCHES_IN_FLIGHT = 2


async def start(ctx: AppContext) -> None:
    """Create the long-lived ingestion components and register them in `ctx.components`."""
    settings = ctx.settings
    in_flight = POSTGRES_BATCHES_IN_FLIGHT if ctx.db.is_postgres else 1
    writer = make_signal_writer(ctx.db, ctx.wakeup, connections=in_flight)
    committer: GroupCommitter[IngestCall, Outcome] = GroupCommitter(
        writer.write,
        max_batch=settings.group_commit_max_batch,
        max_in_flight=in_flight,
        name="signal-ingest",
    )
    ctx.components[WRITER] = writer
    ctx.components[COMMITTER] = committer
    if settings.signal_rate_limit_per_second > 0:
        ctx.components[RATE_LIMITER] = RateLimiter(settings.signal_rate_limit_per_second)
    if settings.signal_retention_days > 0:
        ctx.components[RETENTION_TASK] = asyncio.create_task(
            run_retention(ctx.db, retention_days=settings.signal_retention_days), name=RETENTION_TASK
        )


async def stop(ctx: AppContext) -> None:
    """Flush and stop what `start` created: queued signals are written before the database closes."""
    task: asyncio.Task[None] | None = ctx.components.pop(RETENTION_TASK, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    committer: GroupCommitter[IngestCall, Outcome] | None = ctx.components.get(COMMITTER)
    if committer is not None:
        await committer.close()
    writer: SignalWriter | None = ctx.components.pop(WRITER, None)
    if writer is not None:
        await writer.close()
    ctx.components.pop(RATE_LIMITER, None)
