"""Wake the worker as soon as a signal is committed.

Ingestion calls `announce(conn)` inside the transaction that stores signals. On PostgreSQL that queues a
`NOTIFY`, which the database delivers to every listening worker only if and when the transaction
commits; on SQLite (one process) the caller sets the in-process event after the commit. Workers wait
on `wait(seconds)`, so polling remains the fallback if a notification is ever missed.

On SQLite the worker also waits for a lull in this process's ingestion (`lull`) before each batch, so that
a stream of signals is processed in a few larger batches between runs of ingestion commits instead of
one small batch after each commit (ADR 0017).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.tasks import cancel_and_wait

CHANNEL = "switchman_signal"
# How often a separate SQLite worker looks for other processes' commits (`Wakeup.watch_sqlite`).
SQLITE_WATCH_SECONDS = 0.005

log = logging.getLogger(__name__)


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listener: Any = None
        self._watcher: asyncio.Task[None] | None = None
        self._last_commit = float("-inf")  # monotonic time of this process's latest signal commit
        self._commit_gap = float("inf")  # seconds between the two latest commits
        self._storing = 0  # signal batches of this process waiting for the write lock or being written

    async def announce(self, conn: AsyncConnection) -> None:
        """Inside the storing transaction: make the signal's commit wake the workers."""
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"NOTIFY {CHANNEL}")

    def committed(self) -> None:
        """After the storing transaction committed: wake the workers of this process."""
        now = time.monotonic()
        self._commit_gap, self._last_commit = now - self._last_commit, now
        self._event.set()

    def interrupt(self) -> None:
        """Wake the workers of this process without a new signal (to stop them)."""
        self._event.set()

    @contextlib.contextmanager
    def storing(self) -> Iterator[None]:
        """Around storing a batch of signals (lock wait included): ingestion is busy, no lull."""
        self._storing += 1
        try:
            yield
        finally:
            self._storing -= 1

    async def lull(self, *, quiet: float, at_most: float) -> None:
        """Return once this process's ingestion pauses, or after `at_most` seconds.

        A pause: no signal batch is waiting for the write lock or being written, and either commits are
        sparse (the two latest were at least `quiet` apart: nothing to gather, go at once) or none came
        in the last `quiet` seconds (a dense stream has paused)."""
        deadline = time.monotonic() + at_most
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if self._storing:
                wait = quiet
            elif self._commit_gap >= quiet:
                return
            else:
                wait = self._last_commit + quiet - now
                if wait <= 0:
                    return
            await asyncio.sleep(min(wait, deadline - now))

    async def wait(self, seconds: float) -> bool:
        """Wait until woken or `seconds` passed; True when woken."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True

    async def listen(self, dsn: str) -> None:
        """PostgreSQL only: LISTEN on a dedicated connection so other processes' signals wake us too."""
        import asyncpg

        conn = await asyncpg.connect(dsn)
        await conn.add_listener(CHANNEL, lambda *_: self._event.set())
        self._listener = conn

    async def watch_sqlite(self, path: str, *, every: float = SQLITE_WATCH_SECONDS) -> None:
        """SQLite, a worker in another process than ingestion: wake on every commit another connection
        makes to the file. `PRAGMA data_version` changes when another connection commits; reading it takes
        no lock and microseconds, so it is polled every `every` seconds on a connection of its own."""
        self._watcher = asyncio.create_task(self._watch(path, every), name="sqlite-commit-watcher")

    async def _watch(self, path: str, every: float) -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=0)  # never wait on the event loop
        try:
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            while True:
                await asyncio.sleep(every)
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error as exc:  # busy for a moment: the next look, or polling, will see it
                    log.debug("could not read the SQLite data version: %s", exc)
                    continue
                if version != seen:
                    seen = version
                    self._event.set()
        finally:
            conn.close()

    async def close(self) -> None:
        if self._watcher is not None:
            await cancel_and_wait(self._watcher)
            self._watcher = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
