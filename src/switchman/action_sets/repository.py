"""Storage of action sets and their actions: rows in, records and `actionsSchema` wire dicts out.

Only the action set tables: what the action set API needs from neighbouring features it asks their
services (flags, signal endpoints, service accounts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.engine.executor import ActionStep, order_steps
from switchman.timeutil import iso

SIGNAL_ENDPOINT_SOURCE = "signal-endpoint"


@dataclass(frozen=True)
class ActionRecord:
    """One stored action of an action set."""

    id: int
    action: str
    sort_order: int
    execution_params: Mapping[str, Any]
    created_at: datetime
    created_by_user_id: int

    def step(self) -> ActionStep:
        """A fresh `not started` step for running this action."""
        return ActionStep(
            id=self.id,
            action=self.action,
            sort_order=self.sort_order,
            execution_params=dict(self.execution_params),
        )

    def wire(self) -> dict[str, Any]:
        """`actionSchema`."""
        return {
            "id": self.id,
            "createdAt": iso(self.created_at),
            "createdByUserId": self.created_by_user_id,
            "action": self.action,
            "sortOrder": self.sort_order,
            "executionParams": dict(self.execution_params),
        }


@dataclass(frozen=True, kw_only=True)
class ActionSetColumns:
    """What an action set says: its name, who it runs as, whether it is on, what it listens to."""

    name: str
    description: str | None
    actor_id: int
    enabled: bool
    source: str
    source_id: int
    filters: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class ActionSetRecord(ActionSetColumns):
    """A stored action set with its actions in run order (`sortOrder`, then id) and its filters."""

    id: int
    project: str
    created_at: datetime
    created_by_user_id: int
    actions: tuple[ActionRecord, ...]
    # The `actionsSchema` wire dict: the API's representation and the snapshot stored on events.
    wire: dict[str, Any] = field(repr=False, compare=False)

    def steps(self) -> list[ActionStep]:
        """Fresh `not started` steps for every action, in run order."""
        return order_steps(action.step() for action in self.actions)


def _action_record(row: Any) -> ActionRecord:
    return ActionRecord(
        id=row.id,
        action=row.action,
        sort_order=row.sort_order,
        execution_params=row.execution_params or {},
        created_at=row.created_at,
        created_by_user_id=row.created_by_user_id,
    )


def _set_record(row: Any, actions: Iterable[ActionRecord]) -> ActionSetRecord:
    ordered = tuple(sorted(actions, key=lambda action: (action.sort_order, action.id)))
    filters = row.match_payload or {}
    wire = {
        "id": row.id,
        "project": row.project_id,
        "createdAt": iso(row.created_at),
        "createdByUserId": row.created_by_user_id,
        "name": row.name,
        "description": row.description,
        "actorId": row.actor_id,
        "enabled": row.enabled,
        "actions": [action.wire() for action in ordered],
        "match": {"source": row.match_source, "sourceId": row.match_source_id, "payload": filters},
    }
    return ActionSetRecord(
        id=row.id,
        project=row.project_id,
        name=row.name,
        description=row.description,
        actor_id=row.actor_id,
        enabled=row.enabled,
        source=row.match_source,
        source_id=row.match_source_id,
        filters=filters,
        created_at=row.created_at,
        created_by_user_id=row.created_by_user_id,
        actions=ordered,
        wire=wire,
    )


async def _records(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> list[ActionSetRecord]:
    sets = (await conn.execute(sa.select(t.action_set).where(where).order_by(t.action_set.c.id))).all()
    if not sets:
        return []
    actions: dict[int, list[ActionRecord]] = {row.id: [] for row in sets}
    action_rows = await conn.execute(
        sa.select(t.action).where(t.action.c.action_set_id.in_(list(actions))).order_by(t.action.c.id)
    )
    for row in action_rows:
        actions[row.action_set_id].append(_action_record(row))
    return [_set_record(row, actions[row.id]) for row in sets]


async def list_action_sets(conn: AsyncConnection, *, project: str) -> list[ActionSetRecord]:
    """Every action set of `project`, ascending id."""
    return await _records(conn, t.action_set.c.project_id == project)


async def get_action_set(
    conn: AsyncConnection, *, project: str, action_set_id: int
) -> ActionSetRecord | None:
    """The action set `action_set_id` if it belongs to `project`."""
    found = await _records(
        conn, sa.and_(t.action_set.c.id == action_set_id, t.action_set.c.project_id == project)
    )
    return found[0] if found else None


async def get_action_set_by_id(conn: AsyncConnection, action_set_id: int) -> ActionSetRecord | None:
    """The action set `action_set_id`, whatever its project."""
    found = await _records(conn, t.action_set.c.id == action_set_id)
    return found[0] if found else None


async def load_matching_candidates(
    conn: AsyncConnection, *, source: str, source_id: int
) -> list[ActionSetRecord]:
    """The enabled action sets listening to (`source`, `source_id`), ascending id (spec Q-21).

    Each record carries its actions in run order, its filters (`match.payload`, normalised on
    write) and its `actionsSchema` snapshot (`record.wire`). Filters are not evaluated here.
    """
    return await _records(
        conn,
        sa.and_(
            t.action_set.c.match_source == source,
            t.action_set.c.match_source_id == source_id,
            t.action_set.c.enabled.is_(True),
        ),
    )


async def action_sets_of_actor(conn: AsyncConnection, actor_id: int) -> list[ActionSetRecord]:
    """Every action set (enabled or not) that runs as `actor_id`, ascending id."""
    return await _records(conn, t.action_set.c.actor_id == actor_id)


async def count_action_sets(conn: AsyncConnection, *, project: str) -> int:
    count = await conn.scalar(
        sa.select(sa.func.count()).select_from(t.action_set).where(t.action_set.c.project_id == project)
    )
    return int(count or 0)


async def name_taken(conn: AsyncConnection, *, project: str, name: str, except_id: int | None = None) -> bool:
    query = sa.select(t.action_set.c.id).where(
        t.action_set.c.project_id == project, t.action_set.c.name == name
    )
    if except_id is not None:
        query = query.where(t.action_set.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


@dataclass(frozen=True, kw_only=True)
class NewActionSet(ActionSetColumns):
    """The columns of an action set to write (create, or full replacement on update)."""

    actions: Sequence[tuple[str, int, Mapping[str, Any]]]  # (action, sortOrder, executionParams)


async def insert_action_set(
    conn: AsyncConnection, *, project: str, values: NewActionSet, created_by_user_id: int, now: datetime
) -> int:
    """Insert the set and its actions; return the new id."""
    row: dict[str, Any] = {
        "project_id": project,
        "name": values.name,
        "description": values.description,
        "actor_id": values.actor_id,
        "enabled": values.enabled,
        "match_source": values.source,
        "match_source_id": values.source_id,
        "match_payload": dict(values.filters),
        "created_at": now,
        "created_by_user_id": created_by_user_id,
    }
    new_id = int(
        (await conn.execute(t.action_set.insert().values(**row).returning(t.action_set.c.id))).scalar_one()
    )
    await _insert_actions(
        conn, action_set_id=new_id, values=values, created_by_user_id=created_by_user_id, now=now
    )
    return new_id


async def _insert_actions(
    conn: AsyncConnection, *, action_set_id: int, values: NewActionSet, created_by_user_id: int, now: datetime
) -> None:
    rows = [
        {
            "action_set_id": action_set_id,
            "action": action,
            "sort_order": sort_order,
            "execution_params": dict(params),
            "created_at": now,
            "created_by_user_id": created_by_user_id,
        }
        for action, sort_order, params in values.actions
    ]
    if rows:
        await conn.execute(t.action.insert(), rows)


async def replace_action_set(
    conn: AsyncConnection,
    *,
    action_set_id: int,
    values: NewActionSet,
    created_by_user_id: int,
    now: datetime,
) -> None:
    """Full replacement: new columns, and the actions re-created with new ids (spec Q-23)."""
    await conn.execute(
        t.action_set.update()
        .where(t.action_set.c.id == action_set_id)
        .values(
            name=values.name,
            description=values.description,
            actor_id=values.actor_id,
            enabled=values.enabled,
            match_source=values.source,
            match_source_id=values.source_id,
            match_payload=dict(values.filters),
        )
    )
    previous = list(
        (
            await conn.execute(sa.select(t.action.c.id).where(t.action.c.action_set_id == action_set_id))
        ).scalars()
    )
    await _insert_actions(
        conn, action_set_id=action_set_id, values=values, created_by_user_id=created_by_user_id, now=now
    )
    if previous:
        await conn.execute(t.action.delete().where(t.action.c.id.in_(previous)))


async def set_enabled(conn: AsyncConnection, *, action_set_id: int, enabled: bool) -> None:
    await conn.execute(
        t.action_set.update().where(t.action_set.c.id == action_set_id).values(enabled=enabled)
    )


async def delete_action_set(conn: AsyncConnection, *, action_set_id: int) -> None:
    """Delete the set (its actions cascade). Its events stay, invisible: the listing needs the set."""
    await conn.execute(t.action_set.delete().where(t.action_set.c.id == action_set_id))


def storable_text(text: str) -> bool:
    """Text both databases store and compare faithfully: valid UTF-8 (no lone surrogates), no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- runs, for the web console (ADR 0026) -----------------------------------------------------------------

_ev = t.action_set_event


async def failed_events(conn: AsyncConnection, *, limit: int) -> Sequence[Any]:
    """The newest `limit` failed events (the partial index on failed ids)."""
    query = (
        sa.select(_ev.c.action_set_id, _ev.c.signal_id, _ev.c.created_at, _ev.c.doc)
        .where(
            sa.text("state = 'failed'")
        )  # literal, as the partial index's predicate, so the planner uses it
        .order_by(_ev.c.id.desc())
        .limit(limit)
    )
    return (await conn.execute(query)).all()


async def recent_run_counts(conn: AsyncConnection, *, since: datetime, window: int) -> tuple[int, int]:
    newest = sa.select(_ev.c.state, _ev.c.created_at).order_by(_ev.c.id.desc()).limit(window).subquery()
    failed = sa.func.sum(sa.case((newest.c.state == "failed", 1), else_=0))
    row = (await conn.execute(sa.select(sa.func.count(), failed).where(newest.c.created_at > since))).one()
    return int(row[0]), int(row[1] or 0)


async def last_event(conn: AsyncConnection, action_set_id: int) -> Any:
    """The set's newest event (the unique (action_set_id, seq) index: one step), or None."""
    query = (
        sa.select(_ev.c.state, _ev.c.created_at)
        .where(_ev.c.action_set_id == action_set_id)
        .order_by(_ev.c.seq.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def recent_runs(conn: AsyncConnection, *, since: datetime, window: int) -> Sequence[Any]:
    """(state, created_at) of the newest `window` events created after `since` (a bounded scan)."""
    newest = sa.select(_ev.c.state, _ev.c.created_at).order_by(_ev.c.id.desc()).limit(window).subquery()
    return (
        await conn.execute(sa.select(newest.c.state, newest.c.created_at).where(newest.c.created_at > since))
    ).all()
