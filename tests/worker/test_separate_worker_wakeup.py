"""A `switchman worker` process is woken by other processes' commits, on both databases (PostgreSQL:
LISTEN/NOTIFY; SQLite: the file's data version), instead of waiting for its poll interval."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx

from switchman.wakeup import Wakeup
from tests.factories import list_events, spawn_worker
from tests.worker.conftest import Scenario, toggle

POLL_SECONDS = 60  # only a wake-up can make the worker react within the test's bound


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    worker.wait(timeout=20)


async def test_a_separate_worker_reacts_to_a_signal_without_polling(
    client: httpx.AsyncClient, scenario: Scenario, db_url: str, tmp_path: Path
) -> None:
    # `client` serves the API without a worker (the test settings); the worker is another process.
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    worker = spawn_worker(db_url, tmp_path, worker_poll_interval_seconds=str(POLL_SECONDS))
    try:
        await asyncio.sleep(2)  # let it start and go idle: its first claim found nothing
        await scenario.send(client, {"go": True})
        events: list[dict[str, object]] = []
        for _ in range(300):  # a bound on a broken run (15 s), far below the poll interval
            events = await list_events(client, set_id)
            if events and events[0]["state"] == "success":
                break
            await asyncio.sleep(0.05)
        assert events and events[0]["state"] == "success"
    finally:
        _stop(worker)


async def test_the_sqlite_watch_wakes_on_another_connections_commit(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "watched.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x)")
    wakeup = Wakeup()
    await wakeup.watch_sqlite(str(path), every=0.01)
    try:
        assert not await wakeup.wait(0.1)  # nothing committed: no wake-up
        writer.execute("INSERT INTO t VALUES (1)")
        assert await wakeup.wait(10)
    finally:
        await wakeup.close()
        writer.close()
