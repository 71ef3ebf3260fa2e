"""SQL of signal endpoints, their tokens and signals. Functions take the caller's connection.

Nothing here commits: callers own the transaction (`db.transaction()` / `db.read()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.db.queries import insert_returning
from switchman.db.types import MAX_ID
from switchman.signal_endpoints.schemas import SIGNAL_SOURCE

# A result row of any width.
DbRow: TypeAlias = Row[*tuple[Any, ...]]

ep = t.signal_endpoint
tk = t.signal_endpoint_token
sig = t.signal

# Ids are 32-bit integer columns.

# Transaction-scoped advisory lock serialising signal endpoint creation on PostgreSQL, so the
# instance-wide limit cannot be overshot by concurrent creates ("sig_endp" as 8 bytes).
ENDPOINT_CREATE_LOCK_KEY = 0x7369675F656E6470

# --- signal endpoints ---------------------------------------------------------------------------------


async def list_endpoints(conn: AsyncConnection) -> Sequence[DbRow]:
    return (await conn.execute(sa.select(ep).order_by(ep.c.id))).all()


async def get_endpoint(
    conn: AsyncConnection, endpoint_id: int, *, for_update: bool = False, key_share: bool = False
) -> DbRow | None:
    """The endpoint row, or None; ids outside the 32-bit column range name no endpoint (never a DB error).

    On PostgreSQL `for_update` locks the row; `key_share` takes the weakest lock that still makes a
    concurrent delete (which locks `for_update`) wait until this transaction ends.
    """
    if not 0 < endpoint_id <= MAX_ID:
        return None
    query = sa.select(ep).where(ep.c.id == endpoint_id)
    if (for_update or key_share) and conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=key_share and not for_update)
    return (await conn.execute(query)).first()


async def name_taken(conn: AsyncConnection, name: str, *, except_id: int | None = None) -> bool:
    query = sa.select(ep.c.id).where(ep.c.name == name)
    if except_id is not None:
        query = query.where(ep.c.id != except_id)
    return (await conn.execute(query)).first() is not None


async def lock_endpoint_creation(conn: AsyncConnection) -> None:
    """PostgreSQL: queue concurrent creators (SQLite write transactions are serial already)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ENDPOINT_CREATE_LOCK_KEY)))


async def count_endpoints(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(ep))).scalar_one())


async def insert_endpoint(
    conn: AsyncConnection,
    *,
    name: str,
    description: str | None,
    enabled: bool,
    created_at: datetime,
    created_by_user_id: int,
) -> DbRow:
    return await insert_returning(
        conn,
        ep,
        name=name,
        description=description,
        enabled=enabled,
        created_at=created_at,
        created_by_user_id=created_by_user_id,
    )


async def update_endpoint(conn: AsyncConnection, endpoint_id: int, **values: Any) -> DbRow | None:
    return (
        await conn.execute(ep.update().where(ep.c.id == endpoint_id).values(**values).returning(*ep.c))
    ).first()


async def delete_endpoint(conn: AsyncConnection, endpoint_id: int) -> bool:
    """Delete the endpoint; its tokens go with it (the foreign key cascades). Signals stay."""
    # SQLite enforces ON DELETE CASCADE only with `PRAGMA foreign_keys=ON`, which the engine sets;
    # deleting the tokens explicitly keeps the contract independent of that pragma.
    await conn.execute(tk.delete().where(tk.c.signal_endpoint_id == endpoint_id))
    return (await conn.execute(ep.delete().where(ep.c.id == endpoint_id))).rowcount > 0


# --- tokens -------------------------------------------------------------------------------------------


async def list_tokens(conn: AsyncConnection, endpoint_ids: Sequence[int] | None = None) -> Sequence[DbRow]:
    """Tokens (without anything secret-derived) ordered by id; of some endpoints or of all."""
    query = sa.select(
        tk.c.id, tk.c.name, tk.c.signal_endpoint_id, tk.c.created_at, tk.c.created_by_user_id
    ).order_by(tk.c.id)
    if endpoint_ids is not None:
        query = query.where(tk.c.signal_endpoint_id.in_(endpoint_ids))
    return (await conn.execute(query)).all()


async def get_token(conn: AsyncConnection, endpoint_id: int, token_id: int) -> DbRow | None:
    return (
        await conn.execute(
            sa.select(
                tk.c.id, tk.c.name, tk.c.signal_endpoint_id, tk.c.created_at, tk.c.created_by_user_id
            ).where(tk.c.id == token_id, tk.c.signal_endpoint_id == endpoint_id)
        )
    ).first()


async def count_tokens(conn: AsyncConnection, endpoint_id: int) -> int:
    return int(
        (
            await conn.execute(
                sa.select(sa.func.count()).select_from(tk).where(tk.c.signal_endpoint_id == endpoint_id)
            )
        ).scalar_one()
    )


async def insert_token(
    conn: AsyncConnection,
    *,
    endpoint_id: int,
    name: str,
    token_hash: str,
    created_at: datetime,
    created_by_user_id: int,
) -> DbRow:
    """The new token, without its hash."""
    return await insert_returning(
        conn,
        tk,
        returning=(tk.c.id, tk.c.name, tk.c.signal_endpoint_id, tk.c.created_at, tk.c.created_by_user_id),
        signal_endpoint_id=endpoint_id,
        name=name,
        token_hash=token_hash,
        created_at=created_at,
        created_by_user_id=created_by_user_id,
    )


async def rename_token(conn: AsyncConnection, endpoint_id: int, token_id: int, name: str) -> DbRow | None:
    return (
        await conn.execute(
            tk.update()
            .where(tk.c.id == token_id, tk.c.signal_endpoint_id == endpoint_id)
            .values(name=name)
            .returning(tk.c.id, tk.c.name, tk.c.signal_endpoint_id, tk.c.created_at, tk.c.created_by_user_id)
        )
    ).first()


async def delete_token(conn: AsyncConnection, endpoint_id: int, token_id: int) -> bool:
    result = await conn.execute(
        tk.delete().where(tk.c.id == token_id, tk.c.signal_endpoint_id == endpoint_id)
    )
    return result.rowcount > 0


# --- signal listings ----------------------------------------------------------------------------------


# A listed signal: its columns and the name of the token that sent it (null once the token is deleted).
_LISTED_SIGNAL = (
    sig.c.id,
    sig.c.payload,
    sig.c.created_at,
    sig.c.source,
    sig.c.source_id,
    tk.c.name.label("token_name"),
)
_SENDING_TOKEN = sa.and_(
    tk.c.id == sig.c.created_by_source_token_id, tk.c.signal_endpoint_id == sig.c.source_id
)


async def endpoint_signals(
    conn: AsyncConnection, endpoint_id: int, *, limit: int, offset: int
) -> Sequence[DbRow]:
    """Signals of one endpoint, newest first, with the name of the token used (null once deleted)."""
    query = (
        sa.select(*_LISTED_SIGNAL)
        .select_from(sig.outerjoin(tk, _SENDING_TOKEN))
        .where(sig.c.source == SIGNAL_SOURCE, sig.c.source_id == endpoint_id)
        .order_by(sig.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await conn.execute(query)).all()


async def console_signals(
    conn: AsyncConnection, endpoint_id: int, *, limit: int, token_id: int | None, since: datetime | None
) -> Sequence[DbRow]:
    """As `endpoint_signals`, sent with `token_id` and at or after `since` when given (the console)."""
    query = (
        sa.select(*_LISTED_SIGNAL)
        .select_from(sig.outerjoin(tk, _SENDING_TOKEN))
        .where(sig.c.source == SIGNAL_SOURCE, sig.c.source_id == endpoint_id)
    )
    if token_id is not None:
        query = query.where(sig.c.created_by_source_token_id == token_id)
    if since is not None:
        query = query.where(sig.c.created_at >= since)
    return (await conn.execute(query.order_by(sig.c.id.desc()).limit(limit))).all()


async def recent_counts_by_endpoint(conn: AsyncConnection, *, since: datetime, window: int) -> dict[int, int]:
    """Signals per endpoint id among the newest `window` signals created after `since` (a bounded scan of
    the primary key, whatever the table's size)."""
    newest = (
        sa.select(sig.c.source_id, sig.c.created_at)
        .where(sig.c.source == SIGNAL_SOURCE)
        .order_by(sig.c.id.desc())
        .limit(window)
        .subquery()
    )
    rows = await conn.execute(
        sa.select(newest.c.source_id, sa.func.count())
        .where(newest.c.created_at > since)
        .group_by(newest.c.source_id)
    )
    return {int(source_id): int(count) for source_id, count in rows}


async def recent_arrivals(conn: AsyncConnection, *, since: datetime, window: int) -> Sequence[DbRow]:
    """(source_id, created_at) of the newest `window` signals created after `since` (a bounded scan)."""
    query = (
        sa.select(sig.c.source_id, sig.c.created_at)
        .where(sig.c.source == SIGNAL_SOURCE)
        .order_by(sig.c.id.desc())
        .limit(window)
        .subquery()
    )
    return (
        await conn.execute(sa.select(query.c.source_id, query.c.created_at).where(query.c.created_at > since))
    ).all()


async def last_signal_at(conn: AsyncConnection, endpoint_id: int) -> datetime | None:
    """When the endpoint's newest signal arrived (the (source_id, id) index: one step)."""
    query = (
        sa.select(sig.c.created_at)
        .where(sig.c.source == SIGNAL_SOURCE, sig.c.source_id == endpoint_id)
        .order_by(sig.c.id.desc())
        .limit(1)
    )
    found: datetime | None = (await conn.execute(query)).scalar()
    return found


async def signals_in_range(
    conn: AsyncConnection,
    endpoint_id: int,
    *,
    limit: int,
    since: datetime | None,
    until: datetime | None,
) -> Sequence[DbRow]:
    """The endpoint's newest `limit` signals created in [since, until), newest first (id, created_at,
    payload)."""
    query = sa.select(sig.c.id, sig.c.created_at, sig.c.payload).where(
        sig.c.source == SIGNAL_SOURCE, sig.c.source_id == endpoint_id
    )
    if since is not None:
        query = query.where(sig.c.created_at >= since)
    if until is not None:
        query = query.where(sig.c.created_at < until)
    return (await conn.execute(query.order_by(sig.c.id.desc()).limit(limit))).all()


async def ingest_rules(conn: AsyncConnection, name: str) -> DbRow | None:
    """The enabled endpoint `name`'s id with its verification columns, its `format`, `split_alerts` and
    `query_token` (each null/false when not set), in one read; None when it is unknown or disabled."""
    endpoint = t.signal_endpoint
    verification = t.signal_endpoint_verification
    fmt = t.signal_endpoint_format
    query = t.signal_endpoint_query_token
    joined = (
        endpoint.outerjoin(verification, verification.c.signal_endpoint_id == endpoint.c.id)
        .outerjoin(fmt, fmt.c.signal_endpoint_id == endpoint.c.id)
        .outerjoin(query, query.c.signal_endpoint_id == endpoint.c.id)
    )
    statement = (
        sa.select(
            endpoint.c.id,
            verification.c.scheme,
            verification.c.sealed_secret,
            verification.c.header,
            verification.c.tolerance_seconds,
            verification.c.timestamp_header,
            fmt.c.format,
            sa.func.coalesce(fmt.c.split_alerts, sa.false()).label("split_alerts"),
            query.c.signal_endpoint_id.is_not(None).label("query_token"),
        )
        .select_from(joined)
        .where(endpoint.c.name == name, endpoint.c.enabled.is_(True))
    )
    return (await conn.execute(statement)).first()


async def recent_payloads(conn: AsyncConnection, endpoint_id: int, *, limit: int) -> list[str]:
    """The stored JSON payloads of the endpoint's newest `limit` signals, newest first."""
    query = (
        sa.select(sig.c.payload)
        .where(sig.c.source == SIGNAL_SOURCE, sig.c.source_id == endpoint_id)
        .order_by(sig.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).scalars())


async def query_signals(
    conn: AsyncConnection,
    *,
    created_from: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[DbRow], int]:
    """Signals created in [`created_from`, `created_before`), newest first, with endpoint and token names."""
    conditions: list[sa.ColumnElement[bool]] = [sig.c.source == SIGNAL_SOURCE]
    if created_from is not None:
        conditions.append(sig.c.created_at >= created_from)
    if created_before is not None:
        conditions.append(sig.c.created_at < created_before)
    query = (
        sa.select(
            *_LISTED_SIGNAL, ep.c.name.label("source_name"), ep.c.description.label("source_description")
        )
        .select_from(sig.outerjoin(ep, ep.c.id == sig.c.source_id).outerjoin(tk, _SENDING_TOKEN))
        .where(*conditions)
        .order_by(sig.c.created_at.desc(), sig.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = (await conn.execute(query)).all()
    total = (await conn.execute(sa.select(sa.func.count()).select_from(sig).where(*conditions))).scalar_one()
    return rows, int(total)


# --- retention ----------------------------------------------------------------------------------------


async def delete_processed_signals(conn: AsyncConnection, *, older_than: datetime, limit: int) -> int:
    """Delete up to `limit` processed signals created before `older_than`; returns how many.

    Ids are never handed out again (PostgreSQL sequences; SQLite AUTOINCREMENT, migration 0002), so
    action set events that name a pruned signal's id can never be confused with a newer signal.
    """
    victims = (
        sa.select(sig.c.id)
        .where(sig.c.created_at < older_than, sig.c.processed_at.is_not(None))
        .order_by(sig.c.id)
        .limit(limit)
    )
    result = await conn.execute(sig.delete().where(sig.c.id.in_(victims)))
    return int(result.rowcount)


async def delete_expired_deliveries(conn: AsyncConnection, *, claimed_before: datetime, limit: int) -> int:
    """Delete the oldest claims made before `claimed_before` (past the window), about `limit` of them (all
    claims sharing the last one's timestamp go too); how many. Bounded by the `created_at` index."""
    deliveries = t.signal_delivery
    expired = deliveries.c.created_at < claimed_before
    edge = await conn.scalar(
        sa.select(deliveries.c.created_at)
        .where(expired)
        .order_by(deliveries.c.created_at)
        .offset(limit - 1)
        .limit(1)
    )
    condition = expired if edge is None else deliveries.c.created_at <= edge
    result = await conn.execute(deliveries.delete().where(condition))
    return int(result.rowcount)


async def signal_summary(conn: AsyncConnection, signal_id: int) -> DbRow | None:
    """A signal's source, source id, payload text, creation and processing times; None when unknown."""
    if not 0 < signal_id <= MAX_ID:
        return None
    s = t.signal
    query = sa.select(s.c.id, s.c.source, s.c.source_id, s.c.payload, s.c.created_at, s.c.processed_at)
    return (await conn.execute(query.where(s.c.id == signal_id))).first()


async def signal_payload(conn: AsyncConnection, signal_id: int) -> str | None:
    """The stored JSON text of a signal's payload."""
    if not 0 < signal_id <= MAX_ID:
        return None
    return await conn.scalar(sa.select(t.signal.c.payload).where(t.signal.c.id == signal_id))
