"""Wake the worker as soon as a signal is committed.

Ingestion calls `announce(conn)` inside the transaction that stores signals. On PostgreSQL that queues a
`NOTIFY`, which the database delivers to every listening worker only if and when the transaction
commits; on SQLite (one process) the caller sets the in-process event after the commit. Workers wait
on `wait(seconds)`, so polling remains the fallback if a notification is ever missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "switchman_signal"

log = logging.getLogger(__name__)


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listener: Any = None

    async def announce(self, conn: AsyncConnection) -> None:
        """Inside the storing transaction: make the signal's commit wake the workers."""
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"NOTIFY {CHANNEL}")

    def committed(self) -> None:
        """After the storing transaction committed: wake the workers of this process."""
        self._event.set()

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

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
