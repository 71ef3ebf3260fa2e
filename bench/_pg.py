"""PostgreSQL helpers for benchmarks: the server to use and one-statement admin calls."""

from __future__ import annotations

import os
from typing import Any

PG_SERVER = os.environ.get("SWITCHMAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


async def pg_fetchval(sql: str, url: str | None = None) -> Any:
    """The first value of `sql`'s first row, on `url` (default: the server's `postgres` database)."""
    import asyncpg

    conn = await asyncpg.connect(url or f"{PG_SERVER}/postgres")
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def pg_admin(sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE …) on the server's `postgres` database."""
    await pg_fetchval(sql)
