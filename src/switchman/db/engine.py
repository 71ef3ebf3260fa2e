"""Engine construction and transactions.

`Database.transaction()` is the unit of work: it commits when the block ends normally and rolls back when
it raises, so the place a transaction ends is always visible at the call site. On SQLite, write
transactions start with `BEGIN IMMEDIATE` so that two writers queue on the busy timeout instead of
failing with SQLITE_BUSY when a read lock would have to be upgraded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: URL, *, pool_size: int = 10) -> AsyncEngine:
    # hide_parameters: error texts (and so logged tracebacks) never quote statement parameters, which
    # carry signal payloads and token hashes.
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        hide_parameters=True,
        # No pre-ping: it costs a round trip per checkout on every transaction; a connection broken by a
        # database restart fails its one request and is then discarded by the pool.
        pool_recycle=1800,
        # JIT compilation pays ~10 ms on short queries with large row estimates (ADR 0006); never worth it here.
        connect_args={"server_settings": {"application_name": "switchman", "jit": "off"}},
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # durable before acknowledgement
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


_BEFORE_COMMIT = "switchman.before_commit"
BeforeCommitHook = Callable[[AsyncConnection], Awaitable[None]]


def before_commit(conn: AsyncConnection, key: str, hook: BeforeCommitHook) -> None:
    """Run `hook(conn)` once, as the last statement(s) of the current `Database.transaction()`.

    Registering the same `key` again in one transaction is a no-op. A hook that takes a row lock holds it
    only for the COMMIT itself, so it can never be part of a lock-order deadlock: whoever waits for it
    holds no lock that the committing transaction still needs. Outside `Database.transaction()` (a plain
    `engine.connect()`), hooks never run; the registry lives in the connection's `info`, which the pool
    keeps across checkouts, so `transaction()` always clears it.
    """
    conn.info.setdefault(_BEFORE_COMMIT, {}).setdefault(key, hook)


@asynccontextmanager
async def _committing(conn: AsyncConnection) -> AsyncIterator[None]:
    """BEGIN; the caller's block; the `before_commit` hooks; COMMIT (ROLLBACK on an exception)."""
    try:
        async with conn.begin():
            yield
            await _run_before_commit(conn)
    finally:
        conn.info.pop(_BEFORE_COMMIT, None)


async def _run_before_commit(conn: AsyncConnection) -> None:
    hooks: dict[str, BeforeCommitHook] = conn.info.pop(_BEFORE_COMMIT, None) or {}
    for hook in hooks.values():
        await hook(conn)


class Database:
    """The process's engine plus the two ways to use it: a write transaction or a read."""

    def __init__(self, url: URL, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.is_postgres = not self.is_sqlite
        # SQLite has one writer at a time. Writers of this process queue on this FIFO lock instead of on
        # SQLite's busy handler, whose growing sleeps let a busy writer starve the others (ingestion
        # behind the worker, say). Other processes still meet the busy timeout.
        self.sqlite_write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block exits normally, rolled back on an exception.

        Hooks registered with `before_commit` run last inside the transaction, just before COMMIT.
        """
        if not self.is_sqlite:
            async with self.engine.connect() as conn, _committing(conn):
                yield conn
            return
        async with self.sqlite_write_lock, self.engine.connect() as conn:
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with _committing(conn):
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit: nothing it does is ever committed.

        On SQLite a transaction that is always rolled back (one snapshot for all its statements). On
        PostgreSQL the connection runs in autocommit mode instead: at READ COMMITTED, the isolation
        switchman uses, each statement sees its own snapshot whether or not a transaction is open, so
        BEGIN and ROLLBACK only cost two round trips per read (about a third of a cached listing's
        time). Callers must not write in a read.
        """
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                yield conn
            finally:
                await conn.rollback()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
