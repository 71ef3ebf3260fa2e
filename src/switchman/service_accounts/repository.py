"""SQL of service accounts and their personal access tokens. Functions take the caller's connection.

Nothing here commits, checks permissions or records audit events: that is the service's.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.db.queries import insert_returning, row_exists

_sa = t.service_account
_pat = t.personal_access_token


async def get_account(conn: AsyncConnection, account_id: int, *, lock: str | None = None) -> Any:
    """The account row, or None. `lock` (PostgreSQL): "update" locks it for writing, "share" against
    deletion until the transaction ends."""
    query = sa.select(_sa).where(_sa.c.id == account_id)
    if lock == "update":
        query = query.with_for_update()
    elif lock == "share":
        query = query.with_for_update(read=True)
    return (await conn.execute(query)).first()


async def account_name(conn: AsyncConnection, account_id: int) -> str | None:
    return (await conn.execute(sa.select(_sa.c.name).where(_sa.c.id == account_id))).scalar_one_or_none()


async def username_taken(conn: AsyncConnection, username: str) -> bool:
    return (await conn.execute(sa.select(_sa.c.id).where(_sa.c.username == username))).first() is not None


async def list_accounts(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(sa.select(_sa).order_by(_sa.c.id))).all())


async def list_pats(conn: AsyncConnection, account_id: int | None = None) -> list[Any]:
    """The tokens (no secrets used by callers) of one account, or of all, ascending id."""
    query = sa.select(_pat).order_by(_pat.c.id)
    if account_id is not None:
        query = query.where(_pat.c.user_id == account_id)
    return list((await conn.execute(query)).all())


async def insert_account(conn: AsyncConnection, **values: Any) -> Any:
    """Insert an account; IntegrityError when its username was taken concurrently."""
    return await insert_returning(conn, _sa, **values)


async def update_account(conn: AsyncConnection, account_id: int, **values: Any) -> Any:
    return (
        await conn.execute(_sa.update().where(_sa.c.id == account_id).values(**values).returning(*_sa.c))
    ).one()


async def delete_account(conn: AsyncConnection, account_id: int) -> None:
    """Delete the account; its tokens cascade."""
    await conn.execute(_sa.delete().where(_sa.c.id == account_id))


async def count_pats(conn: AsyncConnection, account_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(_pat).where(_pat.c.user_id == account_id)
    return int((await conn.execute(query)).scalar_one())


async def pat_description_taken(conn: AsyncConnection, account_id: int, description: str) -> bool:
    return await row_exists(conn, _pat, user_id=account_id, description=description)


async def insert_pat(conn: AsyncConnection, **values: Any) -> Any:
    """Insert a token; IntegrityError when its description was taken concurrently."""
    return await insert_returning(conn, _pat, **values)


async def delete_pat(conn: AsyncConnection, account_id: int, token_id: int) -> Any:
    """The deleted token's id and description, or None when the account has no such token."""
    statement = (
        _pat.delete()
        .where(_pat.c.id == token_id, _pat.c.user_id == account_id)
        .returning(_pat.c.id, _pat.c.description)
    )
    return (await conn.execute(statement)).first()
