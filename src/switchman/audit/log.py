"""The audit log (Unleash's `events`): recording changes with their actor, and reading them back.

Every write operation of switchman records one event per real change, in the same transaction as the
change, so the log never disagrees with the state. Every feature records here.

A change that alters what SDK clients are served (`GET /api/client/features`: flags created or archived,
turned on or off, strategies added, environments added to a project) says so when it records its event
(`visible_to_clients=True`): the revision of what clients see (`audit.revision`) then moves when the
transaction commits. The argument is required, so no caller can forget to decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import revision
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.timeutil import iso, utcnow

# Unleash's event type names used by switchman.
PROJECT_CREATED = "project-created"
PROJECT_ENVIRONMENT_ADDED = "project-environment-added"
ENVIRONMENT_CREATED = "environment-created"
FEATURE_CREATED = "feature-created"
FEATURE_ARCHIVED = "feature-archived"
FEATURE_ENVIRONMENT_ENABLED = "feature-environment-enabled"
FEATURE_ENVIRONMENT_DISABLED = "feature-environment-disabled"
FEATURE_STRATEGY_ADD = "feature-strategy-add"
TAG_TYPE_CREATED = "tag-type-created"
TAG_CREATED = "tag-created"
FEATURE_TAGGED = "feature-tagged"
FEATURE_UNTAGGED = "feature-untagged"
SERVICE_ACCOUNT_CREATED = "service-account-created"
SERVICE_ACCOUNT_UPDATED = "service-account-updated"
SERVICE_ACCOUNT_DELETED = "service-account-deleted"
SERVICE_ACCOUNT_TOKEN_CREATED = "service-account-token-created"
SERVICE_ACCOUNT_TOKEN_DELETED = "service-account-token-deleted"

# `GET /api/admin/events` returns the latest 100 events, as Unleash's (deprecated) endpoint does.
EVENTS_PAGE = 100


async def record_event(
    conn: AsyncConnection,
    *,
    type: str,
    actor: Principal,
    data: Mapping[str, Any] | None = None,
    pre_data: Mapping[str, Any] | None = None,
    feature_name: str | None = None,
    project: str | None = None,
    environment: str | None = None,
    tags: list[dict[str, str]] | None = None,
    visible_to_clients: bool,
) -> int:
    """Append one audit event written by `actor` (`createdBy` = username, `createdByUserId` = user id).

    Call it inside the transaction that makes the change. `data`/`pre_data` are the object after/before
    the change (JSON-serialisable; never secrets). `tags`: the flag's tags, which Unleash attaches
    to a flag's events (the flags feature passes them; `[]` by default). `visible_to_clients`:
    the change alters what SDK clients are served (the module's contract). Returns the event id.
    """
    result = await conn.execute(
        t.event.insert()
        .values(
            type=type,
            created_by=actor.username,
            created_by_user_id=actor.user_id,
            created_at=utcnow(),
            data=dict(data) if data is not None else None,
            pre_data=dict(pre_data) if pre_data is not None else None,
            tags=list(tags or []),
            feature_name=feature_name,
            project=project,
            environment=environment,
        )
        .returning(t.event.c.id)
    )
    if visible_to_clients:
        revision.mark_changed(conn)
    return int(result.scalar_one())


async def record_creation(
    conn: AsyncConnection,
    type: str,
    actor: Principal,
    created: BaseModel,
    *,
    visible_to_clients: bool,
    **where: Any,
) -> int:
    """`record_event` for a creation: the event's data is the created object as the API shows it."""
    return await record_event(
        conn,
        type=type,
        actor=actor,
        data=created.model_dump(by_alias=True),
        visible_to_clients=visible_to_clients,
        **where,
    )


async def record_events(
    conn: AsyncConnection, rows: list[dict[str, Any]], *, visible_to_clients: bool
) -> None:
    """Append many audit events in the given order (rows: `event` columns; ids ascend with the order),
    as `record_event` does one."""
    if rows:
        await conn.execute(t.event.insert(), rows)
        if visible_to_clients:
            revision.mark_changed(conn)


async def last_toggle_since(
    conn: AsyncConnection, *, feature_name: str, environment: str, since: datetime
) -> Any:
    """The newest on/off of the flag in the environment recorded after `since` (`type`, `created_by`,
    `created_at`), or None: "was it changed since?" for undo and restore (ADR 0024)."""
    e = t.event
    query = (
        sa.select(e.c.type, e.c.created_by, e.c.created_at)
        .where(
            e.c.feature_name == feature_name,
            e.c.environment == environment,
            e.c.type.in_((FEATURE_ENVIRONMENT_ENABLED, FEATURE_ENVIRONMENT_DISABLED)),
            e.c.created_at > since,
        )
        .order_by(e.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


def event_to_wire(row: Any) -> dict[str, Any]:
    """Unleash's event object."""
    return {
        "id": row.id,
        "type": row.type,
        "createdBy": row.created_by,
        "createdByUserId": row.created_by_user_id,
        "createdAt": iso(row.created_at),
        "data": row.data,
        "preData": row.pre_data,
        "tags": row.tags,
        "featureName": row.feature_name,
        "project": row.project,
        "environment": row.environment,
    }


async def list_events(
    conn: AsyncConnection,
    *,
    project: str | None = None,
    feature_name: str | None = None,
    limit: int = EVENTS_PAGE,
) -> tuple[list[dict[str, Any]], int]:
    """The newest `limit` events (newest first), optionally of one project or flag, and their total count."""
    conditions: list[sa.ColumnElement[bool]] = []
    if project is not None:
        conditions.append(t.event.c.project == project)
    if feature_name is not None:
        conditions.append(t.event.c.feature_name == feature_name)
    rows = await conn.execute(
        sa.select(t.event).where(*conditions).order_by(t.event.c.id.desc()).limit(limit)
    )
    events = [event_to_wire(row) for row in rows]
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(t.event).where(*conditions))
    ).scalar_one()
    return events, int(total)
