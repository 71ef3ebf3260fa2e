"""A project's change budget (ADR 0024): at most K flag changes per hour by all of the project's action sets.

switchman's own resource, `GET | PUT | DELETE /api/admin/projects/{projectId}/action-budget`, beside a set's
own budget (`maxChangesPerHour` in its policy): an action must fit both. The embedded worker counts the
project's recorded changes of the last hour under a transaction-scoped lock of the project's budget, taken
before the batch's set locks in project order, so that workers and replicas spend one budget one after
another (`policy_store.lock_project_budgets`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.schemas import ProjectActionBudgetSchema
from switchman.action_sets.service import require_project
from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.errors import VALIDATION_MESSAGE, BadDataError, NotFoundError
from switchman.timeutil import iso, utcnow

_b = t.project_action_budget

BUDGET_UPDATED = "project-action-budget-updated"
BUDGET_DELETED = "project-action-budget-deleted"


def _wire(row: Any) -> dict[str, Any]:
    return {
        "project": row.project_id,
        "maxChangesPerHour": int(row.max_changes_per_hour),
        "updatedAt": iso(row.updated_at),
    }


async def _row(conn: AsyncConnection, project: str) -> Any:
    return (await conn.execute(sa.select(_b).where(_b.c.project_id == project))).first()


async def get_budget(conn: AsyncConnection, *, project: str) -> dict[str, Any]:
    await require_project(conn, project)
    row = await _row(conn, project)
    if row is None:
        raise NotFoundError(f"Project {project} has no action change budget.")
    return _wire(row)


async def put_budget(
    conn: AsyncConnection,
    *,
    project: str,
    body: ProjectActionBudgetSchema,
    principal: Principal,
    embedded: bool,
) -> dict[str, Any]:
    """Set the budget (audited); it applies from the next batch, counting the changes already made."""
    await require_project(conn, project, lock=True)
    if not embedded:
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": "/maxChangesPerHour", "message": "needs switchman's own flag store: a remote "
                      "Unleash does not tell which flags a run changed"}],
        )  # fmt: skip
    previous = await _row(conn, project)
    values = {"max_changes_per_hour": body.max_changes_per_hour, "updated_at": utcnow()}
    insert = postgresql.insert(_b) if conn.dialect.name == "postgresql" else sqlite.insert(_b)
    await conn.execute(
        insert.values(project_id=project, **values).on_conflict_do_update(
            index_elements=["project_id"], set_=values
        )
    )
    after = _wire(await _row(conn, project))
    await record_event(conn, type=BUDGET_UPDATED, actor=principal, visible_to_clients=False, project=project,
                       data=after, pre_data=_wire(previous) if previous is not None else None)  # fmt: skip
    return after


async def delete_budget(conn: AsyncConnection, *, project: str, principal: Principal) -> None:
    await require_project(conn, project, lock=True)
    previous = await _row(conn, project)
    if previous is None:
        raise NotFoundError(f"Project {project} has no action change budget.")
    await conn.execute(sa.delete(_b).where(_b.c.project_id == project))
    await record_event(conn, type=BUDGET_DELETED, actor=principal, visible_to_clients=False, project=project,
                       pre_data=_wire(previous))  # fmt: skip
