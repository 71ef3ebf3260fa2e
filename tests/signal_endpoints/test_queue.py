"""The signal queue: disjoint claims, leases that expire, processed signals never claimed again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.signal_endpoints.queue import claim_signals, extend_claims, mark_processed


async def _signals(db: Database, count: int) -> list[int]:
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        rows = await conn.execute(
            t.signal.insert().returning(t.signal.c.id),
            [
                {
                    "source": "signal-endpoint",
                    "source_id": 1,
                    "payload": orjson.dumps({"n": n}).decode(),
                    "created_at": now,
                }
                for n in range(count)
            ],
        )
        return sorted(rows.scalars())


async def test_claims_are_disjoint_oldest_first_and_leased(db: Database) -> None:
    ids = await _signals(db, 5)
    now = datetime.now(UTC)
    lease = timedelta(seconds=30)
    async with db.transaction() as conn:
        first = await claim_signals(conn, worker_id="a", now=now, lease=lease, limit=3)
    async with db.transaction() as conn:
        second = await claim_signals(conn, worker_id="b", now=now, lease=lease, limit=3)
    assert [s.id for s in first] == ids[:3]
    assert [s.id for s in second] == ids[3:]
    async with db.transaction() as conn:
        assert await claim_signals(conn, worker_id="c", now=now, lease=lease, limit=3) == []


async def test_an_expired_lease_is_retaken_and_a_renewed_one_is_not(db: Database) -> None:
    ids = await _signals(db, 2)
    start = datetime.now(UTC)
    lease = timedelta(seconds=10)
    async with db.transaction() as conn:
        held = await claim_signals(conn, worker_id="dead", now=start, lease=lease, limit=2)
    assert [s.id for s in held] == ids
    async with db.transaction() as conn:
        # "alive" renews one claim; "dead" never renews the other.
        assert (
            await extend_claims(
                conn, worker_id="dead", signal_ids=[ids[0]], until=start + timedelta(minutes=5)
            )
            == 1
        )
    later = start + lease + timedelta(seconds=1)
    async with db.transaction() as conn:
        retaken = await claim_signals(conn, worker_id="rescuer", now=later, lease=lease, limit=10)
    assert [s.id for s in retaken] == [ids[1]]
    async with db.read() as conn:
        owner = (
            await conn.execute(sa.select(t.signal.c.claimed_by).where(t.signal.c.id == ids[1]))
        ).scalar_one()
    assert owner == "rescuer"


async def test_processed_signals_are_never_claimed_again(db: Database) -> None:
    ids = await _signals(db, 3)
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        await mark_processed(conn, signal_ids=ids[:2], now=now)
    async with db.transaction() as conn:
        claimed = await claim_signals(
            conn, worker_id="w", now=now + timedelta(days=1), lease=timedelta(seconds=1), limit=10
        )
    assert [s.id for s in claimed] == [ids[2]]
