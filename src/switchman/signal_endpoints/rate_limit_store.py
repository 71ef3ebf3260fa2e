"""The shared rate-limit windows (`signal_rate_window`): leases of tokens, and deleting windows long past.

A lease is one atomic statement (`INSERT … ON CONFLICT DO UPDATE … RETURNING`): the row lock it takes
orders concurrent leases, so the tokens granted in one window never add up to more than its limit, however
many replicas ask (ADR 0029). On PostgreSQL it runs on an autocommit connection — one round trip, no
BEGIN/COMMIT — into an UNLOGGED table; on SQLite (tests, a single host) in a write transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.db.engine import Database


@dataclass(frozen=True, slots=True)
class Lease:
    granted: int  # tokens this lease got (0: the window is used up, or already over for the cluster)
    used: int  # tokens of the window leased by anyone so far, this lease included


async def lease(db: Database, *, endpoint_name: str, window_start: datetime, block: int, limit: int) -> Lease:
    """Lease up to `block` of the `limit` tokens of `endpoint_name`'s window starting at `window_start`.

    A row of an earlier window is taken over (its count starts again); a row of a later window — another
    replica's clock is ahead — is left alone and the lease gets nothing.
    """
    w = t.signal_rate_window
    first = min(block, limit)
    insert = (postgresql.insert if db.is_postgres else sqlite.insert)(w).values(
        endpoint_name=endpoint_name, window_start=window_start, used=first, granted=first
    )
    same_window = w.c.window_start == insert.excluded.window_start
    grant = sa.case((w.c.used + block <= limit, block), (w.c.used < limit, limit - w.c.used), else_=0)
    statement = insert.on_conflict_do_update(
        index_elements=[w.c.endpoint_name],
        set_={
            "window_start": insert.excluded.window_start,
            "granted": sa.case((same_window, grant), else_=first),
            "used": sa.case((same_window, w.c.used + grant), else_=first),
        },
        where=w.c.window_start <= insert.excluded.window_start,
    ).returning(w.c.granted, w.c.used)
    async with _single_statement(db) as conn:
        row = (await conn.execute(statement)).one_or_none()
    if row is None:  # the row is in a later window
        return Lease(granted=0, used=limit)
    return Lease(granted=row.granted, used=row.used)


async def delete_windows_before(db: Database, before: datetime) -> int:
    """Delete the rows of windows that started before `before`; returns how many."""
    w = t.signal_rate_window
    async with _single_statement(db) as conn:
        result = await conn.execute(sa.delete(w).where(w.c.window_start < before))
    return result.rowcount


@asynccontextmanager
async def _single_statement(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection for one self-contained write: autocommit on PostgreSQL, a transaction on SQLite."""
    if db.is_sqlite:
        async with db.transaction() as conn:
            yield conn
        return
    async with db.engine.connect() as conn:
        # Each statement commits on its own: the lease needs no surrounding transaction, and BEGIN and
        # COMMIT would triple its round trips.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
