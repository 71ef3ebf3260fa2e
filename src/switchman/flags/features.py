"""Feature flags: create, list, read and archive (Unleash's semantics). Turning them on and off is
`flags/toggles.py`'s."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth.access import check_permission
from switchman.auth.permissions import (
    CREATE_FEATURE,
    DELETE_FEATURE,
)
from switchman.auth.principal import ADMIN_TOKEN_USER_ID, SYSTEM_USER_ID, Principal
from switchman.db import tables as t
from switchman.db.queries import row_exists
from switchman.errors import VALIDATION_MESSAGE, BadDataError, NameExistsError, NotFoundError
from switchman.flags.names import check_name
from switchman.flags.projects import project_environments, require_project
from switchman.flags.schemas import (
    CreatedBySchema,
    CreateFeatureSchema,
    FeatureDetailSchema,
    FeatureEnvironmentDetailSchema,
    FeatureEnvironmentSchema,
    FeatureListEnvironmentSchema,
    FeatureListItemSchema,
    FeatureSchema,
    ProjectEnvironmentRefSchema,
    ProjectOverviewSchema,
    StrategySchema,
    TagSchema,
)
from switchman.flags.tags import tags_of_flag
from switchman.service_accounts import service as service_accounts
from switchman.timeutil import iso, utcnow

FEATURE_TYPES = ("release", "experiment", "operational", "kill-switch", "permission")
DEFAULT_FEATURE_TYPE = "release"


# --- lookups -----------------------------------------------------------------------------------------


def _no_feature(feature_name: str, project: str) -> NotFoundError:
    return NotFoundError(f'There\'s no feature named "{feature_name}" in project "{project}".')


async def require_feature(conn: AsyncConnection, *, project: str, feature_name: str) -> Any:
    """The non-archived flag `feature_name` of `project`, or 404 with Unleash's messages."""
    row = (await conn.execute(sa.select(t.feature).where(t.feature.c.name == feature_name))).first()
    check_feature(row, project=project, feature_name=feature_name)
    return row


def check_feature(row: Any, *, project: str, feature_name: str) -> None:
    """404 unless `row` (with `project_id`, `archived_at`) is a live flag of `project`."""
    if row is None:
        raise _no_feature(feature_name, project)
    if row.project_id != project:
        raise NotFoundError(
            f'There\'s no feature named "{feature_name}" in project "{project}", '
            f'but there\'s a feature with that name in project "{row.project_id}"'
        )
    if row.archived_at is not None:
        raise NotFoundError(f'The feature "{feature_name}" in project "{project}" is archived.')


async def _require_project_environment(
    conn: AsyncConnection, *, project: str, environment: str, feature_name: str
) -> None:
    if not await row_exists(conn, t.project_environment, project_id=project, environment_name=environment):
        raise NotFoundError(f"Could not find environment {environment} for feature: {feature_name}")


def _feature_schema(row: Any) -> FeatureSchema:
    return FeatureSchema(
        name=row.name,
        description=row.description,
        type=row.type,
        project=row.project_id,
        stale=row.stale,
        impression_data=row.impression_data,
        archived=row.archived_at is not None,
        created_at=iso(row.created_at),
        archived_at=iso(row.archived_at) if row.archived_at else None,
    )


def _strategy_schema(row: Any, project: str) -> StrategySchema:
    return StrategySchema(
        id=row.id,
        name=row.strategy_name,
        disabled=row.disabled,
        feature_name=row.feature_name,
        project_id=project,
        environment=row.environment_name,
        parameters=row.parameters,
        constraints=row.constraints,
        sort_order=row.sort_order,
    )


# --- create / read -----------------------------------------------------------------------------------


async def create_feature(
    conn: AsyncConnection, *, actor: Principal, project: str, payload: CreateFeatureSchema
) -> FeatureSchema:
    """Create a flag (CREATE_FEATURE), disabled in every environment of its project.

    400 for a name that is not URL friendly or an unknown type; 404 for an unknown project; 409 when the
    name is taken in any project (archived flags keep their name, as in Unleash).
    """
    check_permission(actor, CREATE_FEATURE)
    check_name(payload.name)
    feature_type = payload.type if payload.type is not None else DEFAULT_FEATURE_TYPE
    if feature_type not in FEATURE_TYPES:
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": "/type", "message": f'"type" must be one of {", ".join(FEATURE_TYPES)}'}],
        )
    await require_project(conn, project)
    taken = (await conn.execute(sa.select(t.feature.c.name).where(t.feature.c.name == payload.name))).first()
    if taken is not None:
        raise NameExistsError("A flag with that name already exists")
    now = utcnow()
    row = (
        await conn.execute(
            t.feature.insert()
            .values(
                name=payload.name,
                project_id=project,
                description=payload.description,
                type=feature_type,
                stale=False,
                impression_data=bool(payload.impression_data),
                created_at=now,
                created_by_user_id=actor.user_id,
            )
            .returning(*t.feature.c)
        )
    ).one()
    environments = await project_environments(conn, project)
    if environments:
        await conn.execute(
            t.feature_environment.insert(),
            [
                {"feature_name": payload.name, "environment_name": env, "enabled": False}
                for env in environments
            ],
        )
    created = _feature_schema(row)
    await audit.record_creation(
        conn,
        audit.FEATURE_CREATED,
        actor,
        created,
        feature_name=payload.name,
        project=project,
        tags=[],
        visible_to_clients=True,
    )
    return created


async def list_features(
    conn: AsyncConnection, *, project: str, tags: Sequence[tuple[str, str]] = ()
) -> list[FeatureListItemSchema]:
    """Non-archived flags of a project (404 unknown project); with `tags`, only flags carrying any of them."""
    await require_project(conn, project)
    query = sa.select(t.feature).where(t.feature.c.project_id == project, t.feature.c.archived_at.is_(None))
    if tags:
        query = query.where(
            sa.exists().where(
                t.feature_tag.c.feature_name == t.feature.c.name,
                sa.or_(
                    *(
                        sa.and_(t.feature_tag.c.tag_type == tag_type, t.feature_tag.c.tag_value == tag_value)
                        for tag_type, tag_value in tags
                    )
                ),
            )
        )
    rows = (await conn.execute(query.order_by(t.feature.c.created_at, t.feature.c.name))).all()
    if not rows:
        return []
    in_project = sa.select(t.feature.c.name).where(
        t.feature.c.project_id == project, t.feature.c.archived_at.is_(None)
    )
    env_rows = await conn.execute(
        sa.select(
            t.feature_environment.c.feature_name,
            t.feature_environment.c.enabled,
            t.environment.c.name,
            t.environment.c.type,
            t.environment.c.sort_order,
        )
        .join(t.environment, t.environment.c.name == t.feature_environment.c.environment_name)
        .join(
            t.project_environment,
            sa.and_(
                t.project_environment.c.environment_name == t.environment.c.name,
                t.project_environment.c.project_id == project,
            ),
        )
        .where(t.feature_environment.c.feature_name.in_(in_project))
        .order_by(t.environment.c.sort_order, t.environment.c.name)
    )
    strategy_rows = await conn.execute(
        sa.select(
            t.feature_strategy.c.feature_name,
            t.feature_strategy.c.environment_name,
            sa.func.count().label("total"),
            sa.func.sum(sa.case((t.feature_strategy.c.disabled.is_(False), 1), else_=0)).label("active"),
        )
        .where(t.feature_strategy.c.feature_name.in_(in_project))
        .group_by(t.feature_strategy.c.feature_name, t.feature_strategy.c.environment_name)
    )
    strategy_counts = {(r.feature_name, r.environment_name): (r.total, r.active or 0) for r in strategy_rows}
    envs: dict[str, list[FeatureListEnvironmentSchema]] = defaultdict(list)
    for r in env_rows:
        total, active = strategy_counts.get((r.feature_name, r.name), (0, 0))
        envs[r.feature_name].append(
            FeatureListEnvironmentSchema(
                name=r.name,
                enabled=r.enabled,
                type=r.type,
                sort_order=r.sort_order,
                has_strategies=total > 0,
                has_enabled_strategies=active > 0,
            )
        )
    tag_rows = await conn.execute(
        sa.select(t.feature_tag.c.feature_name, t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
        .where(t.feature_tag.c.feature_name.in_(in_project))
        .order_by(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
    )
    tags_of: dict[str, list[TagSchema]] = defaultdict(list)
    for tag_row in tag_rows:
        tags_of[tag_row.feature_name].append(TagSchema(type=tag_row.tag_type, value=tag_row.tag_value))
    return [
        FeatureListItemSchema(
            **_feature_schema(row).model_dump(),
            environments=envs.get(row.name, []),
            tags=tags_of.get(row.name, []),
        )
        for row in rows
    ]


async def get_project_overview(conn: AsyncConnection, project_id: str) -> ProjectOverviewSchema:
    """`GET /api/admin/projects/{projectId}`: the project with its environments and flags."""
    row = await require_project(conn, project_id)
    features = await list_features(conn, project=project_id)
    return ProjectOverviewSchema(
        id=row.id,
        name=row.name,
        description=row.description,
        mode=row.mode,
        feature_count=len(features),
        created_at=iso(row.created_at),
        environments=[
            ProjectEnvironmentRefSchema(environment=name)
            for name in await project_environments(conn, project_id)
        ],
        features=features,
    )


async def _created_by(conn: AsyncConnection, user_id: int | None) -> CreatedBySchema | None:
    if user_id is None:
        return None
    if user_id == ADMIN_TOKEN_USER_ID:
        return CreatedBySchema(id=user_id, name="Unleash Admin Token User")
    if user_id == SYSTEM_USER_ID:
        return CreatedBySchema(id=user_id, name="Unleash System")
    name = await service_accounts.account_name(conn, user_id)
    return CreatedBySchema(id=user_id, name=name if name is not None else "Deleted service account")


async def _strategies(
    conn: AsyncConnection, *, project: str, feature_name: str, environment: str | None = None
) -> list[StrategySchema]:
    query = sa.select(t.feature_strategy).where(t.feature_strategy.c.feature_name == feature_name)
    if environment is not None:
        query = query.where(t.feature_strategy.c.environment_name == environment)
    rows = await conn.execute(
        query.order_by(t.feature_strategy.c.sort_order, t.feature_strategy.c.created_at)
    )
    return [_strategy_schema(row, project) for row in rows]


async def get_feature(conn: AsyncConnection, *, project: str, feature_name: str) -> FeatureDetailSchema:
    """One non-archived flag with its environments (state and strategies), as Unleash's `getFeature`."""
    row = await require_feature(conn, project=project, feature_name=feature_name)
    strategies = await _strategies(conn, project=project, feature_name=feature_name)
    by_env: dict[str, list[StrategySchema]] = defaultdict(list)
    for strategy in strategies:
        by_env[strategy.environment].append(strategy)
    env_rows = await conn.execute(
        sa.select(t.environment, sa.func.coalesce(t.feature_environment.c.enabled, sa.false()).label("on"))
        .join(t.project_environment, t.project_environment.c.environment_name == t.environment.c.name)
        .outerjoin(
            t.feature_environment,
            sa.and_(
                t.feature_environment.c.environment_name == t.environment.c.name,
                t.feature_environment.c.feature_name == feature_name,
            ),
        )
        .where(t.project_environment.c.project_id == project)
        .order_by(t.environment.c.sort_order, t.environment.c.name)
    )
    return FeatureDetailSchema(
        **_feature_schema(row).model_dump(),
        environments=[
            FeatureEnvironmentDetailSchema(
                name=env.name,
                enabled=bool(env.on),
                type=env.type,
                sort_order=env.sort_order,
                strategies=by_env.get(env.name, []),
            )
            for env in env_rows
        ],
        created_by=await _created_by(conn, row.created_by_user_id),
    )


async def get_feature_environment(
    conn: AsyncConnection, *, project: str, feature_name: str, environment: str
) -> FeatureEnvironmentSchema:
    await require_feature(conn, project=project, feature_name=feature_name)
    await _require_project_environment(
        conn, project=project, environment=environment, feature_name=feature_name
    )
    enabled = (
        await conn.execute(
            sa.select(t.feature_environment.c.enabled).where(
                t.feature_environment.c.feature_name == feature_name,
                t.feature_environment.c.environment_name == environment,
            )
        )
    ).scalar_one_or_none()
    return FeatureEnvironmentSchema(
        name=feature_name,
        environment=environment,
        enabled=bool(enabled),
        strategies=await _strategies(
            conn, project=project, feature_name=feature_name, environment=environment
        ),
    )


# --- archive -----------------------------------------------------------------------------------------


async def archive_feature(
    conn: AsyncConnection, *, actor: Principal, project: str, feature_name: str
) -> None:
    """Archive a flag (DELETE_FEATURE), as Unleash's DELETE does. Its name stays taken; it leaves lists and
    by-tag selections and can no longer be turned on or off."""
    check_permission(actor, DELETE_FEATURE)
    await require_feature(conn, project=project, feature_name=feature_name)
    await conn.execute(
        t.feature.update().where(t.feature.c.name == feature_name).values(archived_at=utcnow())
    )
    await audit.record_event(
        conn,
        type=audit.FEATURE_ARCHIVED,
        actor=actor,
        feature_name=feature_name,
        project=project,
        tags=await tags_of_flag(conn, feature_name),
        visible_to_clients=True,
    )


async def archived_flags(conn: AsyncConnection, *, project: str, names: Collection[str]) -> dict[str, bool]:
    """For each of `names` that is a flag of `project`: whether it is archived (absent names: no flag)."""
    if not names:
        return {}
    rows = await conn.execute(
        sa.select(t.feature.c.name, t.feature.c.archived_at).where(
            t.feature.c.project_id == project, t.feature.c.name.in_(sorted(set(names)))
        )
    )
    return {row.name: row.archived_at is not None for row in rows}


async def live_flag_names(conn: AsyncConnection, project: str) -> list[str]:
    """Names of the project's non-archived flags, sorted."""
    rows = await conn.execute(
        sa.select(t.feature.c.name)
        .where(t.feature.c.project_id == project, t.feature.c.archived_at.is_(None))
        .order_by(t.feature.c.name)
    )
    return list(rows.scalars())
