"""Projects: listing, creating, the overview, and enabling an environment in a project."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth.access import check_permission
from switchman.auth.permissions import CREATE_PROJECT, UPDATE_PROJECT
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.db.queries import row_exists
from switchman.errors import VALIDATION_MESSAGE, BadDataError, NameExistsError, NotFoundError
from switchman.flags.names import check_name
from switchman.flags.schemas import (
    CreateProjectSchema,
    ProjectCreatedSchema,
    ProjectSchema,
)
from switchman.timeutil import iso, utcnow


def project_not_found(project_id: str) -> NotFoundError:
    return NotFoundError(f'Could not find project with id "{project_id}".')


async def require_project(conn: AsyncConnection, project_id: str) -> Any:
    """The project row, or 404 NotFoundError."""
    row = (await conn.execute(sa.select(t.project).where(t.project.c.id == project_id))).first()
    if row is None:
        raise project_not_found(project_id)
    return row


async def project_environments(conn: AsyncConnection, project_id: str) -> list[str]:
    """Names of the environments enabled in a project, in the environments' display order."""
    rows = await conn.execute(
        sa.select(t.environment.c.name)
        .join(t.project_environment, t.project_environment.c.environment_name == t.environment.c.name)
        .where(t.project_environment.c.project_id == project_id)
        .order_by(t.environment.c.sort_order, t.environment.c.name)
    )
    return list(rows.scalars())


def _active_feature_count() -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(t.feature)
        .where(t.feature.c.project_id == t.project.c.id, t.feature.c.archived_at.is_(None))
        .scalar_subquery()
    )


def _project_schema(row: Any, feature_count: int) -> ProjectSchema:
    return ProjectSchema(
        id=row.id,
        name=row.name,
        description=row.description,
        feature_count=feature_count,
        mode=row.mode,
        created_at=iso(row.created_at),
    )


async def list_projects(conn: AsyncConnection) -> list[ProjectSchema]:
    rows = await conn.execute(
        sa.select(t.project, _active_feature_count().label("feature_count")).order_by(
            t.project.c.created_at, t.project.c.id
        )
    )
    return [_project_schema(row, row.feature_count) for row in rows]


async def create_project(
    conn: AsyncConnection, *, actor: Principal, payload: CreateProjectSchema
) -> ProjectCreatedSchema:
    """Create a project (CREATE_PROJECT) with the given environments, or every enabled environment."""
    check_permission(actor, CREATE_PROJECT)
    check_name(payload.id, field="id")
    if not payload.name.strip():
        raise BadDataError(
            VALIDATION_MESSAGE, details=[{"path": "/name", "message": '"name" must not be blank'}]
        )
    exists = (await conn.execute(sa.select(t.project.c.id).where(t.project.c.id == payload.id))).first()
    if exists is not None:
        raise NameExistsError(f'A project with id "{payload.id}" already exists')
    if payload.environments is None:
        environments = list(
            (
                await conn.execute(
                    sa.select(t.environment.c.name)
                    .where(t.environment.c.enabled.is_(True))
                    .order_by(t.environment.c.sort_order, t.environment.c.name)
                )
            ).scalars()
        )
    else:
        environments = list(dict.fromkeys(payload.environments))
        known = set(
            (
                await conn.execute(
                    sa.select(t.environment.c.name).where(t.environment.c.name.in_(environments))
                )
            ).scalars()
        )
        missing = [name for name in environments if name not in known]
        if missing:
            raise BadDataError(
                VALIDATION_MESSAGE,
                details=[
                    {"path": "/environments", "message": f'environment "{name}" does not exist'}
                    for name in missing
                ],
            )
    now = utcnow()
    columns = payload.model_dump(exclude={"environments"})  # the other fields are the project's columns
    await conn.execute(t.project.insert().values(**columns, created_at=now))
    if environments:
        await conn.execute(
            t.project_environment.insert(),
            [{"project_id": payload.id, "environment_name": name} for name in environments],
        )
    created = ProjectCreatedSchema(
        id=payload.id,
        name=payload.name,
        description=payload.description,
        mode=payload.mode,
        environments=environments,
        created_at=iso(now),
    )
    await audit.record_creation(
        conn, audit.PROJECT_CREATED, actor, created, project=payload.id, visible_to_clients=False
    )
    return created


async def add_environment_to_project(
    conn: AsyncConnection, *, actor: Principal, project_id: str, environment: str
) -> None:
    """Enable an existing environment in a project (UPDATE_PROJECT); its flags get it, disabled.

    409 NameExistsError when the environment is already enabled in the project (as Unleash answers).
    """
    check_permission(actor, UPDATE_PROJECT)
    await require_project(conn, project_id)
    if not await row_exists(conn, t.environment, name=environment):
        raise NotFoundError(f'Could not find environment "{environment}".')
    if await row_exists(conn, t.project_environment, project_id=project_id, environment_name=environment):
        raise NameExistsError(f'Environment "{environment}" is already enabled in project "{project_id}"')
    await conn.execute(
        t.project_environment.insert().values(project_id=project_id, environment_name=environment)
    )
    # Every flag of the project gets a (disabled) state in the new environment.
    await conn.execute(
        t.feature_environment.insert().from_select(
            ["feature_name", "environment_name", "enabled"],
            sa.select(t.feature.c.name, sa.literal(environment), sa.false()).where(
                t.feature.c.project_id == project_id,
                ~sa.exists().where(
                    t.feature_environment.c.feature_name == t.feature.c.name,
                    t.feature_environment.c.environment_name == environment,
                ),
            ),
        )
    )
    await audit.record_event(
        conn,
        type=audit.PROJECT_ENVIRONMENT_ADDED,
        actor=actor,
        data={"name": environment},
        project=project_id,
        environment=environment,
        visible_to_clients=True,
    )


async def lock_for_dependents(conn: AsyncConnection, project_id: str) -> None:
    """PostgreSQL: lock the project row (`FOR NO KEY UPDATE`-compatible key share) so that writers of
    objects that belong to the project queue, without blocking foreign-key checks of other features."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            sa.select(t.project.c.id).where(t.project.c.id == project_id).with_for_update(key_share=True)
        )


async def existing_projects(conn: AsyncConnection, project_ids: list[str]) -> set[str]:
    """Which of `project_ids` exist."""
    if not project_ids:
        return set()
    return set(
        (await conn.execute(sa.select(t.project.c.id).where(t.project.c.id.in_(project_ids)))).scalars()
    )
