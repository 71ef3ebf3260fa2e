"""The signal queue: claiming pending signals with a lease, extending it, marking signals processed.

A signal is pending while `processed_at` is NULL. A worker claims a batch by writing its id and a lease
expiry (`claimed_by`, `claim_expires_at`); on PostgreSQL the candidate rows are locked with
`FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches without waiting on each other.
A claim whose lease has expired (its worker crashed or hung) is pending again and is retaken by the
next claim. On SQLite the claiming transaction is `BEGIN IMMEDIATE`, which serializes claimers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.timeutil import iso

_s = t.signal


@dataclass(frozen=True)
class ClaimedSignal:
    id: int
    source: str
    source_id: int
    created_by_source_token_id: int | None
    payload_json: str
    created_at: datetime

    def payload(self) -> dict[str, Any]:
        value = orjson.loads(self.payload_json)
        return value if isinstance(value, dict) else {}

    def wire(self) -> dict[str, Any]:
        """The signal as Unleash's `signalSchema`, the snapshot stored in action set events."""
        return {
            "id": self.id,
            "payload": self.payload(),
            "createdAt": iso(self.created_at),
            "source": self.source,
            "sourceId": self.source_id,
            "createdBySourceTokenId": self.created_by_source_token_id,
        }


async def claim_signals(
    conn: AsyncConnection, *, worker_id: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedSignal]:
    """Claim up to `limit` pending signals (oldest first) whose claim is absent or expired."""
    pending = (
        sa.select(_s.c.id)
        .where(
            _s.c.processed_at.is_(None), sa.or_(_s.c.claim_expires_at.is_(None), _s.c.claim_expires_at < now)
        )
        .order_by(_s.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    rows = (
        await conn.execute(
            _s.update()
            .where(_s.c.id.in_(pending.scalar_subquery()))
            .values(claimed_by=worker_id, claim_expires_at=now + lease)
            .returning(
                _s.c.id,
                _s.c.source,
                _s.c.source_id,
                _s.c.created_by_source_token_id,
                _s.c.payload,
                _s.c.created_at,
            )
        )
    ).all()
    claimed = [
        ClaimedSignal(
            id=row.id,
            source=row.source,
            source_id=row.source_id,
            created_by_source_token_id=row.created_by_source_token_id,
            payload_json=row.payload,
            created_at=row.created_at,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda signal: signal.id)


async def extend_claims(
    conn: AsyncConnection, *, worker_id: str, signal_ids: list[int], until: datetime
) -> int:
    """Push the lease of this worker's unfinished claims to `until`; returns how many it still holds."""
    if not signal_ids:
        return 0
    result = await conn.execute(
        _s.update()
        .where(_s.c.id.in_(signal_ids), _s.c.claimed_by == worker_id, _s.c.processed_at.is_(None))
        .values(claim_expires_at=until)
    )
    return int(result.rowcount)


async def mark_processed(conn: AsyncConnection, *, signal_ids: list[int], now: datetime) -> None:
    await conn.execute(
        _s.update()
        .where(_s.c.id.in_(signal_ids), _s.c.processed_at.is_(None))
        .values(processed_at=now, claimed_by=None, claim_expires_at=None)
    )


async def pending_count(conn: AsyncConnection) -> int:
    return int(
        (await conn.execute(sa.select(sa.func.count()).where(_s.c.processed_at.is_(None)))).scalar_one()
    )


async def oldest_pending_at(conn: AsyncConnection) -> datetime | None:
    """When the oldest signal still waiting for a worker arrived (the pending index: one step)."""
    query = sa.select(_s.c.created_at).where(_s.c.processed_at.is_(None)).order_by(_s.c.id).limit(1)
    found: datetime | None = (await conn.execute(query)).scalar()
    return found
