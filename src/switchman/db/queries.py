"""Small query helpers every repository needs, written once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def row_exists(conn: AsyncConnection, table: sa.Table, **equal: Any) -> bool:
    """Whether `table` has a row whose columns equal the given values (`column_name=value`)."""
    condition = sa.and_(*(table.c[name] == value for name, value in equal.items()))
    return bool(await conn.scalar(sa.select(sa.exists().where(condition))))
