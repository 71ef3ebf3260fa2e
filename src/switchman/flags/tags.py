"""Tag types, tags and flag tags (Unleash's `/api/admin/tag-types`, `/tags`, `/features/{name}/tags`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth.access import check_permission
from switchman.auth.permissions import CREATE_TAG_TYPE, UPDATE_FEATURE
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.db.queries import row_exists
from switchman.errors import VALIDATION_MESSAGE, BadDataError, NameExistsError, NotFoundError
from switchman.flags.names import check_name
from switchman.flags.schemas import CreateTagTypeSchema, TagSchema, TagTypeSchema, TagWithColorSchema
from switchman.timeutil import utcnow

# Unleash's `tagSchema`: a value of 2 to 50 characters (trimmed); tag type names 2 to 50, URL friendly.
TAG_VALUE_MIN, TAG_VALUE_MAX = 2, 50
TAG_TYPE_MIN, TAG_TYPE_MAX = 2, 50


async def _audit(conn: AsyncConnection, type: str, actor: Principal, **fields: Any) -> None:
    """Record a tag change (tags are not part of what SDKs are served) in the audit log; none changes what SDK clients are served."""
    await audit.record_event(conn, type=type, actor=actor, visible_to_clients=False, **fields)


def parse_tag(raw: str) -> tuple[str, str]:
    """`type:value` → (type, value); the value may itself contain `:`. 400 when malformed."""
    tag_type, sep, value = raw.partition(":")
    if not sep or not tag_type or not value:
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": "tag", "message": f'tag must look like "type:value", got "{raw}"'}],
        )
    return tag_type, value


def _tag_type_schema(row: Any) -> TagTypeSchema:
    return TagTypeSchema(name=row.name, description=row.description, icon=row.icon, color=row.color)


async def list_tag_types(conn: AsyncConnection) -> list[TagTypeSchema]:
    rows = await conn.execute(sa.select(t.tag_type).order_by(t.tag_type.c.created_at, t.tag_type.c.name))
    return [_tag_type_schema(row) for row in rows]


async def get_tag_type(conn: AsyncConnection, name: str) -> TagTypeSchema:
    row = (await conn.execute(sa.select(t.tag_type).where(t.tag_type.c.name == name))).first()
    if row is None:
        raise NotFoundError(f'Could not find tag type "{name}".')
    return _tag_type_schema(row)


async def create_tag_type(
    conn: AsyncConnection, *, actor: Principal, payload: CreateTagTypeSchema
) -> TagTypeSchema:
    """Create a tag type (CREATE_TAG_TYPE); 409 when the name exists."""
    check_permission(actor, CREATE_TAG_TYPE)
    check_name(payload.name, min_length=TAG_TYPE_MIN, max_length=TAG_TYPE_MAX)
    if await row_exists(conn, t.tag_type, name=payload.name):
        raise NameExistsError(f'There already exists a tag-type with the name "{payload.name}"')
    await conn.execute(
        t.tag_type.insert().values(**payload.model_dump(), created_at=utcnow())
    )  # fields = columns
    created = TagTypeSchema(
        name=payload.name, description=payload.description, icon=payload.icon, color=payload.color
    )
    await _audit(conn, audit.TAG_TYPE_CREATED, actor, data=created.model_dump(by_alias=True))
    return created


async def list_tags(conn: AsyncConnection, *, tag_type: str | None = None) -> list[TagSchema]:
    query = sa.select(t.tag.c.type, t.tag.c.value)
    if tag_type is not None:
        await get_tag_type(conn, tag_type)
        query = query.where(t.tag.c.type == tag_type)
    rows = await conn.execute(query.order_by(t.tag.c.type, t.tag.c.value))
    return [TagSchema(type=row.type, value=row.value) for row in rows]


async def _require_feature_row(conn: AsyncConnection, feature_name: str) -> Any:
    row = (
        await conn.execute(
            sa.select(t.feature.c.name, t.feature.c.project_id).where(t.feature.c.name == feature_name)
        )
    ).first()
    if row is None:
        raise NotFoundError(f'Could not find feature "{feature_name}".')
    return row


async def list_feature_tags(conn: AsyncConnection, feature_name: str) -> list[TagWithColorSchema]:
    await _require_feature_row(conn, feature_name)
    rows = await conn.execute(
        sa.select(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value, t.tag_type.c.color)
        .join(t.tag_type, t.tag_type.c.name == t.feature_tag.c.tag_type)
        .where(t.feature_tag.c.feature_name == feature_name)
        .order_by(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
    )
    return [TagWithColorSchema(type=row.tag_type, value=row.tag_value, color=row.color) for row in rows]


def _check_tag_value(value: str) -> str:
    trimmed = value.strip()
    if not TAG_VALUE_MIN <= len(trimmed) <= TAG_VALUE_MAX:
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[
                {
                    "path": "/value",
                    "message": f'"value" must be {TAG_VALUE_MIN} to {TAG_VALUE_MAX} characters long',
                }
            ],
        )
    return trimmed


async def add_feature_tag(
    conn: AsyncConnection, *, actor: Principal, feature_name: str, tag_type: str, value: str
) -> TagSchema:
    """Tag a flag (UPDATE_FEATURE). Creates the tag on first use (`tag-created`); records `feature-tagged`
    on every call, even when the flag already had the tag, as Unleash does. 404 unknown flag or tag type."""
    check_permission(actor, UPDATE_FEATURE)
    value = _check_tag_value(value)
    feature = await _require_feature_row(conn, feature_name)
    await get_tag_type(conn, tag_type)
    tag = {"type": tag_type, "value": value}
    known = (
        await conn.execute(sa.select(t.tag.c.type).where(t.tag.c.type == tag_type, t.tag.c.value == value))
    ).first()
    if known is None:
        await conn.execute(t.tag.insert().values(type=tag_type, value=value, created_at=utcnow()))
        await _audit(conn, audit.TAG_CREATED, actor, data=tag)
    linked = (
        await conn.execute(
            sa.select(t.feature_tag.c.feature_name).where(
                t.feature_tag.c.feature_name == feature_name,
                t.feature_tag.c.tag_type == tag_type,
                t.feature_tag.c.tag_value == value,
            )
        )
    ).first()
    if linked is None:
        await conn.execute(
            t.feature_tag.insert().values(feature_name=feature_name, tag_type=tag_type, tag_value=value)
        )
    await _audit(
        conn,
        audit.FEATURE_TAGGED,
        actor,
        data=tag,
        feature_name=feature_name,
        project=feature.project_id,
        tags=await tags_of_flag(conn, feature_name),
    )
    return TagSchema(type=tag_type, value=value)


async def remove_feature_tag(
    conn: AsyncConnection, *, actor: Principal, feature_name: str, tag_type: str, value: str
) -> bool:
    """Untag a flag (UPDATE_FEATURE); idempotent. Records `feature-untagged` (tag in `preData`) only when the
    flag had the tag; returns whether it had. 404 unknown flag."""
    check_permission(actor, UPDATE_FEATURE)
    feature = await _require_feature_row(conn, feature_name)
    result = await conn.execute(
        t.feature_tag.delete().where(
            t.feature_tag.c.feature_name == feature_name,
            t.feature_tag.c.tag_type == tag_type,
            t.feature_tag.c.tag_value == value,
        )
    )
    if result.rowcount == 0:
        return False
    await _audit(
        conn,
        audit.FEATURE_UNTAGGED,
        actor,
        pre_data={"type": tag_type, "value": value},
        feature_name=feature_name,
        project=feature.project_id,
        tags=await tags_of_flag(conn, feature_name),
    )
    return True


async def project_tag_labels(conn: AsyncConnection, project: str) -> list[str]:
    """Distinct `type:value` tags carried by the project's non-archived flags, sorted."""
    rows = await conn.execute(
        sa.select(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
        .join(t.feature, t.feature.c.name == t.feature_tag.c.feature_name)
        .where(t.feature.c.project_id == project, t.feature.c.archived_at.is_(None))
        .distinct()
        .order_by(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
    )
    return [f"{row.tag_type}:{row.tag_value}" for row in rows]


async def tags_of_flag(conn: AsyncConnection, feature_name: str) -> list[dict[str, str]]:
    """The tags of one flag as `[{type, value}]`, in a stable order (what its audit events carry)."""
    rows = await conn.execute(
        sa.select(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
        .where(t.feature_tag.c.feature_name == feature_name)
        .order_by(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value)
    )
    return [{"type": row.tag_type, "value": row.tag_value} for row in rows]
