"""Action set policies (ADR 0023): the policy of a set, and the state its decisions leave, per set or per
set and alert identity.

Decisions are taken under the action set's row lock (`lock_sets`, ascending ids, before any other lock of
the batch), so that workers and replicas decide one after another from the same state: a cooldown
lets one run through however many workers there are.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.engine.policy import Policy, PolicyState

_p = t.action_set_policy
_s = t.action_set_policy_state


def policy_of_row(row: Any) -> Policy:
    return Policy(
        shadow=bool(row.shadow),
        cooldown_seconds=row.cooldown_seconds,
        window_count=row.window_count,
        window_seconds=row.window_seconds,
        per_alert=bool(row.per_alert),
        alert_key=row.alert_key,
        restore_on_resolve=bool(row.restore_on_resolve),
        max_changes_per_hour=row.max_changes_per_hour,
        revert_after_seconds=row.revert_after_seconds,
    )


async def policies_of(conn: AsyncConnection, action_set_ids: Iterable[int]) -> dict[int, Policy]:
    ids = sorted(set(action_set_ids))
    if not ids:
        return {}
    rows = await conn.execute(sa.select(_p).where(_p.c.action_set_id.in_(ids)))
    return {int(row.action_set_id): policy_of_row(row) for row in rows}


async def get_policy_row(conn: AsyncConnection, action_set_id: int) -> Any:
    return (await conn.execute(sa.select(_p).where(_p.c.action_set_id == action_set_id))).first()


async def put_policy(conn: AsyncConnection, action_set_id: int, policy: Policy, *, now: datetime) -> None:
    values = {
        "shadow": policy.shadow,
        "cooldown_seconds": policy.cooldown_seconds,
        "window_count": policy.window_count,
        "window_seconds": policy.window_seconds,
        "per_alert": policy.per_alert,
        "alert_key": policy.alert_key,
        "restore_on_resolve": policy.restore_on_resolve,
        "max_changes_per_hour": policy.max_changes_per_hour,
        "revert_after_seconds": policy.revert_after_seconds,
        "updated_at": now,
    }
    insert = postgresql.insert(_p) if conn.dialect.name == "postgresql" else sqlite.insert(_p)
    await conn.execute(
        insert.values(action_set_id=action_set_id, **values).on_conflict_do_update(
            index_elements=["action_set_id"], set_=values
        )
    )


async def delete_policy(conn: AsyncConnection, action_set_id: int) -> bool:
    deleted = await conn.execute(sa.delete(_p).where(_p.c.action_set_id == action_set_id))
    await clear_states(conn, action_set_id)
    return bool(deleted.rowcount)


async def clear_states(conn: AsyncConnection, action_set_id: int) -> None:
    await conn.execute(sa.delete(_s).where(_s.c.action_set_id == action_set_id))


async def restart_counting(conn: AsyncConnection, action_set_id: int, policy: Policy) -> None:
    """A changed policy counts afresh (no cooldown, no window so far), but runs not yet put back stay open
    when the new policy still puts them back — editing a cooldown must not strand a flag a time box or a
    resolution was going to restore."""
    await conn.execute(
        sa.update(_s)
        .where(_s.c.action_set_id == action_set_id)
        .values(
            last_run_at=None,
            matches="[]",
            open_event_id=_s.c.open_event_id if policy.keeps_open_run else None,
            revert_due_at=_s.c.revert_due_at if policy.revert_after_seconds is not None else None,
        )
    )
    await conn.execute(sa.delete(_s).where(_s.c.action_set_id == action_set_id, _s.c.open_event_id.is_(None)))


async def due_time_boxes(conn: AsyncConnection, *, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(set, alert) pairs whose time box ended by `now`, earliest first (an index range scan)."""
    rows = await conn.execute(
        sa.select(_s.c.action_set_id, _s.c.alert_id)
        .where(_s.c.revert_due_at <= now, _s.c.open_event_id.is_not(None))
        .order_by(_s.c.revert_due_at)
        .limit(limit)
    )
    return [(int(row.action_set_id), str(row.alert_id)) for row in rows]


async def lock_sets(conn: AsyncConnection, action_set_ids: Iterable[int]) -> None:
    """Lock the sets' rows until the transaction ends (PostgreSQL; SQLite's write lock already
    serialises), in ascending id order so that two batches never wait for each other in a cycle."""
    ids = sorted(set(action_set_ids))
    if ids and conn.dialect.name == "postgresql":
        await conn.execute(
            sa.select(t.action_set.c.id)
            .where(t.action_set.c.id.in_(ids))
            .order_by(t.action_set.c.id)
            .with_for_update()
        )


async def load_state(conn: AsyncConnection, action_set_id: int, alert_id: str) -> PolicyState:
    row = (
        await conn.execute(
            sa.select(
                _s.c.last_run_at,
                _s.c.matches,
                _s.c.open_event_id,
                _s.c.revert_due_at,
                _s.c.renewed_by_signal_id,
            ).where(_s.c.action_set_id == action_set_id, _s.c.alert_id == alert_id)
        )
    ).first()
    if row is None:
        return PolicyState()
    return PolicyState(
        last_run_at=row.last_run_at,
        matches=tuple(datetime.fromisoformat(text) for text in orjson.loads(row.matches)),
        open_event=row.open_event_id,
        revert_due=row.revert_due_at,
        renewed_by=row.renewed_by_signal_id,
    )


async def save_states(
    conn: AsyncConnection, states: Mapping[tuple[int, str], PolicyState], *, now: datetime
) -> None:
    if not states:
        return
    insert = postgresql.insert(_s) if conn.dialect.name == "postgresql" else sqlite.insert(_s)
    rows = [
        {
            "action_set_id": action_set_id,
            "alert_id": alert_id,
            "last_run_at": state.last_run_at,
            "matches": orjson.dumps([at.astimezone(UTC).isoformat() for at in state.matches]).decode(),
            "open_event_id": state.open_event,
            "revert_due_at": state.revert_due,
            "renewed_by_signal_id": state.renewed_by,
            "updated_at": now,
        }
        for (action_set_id, alert_id), state in sorted(states.items())
    ]
    statement = insert.on_conflict_do_update(
        index_elements=["action_set_id", "alert_id"],
        set_={
            "last_run_at": insert.excluded.last_run_at,
            "matches": insert.excluded.matches,
            "open_event_id": insert.excluded.open_event_id,
            "revert_due_at": insert.excluded.revert_due_at,
            "renewed_by_signal_id": insert.excluded.renewed_by_signal_id,
            "updated_at": insert.excluded.updated_at,
        },
    )
    await conn.execute(statement, rows)


# --- project change budgets (ADR 0024) ---------------------------------------------------------------------

_pb = t.project_action_budget
# The first key of the budgets' advisory locks (the second is the project's CRC-32): "swbudget".
_LOCK_NAMESPACE = 0x7377_6264


async def project_budgets_of(conn: AsyncConnection, projects: Iterable[str]) -> dict[str, int]:
    """The budgets of those of `projects` that have one."""
    names = sorted(set(projects))
    if not names:
        return {}
    rows = await conn.execute(
        sa.select(_pb.c.project_id, _pb.c.max_changes_per_hour).where(_pb.c.project_id.in_(names))
    )
    return {str(row.project_id): int(row.max_changes_per_hour) for row in rows}


async def lock_project_budgets(conn: AsyncConnection, projects: Iterable[str]) -> None:
    """Hold the projects' budgets until the transaction ends (PostgreSQL; SQLite's write lock already
    serialises), in name order and before any set lock of the batch, so that batches never wait for each
    other in a cycle."""
    if conn.dialect.name != "postgresql":
        return
    for project in sorted(set(projects)):
        key = zlib.crc32(project.encode()) - 2**31  # a signed 32-bit int
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_NAMESPACE, key)))
