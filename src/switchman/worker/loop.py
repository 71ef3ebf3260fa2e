"""The worker loop: wait for a wake-up (or the poll interval), claim a batch, process it, repeat.

Each claimed signal is processed in id order: every enabled action set of its source is matched
(pure engine), each match is run by `ActionSetRunner`, then the signal is marked processed. A
heartbeat keeps the batch's lease alive while it runs, so a healthy but slow worker is not
overtaken; a dead one stops renewing and its claims are retaken once the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal as os_signal
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.repository import ActionSetRecord, load_matching_candidates
from switchman.auth.principal import Principal
from switchman.config import Settings
from switchman.db.engine import Database
from switchman.engine.matching import CompiledFilters, compile_filters
from switchman.engine.payload import flatten_payload
from switchman.flags.backend import FlagBackend
from switchman.service_accounts.service import get_actor
from switchman.timeutil import utcnow
from switchman.wakeup import Wakeup
from switchman.worker.claims import ClaimedSignal, claim_signals, extend_claims, mark_processed
from switchman.worker.runner import ActionSetRunner, RunOutcome, log_outcome

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 15.0


class SignalWorker:
    def __init__(self, *, settings: Settings, db: Database, wakeup: Wakeup, backend: FlagBackend) -> None:
        self.settings = settings
        self.db = db
        self.wakeup = wakeup
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.runner = ActionSetRunner(db=db, backend=backend, action_timeout=settings.action_timeout_seconds)
        self._stopping = asyncio.Event()
        self._held: list[int] = []
        self._limit = settings.worker_batch_size

    async def run(self) -> None:
        """Process signals until `stop()`; errors are logged and retried after the poll interval."""
        log.info("worker %s started", self.worker_id)
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while not self._stopping.is_set():
                try:
                    handled = await self.drain_once()
                except Exception:
                    log.exception("worker batch failed; retrying after the poll interval")
                    handled = 0
                if handled == 0 and not self._stopping.is_set():
                    await self.wakeup.wait(self.settings.worker_poll_interval_seconds)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            log.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        self.wakeup.committed()  # interrupt the wait

    async def drain_once(self) -> int:
        """Claim one batch and process it; returns the number of signals handled.

        Adaptive claim size (embedded store): a claim that comes back full means a backlog, so the
        next one doubles (up to `worker_max_batch_size`) as long as the batch took at most
        `worker_batch_target_seconds`; a batch that took more than twice that halves it; a claim that
        does not come back full resets it to `worker_batch_size`. Per-batch costs (the commit, the
        locks, a dozen statements) are then shared by many signals exactly while signals queue, a quiet
        queue keeps small batches, and no batch holds its locks (on SQLite: the write lock that
        ingestion waits for) much longer than the target.
        """
        if self.runner.transactional_backend is None:
            return await self._drain_step_by_step()
        limit = self._limit
        started = time.perf_counter()
        handled = await self._drain_in_one_transaction(limit)
        elapsed = time.perf_counter() - started
        settings = self.settings
        base, target = settings.worker_batch_size, settings.worker_batch_target_seconds
        if handled < limit:
            self._limit = base
        elif elapsed <= target:
            self._limit = max(base, min(limit * 2, settings.worker_max_batch_size))
        elif elapsed > 2 * target:
            self._limit = max(base, limit // 2)
        return handled

    async def _drain_in_one_transaction(self, limit: int) -> int:
        """Embedded store: claim, run every matching action set and mark processed in ONE transaction.

        The claimed rows stay locked (`FOR UPDATE SKIP LOCKED`) until the commit, so no other worker
        can take them; if this worker dies, the transaction rolls back and the signals are simply
        pending again — no lease to wait for. One commit serves the whole batch.
        """
        outcomes: list[RunOutcome] = []
        async with self.db.transaction() as conn:
            batch = await claim_signals(
                conn,
                worker_id=self.worker_id,
                now=utcnow(),
                lease=self.lease,
                limit=limit,
            )
            if not batch:
                return 0
            lookups = _BatchLookups(self.db, conn)
            runs: list[tuple[ActionSetRecord, dict[str, Any], Principal | None]] = []
            for signal in batch:
                matches = await self._matches(signal, lookups)
                if matches:
                    wire = signal.wire()
                    runs.extend((action_set, wire, actor) for action_set, actor in matches)
            if runs:
                outcomes = await self.runner.run_batch_in(conn, runs)
            await mark_processed(conn, signal_ids=[signal.id for signal in batch], now=utcnow())
        for outcome in outcomes:  # committed: only now are these runs facts
            log_outcome(outcome)
        return len(batch)

    async def _drain_step_by_step(self) -> int:
        """Remote backend: claims commit first (with a lease kept alive by the heartbeat), then each run
        commits its own progress, so slow remote calls never hold a transaction open."""
        async with self.db.transaction() as conn:
            batch = await claim_signals(
                conn,
                worker_id=self.worker_id,
                now=utcnow(),
                lease=self.lease,
                limit=self.settings.worker_batch_size,
            )
        self._held = [signal.id for signal in batch]
        lookups = _BatchLookups(self.db)
        done: list[int] = []
        try:
            for signal in batch:
                if self._stopping.is_set():
                    break  # the rest of the batch is retaken when its lease expires
                for action_set, actor in await self._matches(signal, lookups):
                    await self.runner.run(action_set, signal.wire(), actor=actor)
                done.append(signal.id)
        finally:
            # One commit for the batch: a crash before it only makes the signals be retaken, and a
            # retaken signal finds its events final and runs nothing again.
            if done:
                async with self.db.transaction() as conn:
                    await mark_processed(conn, signal_ids=done, now=utcnow())
            self._held = []
        return len(batch)

    @staticmethod
    async def _matches(
        signal: ClaimedSignal, lookups: _BatchLookups
    ) -> list[tuple[ActionSetRecord, Principal | None]]:
        """The enabled action sets of the signal's source whose filters pass, ascending id, with actors.

        The payload is parsed and flattened once for all the candidate sets."""
        candidates = await lookups.candidates(signal.source, signal.source_id)
        if not candidates:
            return []
        flat = flatten_payload(signal.payload())
        return [
            (action_set, await lookups.actor(action_set.actor_id))
            for action_set, compiled in candidates
            if compiled.matches(flat)
        ]

    async def _heartbeat(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            if self._held:
                try:
                    async with self.db.transaction() as conn:
                        await extend_claims(
                            conn,
                            worker_id=self.worker_id,
                            signal_ids=list(self._held),
                            until=utcnow() + self.lease,
                        )
                except Exception:
                    log.exception("could not extend the worker's claims")


class _BatchLookups:
    """Action sets per source and actors per id, read once per claimed batch.

    A change to an action set or a service account takes effect from the next batch (≤ the batch size
    of signals later), which keeps the per-signal cost to the matching itself.
    """

    def __init__(self, db: Database, conn: AsyncConnection | None = None) -> None:
        self._db = db
        self._conn = conn  # read through the batch's own transaction when there is one
        self._candidates: dict[tuple[str, int], list[tuple[ActionSetRecord, CompiledFilters]]] = {}
        self._actors: dict[int, Principal | None] = {}

    async def candidates(self, source: str, source_id: int) -> list[tuple[ActionSetRecord, CompiledFilters]]:
        """The source's enabled action sets (ascending id), each with its filters read once."""
        key = (source, source_id)
        if key not in self._candidates:
            async with self._reading() as conn:
                sets = await load_matching_candidates(conn, source=source, source_id=source_id)
            self._candidates[key] = [(action_set, compile_filters(action_set.filters)) for action_set in sets]
        return self._candidates[key]

    async def actor(self, actor_id: int) -> Principal | None:
        if actor_id not in self._actors:
            async with self._reading() as conn:
                self._actors[actor_id] = await get_actor(conn, actor_id)
        return self._actors[actor_id]

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:
            yield self._conn
        else:
            async with self._db.read() as conn:
                yield conn


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
    *, settings: Settings, db: Database, wakeup: Wakeup, backend: FlagBackend
) -> WorkerHandle:
    """Start a worker loop on `backend` (owned by the caller). On PostgreSQL it LISTENs for new signals."""
    if db.is_postgres:
        await wakeup.listen(_asyncpg_dsn(settings))
    worker = SignalWorker(settings=settings, db=db, wakeup=wakeup, backend=backend)
    return WorkerHandle(worker, asyncio.create_task(worker.run(), name="signal-worker"))


async def run_standalone(settings: Settings) -> None:
    """`switchman worker`: one worker, no HTTP, until SIGINT/SIGTERM."""
    from switchman.runtime import open_runtime

    async with open_runtime(settings, serve=False, run_worker=True, pool_size=4) as runtime:
        assert runtime.worker is not None
        loop = asyncio.get_running_loop()
        for sig in (os_signal.SIGINT, os_signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.worker.worker.stop)
        await runtime.worker.task


def _asyncpg_dsn(settings: Settings) -> str:
    return settings.async_database_url.set(drivername="postgresql").render_as_string(hide_password=False)
