"""The client API's reads of the flag store: the flags an SDK is served, in Unleash's client format.

The client API is the flag store's read model for SDKs (a declared reader of the flag tables, see
docs/architecture.md): one tuned query for the flags and one for their strategies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.api_tokens.configured import ALL
from switchman.db import tables as t


async def load_features(
    conn: AsyncConnection,
    *,
    environment: str,
    projects: Sequence[str] | None,
    name_prefix: str | None,
    tags: Sequence[tuple[str, str]] | None,
) -> list[dict[str, Any]]:
    """The non-archived flags of `projects` (None or `*`: all) whose name starts with `name_prefix` and
    that carry one of `tags` (when given), in Unleash's client format (creation order).

    `enabled` and `strategies` are the flag's state in `environment`; a flag without a state there is off
    with no strategies. Disabled strategies are left out, as Unleash does.
    """
    f, fe = t.feature, t.feature_environment
    selected = sa.select(f.c.name).where(f.c.archived_at.is_(None))
    if projects is not None and ALL not in projects:
        selected = selected.where(f.c.project_id.in_(projects))
    if name_prefix is not None:
        selected = selected.where(f.c.name.startswith(name_prefix, autoescape=True))
    if tags is not None:
        tagged = sa.select(t.feature_tag.c.feature_name).where(
            sa.tuple_(t.feature_tag.c.tag_type, t.feature_tag.c.tag_value).in_(list(tags))
        )
        selected = selected.where(f.c.name.in_(tagged))
    names = selected.subquery()
    rows = (
        await conn.execute(
            sa.select(
                f.c.name,
                f.c.type,
                f.c.project_id,
                f.c.stale,
                f.c.description,
                f.c.impression_data,
                fe.c.enabled,
            )
            .join(names, names.c.name == f.c.name)
            .outerjoin(fe, sa.and_(fe.c.feature_name == f.c.name, fe.c.environment_name == environment))
            .order_by(f.c.created_at, f.c.name)
        )
    ).all()
    strategies: dict[str, list[dict[str, Any]]] = {}
    fs = t.feature_strategy
    strategy_rows = await conn.execute(
        sa.select(fs.c.feature_name, fs.c.strategy_name, fs.c.parameters, fs.c.constraints)
        .join(names, names.c.name == fs.c.feature_name)
        .where(fs.c.environment_name == environment, fs.c.disabled.is_(False))
        .order_by(fs.c.feature_name, fs.c.sort_order, fs.c.id)
    )
    for row in strategy_rows:
        strategies.setdefault(row.feature_name, []).append(
            {
                "name": row.strategy_name,
                "constraints": list(row.constraints or []),
                "parameters": _string_parameters(row.parameters or {}),
                "variants": [],
            }
        )
    return [
        {
            "name": row.name,
            "type": row.type,
            "enabled": bool(row.enabled),
            "project": row.project_id,
            "stale": row.stale,
            "strategies": strategies.get(row.name, []),
            "variants": [],
            "description": row.description,
            "impressionData": row.impression_data,
        }
        for row in rows
    ]


def _string_parameters(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Unleash sends every strategy parameter as a string (`ensureStringValue`), keys sorted here."""
    out: dict[str, str] = {}
    for key in sorted(parameters):
        value = parameters[key]
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            out[key] = str(value)
        else:
            out[key] = orjson.dumps(value).decode()
    return out
