"""Environments: instance-wide; each project enables a subset of them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth.access import check_permission
from switchman.auth.permissions import ADMIN
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.db.queries import row_exists
from switchman.errors import NameExistsError, NotFoundError
from switchman.flags.names import check_name
from switchman.flags.projects import require_project
from switchman.flags.schemas import CreateEnvironmentSchema, EnvironmentProjectSchema, EnvironmentSchema
from switchman.timeutil import utcnow


def _project_count() -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(t.project_environment)
        .where(t.project_environment.c.environment_name == t.environment.c.name)
        .scalar_subquery()
    )


def _schema(row: Any) -> EnvironmentSchema:
    return EnvironmentSchema.model_validate(row._mapping)


async def list_environments(conn: AsyncConnection) -> list[EnvironmentSchema]:
    rows = await conn.execute(
        sa.select(t.environment, _project_count().label("project_count")).order_by(
            t.environment.c.sort_order, t.environment.c.name
        )
    )
    return [_schema(row) for row in rows]


async def get_environment(conn: AsyncConnection, name: str) -> EnvironmentSchema:
    row = (
        await conn.execute(
            sa.select(t.environment, _project_count().label("project_count")).where(
                t.environment.c.name == name
            )
        )
    ).first()
    if row is None:
        raise NotFoundError(f'Could not find environment "{name}".')
    return _schema(row)


async def list_project_environments(conn: AsyncConnection, project_id: str) -> list[EnvironmentProjectSchema]:
    """The environments enabled in a project, each with how many of its flags are on there."""
    await require_project(conn, project_id)
    enabled_count = (
        sa.select(sa.func.count())
        .select_from(
            t.feature_environment.join(t.feature, t.feature.c.name == t.feature_environment.c.feature_name)
        )
        .where(
            t.feature.c.project_id == project_id,
            t.feature.c.archived_at.is_(None),
            t.feature_environment.c.environment_name == t.environment.c.name,
            t.feature_environment.c.enabled.is_(True),
        )
        .scalar_subquery()
    )
    rows = await conn.execute(
        sa.select(t.environment, enabled_count.label("project_enabled_toggle_count"))
        .join(t.project_environment, t.project_environment.c.environment_name == t.environment.c.name)
        .where(t.project_environment.c.project_id == project_id)
        .order_by(t.environment.c.sort_order, t.environment.c.name)
    )
    return [EnvironmentProjectSchema.model_validate(row._mapping) for row in rows]


async def create_environment(
    conn: AsyncConnection, *, actor: Principal, payload: CreateEnvironmentSchema
) -> EnvironmentSchema:
    """Create an environment (ADMIN). It is enabled in projects created afterwards; existing projects get
    it through `POST /api/admin/projects/{projectId}/environments`, as in Unleash."""
    check_permission(actor, ADMIN)
    check_name(payload.name)
    exists = (
        await conn.execute(sa.select(t.environment.c.name).where(t.environment.c.name == payload.name))
    ).first()
    if exists is not None:
        raise NameExistsError(f'An environment with the name "{payload.name}" already exists')
    sort_order = payload.sort_order
    if sort_order is None:
        highest = (await conn.execute(sa.select(sa.func.max(t.environment.c.sort_order)))).scalar_one()
        sort_order = (highest or 0) + 1
    await conn.execute(
        t.environment.insert().values(
            name=payload.name,
            type=payload.type,
            sort_order=sort_order,
            enabled=payload.enabled,
            protected=False,
            created_at=utcnow(),
        )
    )
    created = EnvironmentSchema(
        name=payload.name,
        type=payload.type,
        sort_order=sort_order,
        enabled=payload.enabled,
        protected=False,
        project_count=0,
    )
    await audit.record_creation(
        conn, audit.ENVIRONMENT_CREATED, actor, created, environment=payload.name, visible_to_clients=False
    )
    return created


async def environment_exists(conn: AsyncConnection, name: str) -> bool:
    return await row_exists(conn, t.environment, name=name)
