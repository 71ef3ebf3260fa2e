"""The signal queue: claiming pending signals with a lease, extending it, marking signals processed.

A signal is pending while `processed_at` is NULL. A worker claims a batch by writing its id and a lease
expiry (`claimed_by`, `claim_expires_at`); on PostgreSQL the candidate rows are locked with
`FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches without waiting on each other.
A claim whose lease has expired (its worker crashed or hung) is pending again and is retaken by the
next claim. On SQLite the claiming transaction is `BEGIN IMMEDIATE`, which serializes claimers.
"""

from __future__ import annotations

import functools
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

    @functools.cached_property
    def _payload(self) -> dict[str, Any]:
        value = orjson.loads(self.payload_json)
        return value if isinstance(value, dict) else {}

    def payload(self) -> dict[str, Any]:
        """The stored payload, parsed once (matching and the event's snapshot read the same object: it is
        never changed)."""
        return self._payload

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


def _claim_statement(*, skip_locked: bool) -> sa.Update:
    """The claim, built once (a batch pays for executing it, not for building it); on PostgreSQL the
    candidates are locked with SKIP LOCKED. Parameters: `now`, `limit`, `worker_id`, `expires_at`."""
    now = sa.bindparam("now", type_=_s.c.claim_expires_at.type)
    pending = (
        sa.select(_s.c.id)
        .where(
            _s.c.processed_at.is_(None), sa.or_(_s.c.claim_expires_at.is_(None), _s.c.claim_expires_at < now)
        )
        .order_by(_s.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    if skip_locked:
        pending = pending.with_for_update(skip_locked=True)
    return (
        _s.update()
        .where(_s.c.id.in_(pending.scalar_subquery()))
        .values(
            claimed_by=sa.bindparam("worker_id", type_=_s.c.claimed_by.type),
            claim_expires_at=sa.bindparam("expires_at", type_=_s.c.claim_expires_at.type),
        )
        .returning(
            _s.c.id,
            _s.c.source,
            _s.c.source_id,
            _s.c.created_by_source_token_id,
            _s.c.payload,
            _s.c.created_at,
        )
    )


_CLAIM = _claim_statement(skip_locked=False)
_CLAIM_FOR_UPDATE = _claim_statement(skip_locked=True)
_MARK_PROCESSED = (
    _s.update()
    .where(_s.c.id.in_(sa.bindparam("ids", expanding=True)), _s.c.processed_at.is_(None))
    .values(
        processed_at=sa.bindparam("now", type_=_s.c.processed_at.type), claimed_by=None, claim_expires_at=None
    )
)


async def claim_signals(
    conn: AsyncConnection, *, worker_id: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedSignal]:
    """Claim up to `limit` pending signals (oldest first) whose claim is absent or expired."""
    statement = _CLAIM_FOR_UPDATE if conn.dialect.name == "postgresql" else _CLAIM
    rows = (
        await conn.execute(
            statement, {"now": now, "limit": limit, "worker_id": worker_id, "expires_at": now + lease}
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
    await conn.execute(_MARK_PROCESSED, {"ids": signal_ids, "now": now})


async def pending_count(conn: AsyncConnection) -> int:
    return int(
        (await conn.execute(sa.select(sa.func.count()).where(_s.c.processed_at.is_(None)))).scalar_one()
    )


async def oldest_pending_at(conn: AsyncConnection) -> datetime | None:
    """When the oldest signal still waiting for a worker arrived (the pending index: one step)."""
    query = sa.select(_s.c.created_at).where(_s.c.processed_at.is_(None)).order_by(_s.c.id).limit(1)
    found: datetime | None = (await conn.execute(query)).scalar()
    return found


# --- poison signals (ADR 0028) ------------------------------------------------------------------------

# The error kept beside a signal: enough for a traceback's last lines, bounded whatever the exception says.
MAX_ERROR_CHARS = 2_000
# A failed signal waits before its next attempt (doubling from 1 s, at most this), so it never holds the
# head of the queue while it is retried: the claim skips it until then.
MAX_RETRY_DELAY_SECONDS = 60.0


@dataclass(frozen=True)
class FailureRecord:
    failures: int
    set_aside: bool


async def record_failure(
    conn: AsyncConnection, *, signal_id: int, error: str, now: datetime, set_aside_after: int
) -> FailureRecord | None:
    """Count one attempt at processing `signal_id` that raised. Below `set_aside_after` failures the signal
    waits (a lease of 1, 2, 4 … s that no worker holds) before it is claimed again; at `set_aside_after` it
    is set aside: processed (no claim sees it) and listed with its error until an operator retries it.
    None when the signal is no longer pending (another worker finished it)."""
    row = (
        await conn.execute(
            _s.update()
            .where(_s.c.id == signal_id, _s.c.processed_at.is_(None))
            .values(failures=_s.c.failures + 1, last_error=error[:MAX_ERROR_CHARS])
            .returning(_s.c.failures)
        )
    ).first()
    if row is None:
        return None
    failures = int(row.failures)
    if failures >= set_aside_after:
        values: dict[str, Any] = {
            "processed_at": now, "set_aside_at": now, "claimed_by": None, "claim_expires_at": None,
        }  # fmt: skip
    else:
        delay = min(2.0 ** (failures - 1), MAX_RETRY_DELAY_SECONDS)
        values = {"claimed_by": None, "claim_expires_at": now + timedelta(seconds=delay)}
    await conn.execute(_s.update().where(_s.c.id == signal_id).values(**values))
    return FailureRecord(failures=failures, set_aside=failures >= set_aside_after)


async def retry_set_aside(conn: AsyncConnection, *, signal_id: int) -> bool:
    """Put a set-aside signal back in the queue with a fresh count of failures; False when `signal_id` is
    not set aside (unknown, pruned, or already retried)."""
    result = await conn.execute(
        _s.update()
        .where(_s.c.id == signal_id, _s.c.set_aside_at.is_not(None))
        .values(processed_at=None, set_aside_at=None, failures=0, claimed_by=None, claim_expires_at=None)
    )
    return int(result.rowcount) == 1


@dataclass(frozen=True)
class SetAsideSignal:
    id: int
    source: str
    source_id: int
    created_by_source_token_id: int | None
    payload_json: str
    created_at: datetime
    failures: int
    last_error: str | None
    set_aside_at: datetime


async def set_aside_signals(conn: AsyncConnection, *, limit: int, offset: int) -> list[SetAsideSignal]:
    """The signals set aside, newest first (their partial index: only they are read)."""
    rows = (
        await conn.execute(
            sa.select(
                _s.c.id, _s.c.source, _s.c.source_id, _s.c.created_by_source_token_id, _s.c.payload,
                _s.c.created_at, _s.c.failures, _s.c.last_error, _s.c.set_aside_at,
            )
            .where(_s.c.set_aside_at.is_not(None))
            .order_by(_s.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()  # fmt: skip
    return [
        SetAsideSignal(
            id=row.id, source=row.source, source_id=row.source_id,
            created_by_source_token_id=row.created_by_source_token_id, payload_json=row.payload,
            created_at=row.created_at, failures=row.failures, last_error=row.last_error,
            set_aside_at=row.set_aside_at,
        )
        for row in rows
    ]  # fmt: skip


async def set_aside_count(conn: AsyncConnection) -> int:
    query = sa.select(sa.func.count()).where(_s.c.set_aside_at.is_not(None))
    return int((await conn.execute(query)).scalar_one())
