"""Engine construction and transactions.

`Database.transaction()` is the unit of work: it commits when the block ends normally and rolls back when
it raises, so the place a transaction ends is always visible at the call site. On SQLite, write
transactions start with `BEGIN IMMEDIATE` so that two writers queue on the busy timeout instead of
failing with SQLITE_BUSY when a read lock would have to be upgraded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: URL, *, pool_size: int = 10) -> AsyncEngine:
    # hide_parameters: error texts (and so logged tracebacks) never quote statement parameters, which
    # carry signal payloads and token hashes.
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,
            async_creator=partial(_inline_sqlite, url),
        )
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


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its thread: each queued call runs as it is queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, as aiosqlite's thread does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class _InlineSqlite(aiosqlite.Connection):
    """aiosqlite's interface over a sqlite3 connection whose calls run in the calling (event loop) thread.

    aiosqlite runs each call on a thread of its own and hands the result back through the event loop: a
    few hundred microseconds per call, and far more when the loop is busy serving requests, for statements
    that themselves take a few microseconds. Inline, a statement blocks the loop only for its own time.
    That is safe here because this process's writers queue on `Database.sqlite_write_lock` before they
    BEGIN, so a statement waits in SQLite's busy handler only for another process's (or the signal
    writer thread's) short commit, and WAL readers never wait.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start


async def _inline_sqlite(url: URL) -> aiosqlite.Connection:
    args, kwargs = url.get_dialect()().create_connect_args(url)
    # The pool may close a connection from another thread (garbage collection at exit).
    kwargs["check_same_thread"] = False
    return await _InlineSqlite(partial(sqlite3.connect, *args, **kwargs))


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
        if mode == "IMMEDIATE":
            _begin_immediate(conn.connection.driver_connection._conn)
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


def _begin_immediate(raw: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE on an inline (event loop) connection: `begin_immediate` waiting with asyncio sleeps,
    so the loop never blocks while another process writes."""
    begin_immediate(raw, lambda seconds: await_(asyncio.sleep(seconds)))


def begin_immediate(raw: sqlite3.Connection, sleep: Callable[[float], object]) -> None:
    """BEGIN IMMEDIATE, waiting for another connection's write transaction in short steps of our own.

    SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between attempts: a writer that waits for
    another process (a separate `switchman worker`, a CLI command) starts up to 25 ms after the lock is
    free, and on an inline connection it would sleep on the event loop. Instead the attempt fails at once
    and is retried after `sleep` of 0.5 ms doubling to 4 ms, for up to the busy timeout: the event loop's
    connections sleep with asyncio, the ingestion writer thread with `time.sleep`. Only BEGIN IMMEDIATE
    takes the write lock in a transaction (WAL commits never wait for readers), so this is the one place a
    writer waits.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.0005
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            sleep(pause)
            pause = min(pause * 2, 0.004)
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


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
