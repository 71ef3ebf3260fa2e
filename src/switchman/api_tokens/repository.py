"""SQL of API tokens (admin, client, frontend). Functions take the caller's connection; nothing commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.db.queries import insert_returning
from switchman.timeutil import utcnow

_tk = t.api_token


async def list_tokens(conn: AsyncConnection) -> Sequence[Any]:
    return (await conn.execute(sa.select(_tk).order_by(_tk.c.id))).all()


async def insert_token(conn: AsyncConnection, **values: Any) -> Any:
    return await insert_returning(conn, _tk, **values)


async def insert_token_unless_present(conn: AsyncConnection, **values: Any) -> bool:
    """Insert unless a token with the same digest exists (another replica may have just made it)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = await conn.execute(
        insert(_tk).values(**values).on_conflict_do_nothing(index_elements=["secret_hash"])
    )
    return bool(result.rowcount)


async def delete_token(conn: AsyncConnection, secret_hash: str) -> bool:
    """Whether a token with that digest existed (and is now gone)."""
    result = await conn.execute(_tk.delete().where(_tk.c.secret_hash == secret_hash))
    return bool(result.rowcount)


async def touch_token(conn: AsyncConnection, token_id: int) -> None:
    await conn.execute(_tk.update().where(_tk.c.id == token_id).values(seen_at=utcnow()))
