"""SQL of the notification tables (channels, outbox, delivery log); no rules, no transactions of its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t

_c = t.notification_channel
_o = t.notification_outbox
_d = t.notification_delivery

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


# --- channels -----------------------------------------------------------------------------------------


async def list_channels(conn: AsyncConnection, project: str) -> list[Any]:
    return list((await conn.execute(sa.select(_c).where(_c.c.project_id == project).order_by(_c.c.id))).all())


async def get_channel(conn: AsyncConnection, *, project: str, channel_id: int) -> Any:
    query = sa.select(_c).where(_c.c.project_id == project, _c.c.id == channel_id)
    return (await conn.execute(query)).first()


async def name_taken(
    conn: AsyncConnection, *, project: str, name: str, other_than: int | None = None
) -> bool:
    query = sa.select(_c.c.id).where(_c.c.project_id == project, _c.c.name == name)
    if other_than is not None:
        query = query.where(_c.c.id != other_than)
    return (await conn.execute(query)).first() is not None


async def insert_channel(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(_c.insert().values(**values).returning(_c.c.id))
    return int(result.scalar_one())


async def update_channel(conn: AsyncConnection, channel_id: int, values: dict[str, Any]) -> None:
    await conn.execute(_c.update().where(_c.c.id == channel_id).values(**values))


async def delete_channel(conn: AsyncConnection, channel_id: int) -> None:
    # The outbox and the delivery log go with it (ON DELETE CASCADE; SQLite's are on, see db.engine).
    await conn.execute(_c.delete().where(_c.c.id == channel_id))


async def enabled_channels(conn: AsyncConnection, projects: Iterable[str]) -> list[Any]:
    """The enabled channels of `projects`: (id, project_id, action_set_ids, events)."""
    wanted = sorted(set(projects))
    if not wanted:
        return []
    query = sa.select(_c.c.id, _c.c.project_id, _c.c.action_set_ids, _c.c.events).where(
        _c.c.enabled.is_(True), _c.c.project_id.in_(wanted)
    )
    return list((await conn.execute(query)).all())


async def sealed_values(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(sa.select(_c.c.id, _c.c.sealed_url, _c.c.sealed_secret))).all())


# --- outbox -------------------------------------------------------------------------------------------


async def insert_messages(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_o.insert(), list(rows))


async def any_due(conn: AsyncConnection, *, now: datetime) -> bool:
    """Whether a pending message is due by `now` (a read, so an idle dispatcher takes no write lock)."""
    query = sa.select(_o.c.id).where(_o.c.state == PENDING, _o.c.due_at <= now).limit(1)
    return (await conn.execute(query)).first() is not None


async def claim_due(conn: AsyncConnection, *, now: datetime, until: datetime, limit: int) -> list[Any]:
    """Up to `limit` pending messages due by `now`, oldest due first, with their channel's kind and sealed
    values; their `due_at` moves to `until` (the claim's lease: another dispatcher takes a message again
    only once it passed). On PostgreSQL rows another dispatcher is claiming are skipped, not waited for."""
    query = (
        sa.select(_o.c.id)
        .where(_o.c.state == PENDING, _o.c.due_at <= now)
        .order_by(_o.c.due_at, _o.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [row.id for row in (await conn.execute(query)).all()]
    if not ids:
        return []
    await conn.execute(_o.update().where(_o.c.id.in_(ids)).values(due_at=until))
    joined = (
        sa.select(
            _o.c.id,
            _o.c.channel_id,
            _o.c.webhook_id,
            _o.c.event_type,
            _o.c.payload,
            _o.c.attempts,
            _o.c.created_at,
            _c.c.kind,
            _c.c.sealed_url,
            _c.c.sealed_secret,
        )
        .join(_c, _c.c.id == _o.c.channel_id)
        .where(_o.c.id.in_(ids))
        .order_by(_o.c.due_at, _o.c.id)
    )
    return list((await conn.execute(joined)).all())


async def record_attempt(
    conn: AsyncConnection,
    *,
    message_id: int,
    channel_id: int,
    attempt: int,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    state: str,
    due_at: datetime,
) -> None:
    """Log one attempt and move the message on (to `state`; when still pending, due again at `due_at`)."""
    await conn.execute(
        _d.insert().values(
            outbox_id=message_id,
            channel_id=channel_id,
            attempt=attempt,
            attempted_at=at,
            status_code=status_code,
            error=error[:255] if error else None,
            duration_ms=duration_ms,
        )
    )
    await conn.execute(
        _o.update()
        .where(_o.c.id == message_id)
        .values(
            attempts=attempt,
            state=state,
            due_at=due_at,
            finished_at=None if state == PENDING else at,
        )
    )


async def prune_finished(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` delivered or given-up messages finished before `before`, with their delivery
    log (ON DELETE CASCADE); how many."""
    ids = (
        (
            await conn.execute(
                sa.select(_o.c.id)
                .where(_o.c.state != PENDING, _o.c.finished_at < before)
                .order_by(_o.c.id)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        await conn.execute(_o.delete().where(_o.c.id.in_(ids)))
    return len(ids)


async def deliveries(conn: AsyncConnection, *, channel_id: int, limit: int) -> list[Any]:
    """The channel's newest attempts first, with their message's id, event and state."""
    query = (
        sa.select(
            _d.c.id,
            _d.c.attempt,
            _d.c.attempted_at,
            _d.c.status_code,
            _d.c.error,
            _d.c.duration_ms,
            _o.c.webhook_id,
            _o.c.event_type,
            _o.c.state,
        )
        .join(_o, _o.c.id == _d.c.outbox_id)
        .where(_d.c.channel_id == channel_id)
        .order_by(_d.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
