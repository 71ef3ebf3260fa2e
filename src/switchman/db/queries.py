"""Small query helpers every repository needs, written once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def row_exists(conn: AsyncConnection, table: sa.Table, **equal: Any) -> bool:
    """Whether `table` has a row whose columns equal the given values (`column_name=value`)."""
    condition = sa.and_(*(table.c[name] == value for name, value in equal.items()))
    return bool(await conn.scalar(sa.select(sa.exists().where(condition))))


async def insert_returning(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    returning: Sequence[sa.ColumnElement[Any]] | None = None,
    **values: Any,
) -> sa.Row[Any]:
    """Insert one row of `values` into `table`; the row as stored (`returning` columns, or all)."""
    statement = table.insert().values(**values).returning(*(returning if returning is not None else table.c))
    return (await conn.execute(statement)).one()
