"""The revision of what SDK clients see: one counter that changes whenever what SDKs see may have changed.

Contract: every committed transaction that records an audit event with `visible_to_clients=True`
(flags created or archived, turned on/off, strategies added, environments added to a project) increments
`flag_store_revision.revision` exactly once, as its last statement before COMMIT (`db.engine.before_commit`).
Because the increment takes the counter row's lock, revisions are handed out in commit order: a reader
that sees revision R sees every change committed with a revision ≤ R, in every process sharing the
database. (The newest event id would not do on PostgreSQL: ids are taken before commit, so a slower
transaction can commit an older id after a newer one has been read.) See ADR 0009.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.db.engine import before_commit

_ROW_ID = 1
_HOOK_KEY = "audit.revision"


def mark_changed(conn: AsyncConnection) -> None:
    """Note that the current transaction changes what SDKs see; the revision moves at its COMMIT."""
    before_commit(conn, _HOOK_KEY, _bump)


async def _bump(conn: AsyncConnection) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # The first revision of a database is the current time in milliseconds, not 1: an SDK that kept an ETag
    # (the Python SDK caches it on disk) from an older database at the same address can then never get a
    # false 304 from a newer one, whose revisions start later.
    first = int(time.time() * 1000)
    statement = insert(t.flag_store_revision).values(id=_ROW_ID, revision=first)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"revision": t.flag_store_revision.c.revision + 1}
        )
    )


async def current_revision(conn: AsyncConnection) -> int:
    """The latest committed revision (0 before the first change; then from the first change's time in ms)."""
    value = (
        await conn.execute(
            sa.select(t.flag_store_revision.c.revision).where(t.flag_store_revision.c.id == _ROW_ID)
        )
    ).scalar()
    return int(value or 0)
