"""The worker loop: wait for a wake-up (or the poll interval), drain a batch with the strategy, repeat.

The strategy is chosen once, from the flag backend the settings select (ADR 0012):
- the embedded flag store → `EmbeddedBatches` (a claimed batch is one transaction);
- a remote Unleash → `RemoteSteps` (claims with a lease and a heartbeat, each run commits its progress).

On the embedded store the loop also sweeps the time boxes that ended (ADR 0025), at most once per poll
interval, between batches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal as os_signal
import socket
import uuid
from typing import Protocol

from switchman.config import Settings
from switchman.db.engine import Database
from switchman.flags.backend import FlagBackend, TransactionalFlagBackend
from switchman.wakeup import Wakeup
from switchman.worker.embedded_batches import EmbeddedBatches
from switchman.worker.remote_steps import RemoteSteps
from switchman.worker.time_boxes import TimeBoxSweep

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 15.0


class DrainStrategy(Protocol):
    async def drain_once(self) -> int:
        """Claim one batch and process it; the number of signals handled (0: the queue was empty)."""
        ...


class SignalWorker:
    def __init__(self, *, settings: Settings, db: Database, wakeup: Wakeup, backend: FlagBackend) -> None:
        self.settings = settings
        self.wakeup = wakeup
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = asyncio.Event()
        self.strategy: DrainStrategy
        self.time_boxes: TimeBoxSweep | None = None
        if isinstance(backend, TransactionalFlagBackend):
            self.strategy = EmbeddedBatches(
                settings=settings, db=db, backend=backend, worker_id=self.worker_id, wakeup=wakeup
            )
            self.time_boxes = TimeBoxSweep(db, interval_seconds=settings.worker_poll_interval_seconds)
        else:
            self.strategy = RemoteSteps(
                settings=settings, db=db, backend=backend, worker_id=self.worker_id, stopping=self._stopping
            )

    async def run(self) -> None:
        """Process signals until `stop()`; errors are logged and retried after the poll interval."""
        log.info("worker %s started", self.worker_id)
        try:
            while not self._stopping.is_set():
                try:
                    handled = await self.drain_once()
                    if self.time_boxes is not None:
                        await self.time_boxes.sweep_if_time()
                except Exception:
                    log.exception("worker batch failed; retrying after the poll interval")
                    handled = 0
                if handled == 0 and not self._stopping.is_set():
                    await self.wakeup.wait(self.settings.worker_poll_interval_seconds)
        finally:
            log.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        self.wakeup.interrupt()

    async def drain_once(self) -> int:
        """Claim one batch and process it; returns the number of signals handled."""
        return await self.strategy.drain_once()


class WorkerHandle:
    """A running worker: its loop task, stopped (and awaited) by `stop`."""

    def __init__(self, worker: SignalWorker, task: asyncio.Task[None]) -> None:
        self.worker = worker
        self.task = task

    async def stop(self) -> None:
        """Ask the loop to stop after its current batch; cancel it after `STOP_GRACE_SECONDS`."""
        self.worker.stop()
        try:
            await asyncio.wait_for(self.task, timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            self.task.cancel()


async def start_worker(
    *,
    settings: Settings,
    db: Database,
    wakeup: Wakeup,
    backend: FlagBackend,
    ingestion_in_process: bool = True,
) -> WorkerHandle:
    """Start a worker loop on `backend` (owned by the caller). On PostgreSQL it LISTENs for new signals; on
    SQLite without ingestion in this process it watches the file for other processes' commits."""
    if db.is_postgres:
        await wakeup.listen(_asyncpg_dsn(settings))
    elif not ingestion_in_process:
        await wakeup.watch_sqlite(db.url.database or "")
    worker = SignalWorker(settings=settings, db=db, wakeup=wakeup, backend=backend)
    return WorkerHandle(worker, asyncio.create_task(worker.run(), name="signal-worker"))


async def run_standalone(settings: Settings) -> None:
    """`switchman worker`: one worker until SIGINT/SIGTERM; HTTP only for its metrics, when asked
    (`--metrics-port`)."""
    from switchman.metrics_http import serving_worker_metrics
    from switchman.runtime import open_runtime

    async with open_runtime(settings, serve=False, run_worker=True, pool_size=4) as runtime:
        assert runtime.worker is not None
        loop = asyncio.get_running_loop()
        for sig in (os_signal.SIGINT, os_signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.worker.worker.stop)
        async with serving_worker_metrics(settings, runtime.db):
            await runtime.worker.task


def _asyncpg_dsn(settings: Settings) -> str:
    return settings.async_database_url.set(drivername="postgresql").render_as_string(hide_password=False)
