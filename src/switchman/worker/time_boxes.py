"""The worker's time box sweep (ADR 0025): revert the boxes that ended, each in its own transaction.

Every worker sweeps at most once per poll interval, between batches; the due boxes are found by an index
range scan, and each is reverted under its set's lock only if still due (`action_sets.time_boxes`), so
several workers sweeping at once revert each box once. A box ends on time to within the poll interval
plus the batch in progress.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from switchman.action_sets.time_boxes import due_time_boxes, revert_if_due
from switchman.db.engine import Database
from switchman.timeutil import utcnow

log = logging.getLogger(__name__)

SWEEP_LIMIT = 100  # boxes reverted per sweep at most; the rest wait for the next one


class TimeBoxSweep:
    def __init__(self, db: Database, *, interval_seconds: float) -> None:
        self._db = db
        self._interval = interval_seconds
        self._next = 0.0  # monotonic time of the next sweep

    async def sweep_if_time(self) -> int:
        """Sweep when the interval has passed since the last sweep; the boxes reverted."""
        if time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self._interval
        return await self.sweep()

    async def sweep(self, now: datetime | None = None) -> int:
        """Revert every box due by `now` (default: the current time), up to `SWEEP_LIMIT`."""
        at = now or utcnow()
        async with self._db.read() as conn:
            due = await due_time_boxes(conn, now=at, limit=SWEEP_LIMIT)
        reverted = 0
        for action_set_id, alert in due:
            async with self._db.transaction() as conn:
                if await revert_if_due(conn, action_set_id=action_set_id, alert=alert, now=at):
                    reverted += 1
                    log.info("time box of action set %s (alert %r) ended: its run was put back", action_set_id,
                             alert)  # fmt: skip
        return reverted
