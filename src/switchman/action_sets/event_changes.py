"""The flag states a run changed, and undone events (ADR 0024).

The embedded store's worker notes, action by action, which flags each run's toggles changed
(`ToggleReport.changed`), and writes one row per (event, flag, environment) in the run's transaction: the
state before the run and the one it left (a flag turned off and on again by one run left nothing to put
back, and gets no row). A remote Unleash cannot tell a change from a no-op, so its runs record none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.engine.actions import ToggleCommand
from switchman.flags.backend import ToggleReport

_c = t.action_set_event_change
_u = t.action_set_event_undo


@dataclass
class FlagChange:
    feature_name: str
    environment: str
    enabled_before: bool
    enabled_after: bool
    changed_at: datetime  # when the run last changed it (after its audit event was planned)


class RunChanges:
    """The flag changes of a batch's runs, per event, as their actions report them."""

    def __init__(self) -> None:
        self._by_event: dict[int, dict[tuple[str, str], FlagChange]] = {}
        self._run_of: dict[int, tuple[int, str]] = {}  # event id → (action set id, project)

    def note(
        self,
        event_id: int,
        report: ToggleReport,
        command: ToggleCommand,
        *,
        at: datetime,
        action_set_id: int,
        project: str,
    ) -> None:
        for name in report.changed or ():
            self._run_of[event_id] = (action_set_id, project)
            changes = self._by_event.setdefault(event_id, {})
            key = (name, command.environment)
            found = changes.get(key)
            if found is None:
                changes[key] = FlagChange(name, command.environment, not command.enabled, command.enabled, at)
            else:
                found.enabled_after, found.changed_at = command.enabled, at

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "event_id": event_id,
                "feature_name": change.feature_name,
                "environment": change.environment,
                "enabled_before": change.enabled_before,
                "enabled_after": change.enabled_after,
                "changed_at": change.changed_at,
                "action_set_id": self._run_of[event_id][0],
                "project": self._run_of[event_id][1],
            }
            for event_id, changes in self._by_event.items()
            for change in changes.values()
            if change.enabled_before != change.enabled_after
        ]


async def record_changes(conn: AsyncConnection, changes: RunChanges) -> None:
    rows = changes.rows()
    if rows:
        await conn.execute(_c.insert(), rows)


async def changes_since(
    conn: AsyncConnection, *, since: datetime, action_set_id: int | None = None, project: str | None = None
) -> int:
    """How many flag states the runs of set `action_set_id` (or of every set of `project`) changed after
    `since`: a change budget's use (an index range scan either way)."""
    query = sa.select(sa.func.count()).select_from(_c).where(_c.c.changed_at > since)
    if action_set_id is not None:
        query = query.where(_c.c.action_set_id == action_set_id)
    if project is not None:
        query = query.where(_c.c.project == project)
    return int((await conn.execute(query)).scalar_one())


async def changes_of(conn: AsyncConnection, event_id: int) -> list[FlagChange]:
    """The changes event `event_id`'s run made, by flag and environment."""
    rows = await conn.execute(
        sa.select(_c).where(_c.c.event_id == event_id).order_by(_c.c.feature_name, _c.c.environment)
    )
    return [
        FlagChange(row.feature_name, row.environment, row.enabled_before, row.enabled_after, row.changed_at)
        for row in rows
    ]


async def undo_of(conn: AsyncConnection, event_id: int) -> Any:
    """The recorded undo of the event (`undone_by`, `result`, `created_at`), or None."""
    return (await conn.execute(sa.select(_u).where(_u.c.event_id == event_id))).first()


async def record_undo(
    conn: AsyncConnection, event_id: int, *, by: str, result: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        _u.insert().values(
            event_id=event_id, undone_by=by, result=orjson.dumps(result).decode(), created_at=now
        )
    )
