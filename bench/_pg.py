"""PostgreSQL helpers for benchmarks: the server to use and one-statement admin calls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
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


@contextlib.contextmanager
def scratch_database(kind: str, scratch: Path, *, prefix: str) -> Iterator[str]:
    """The URL of an empty database for one measurement: a SQLite file in `scratch`, or a throw-away
    PostgreSQL database (`{prefix}_<random>`) dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{scratch / f'{prefix}.db'}"
        return
    name = f"{prefix}_{secrets.token_hex(3)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
