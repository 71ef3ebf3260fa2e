"""The worker strategy for a remote flag backend (a real Unleash): step by step, never a long transaction.

The claims commit first, with a lease that a heartbeat keeps alive while the batch runs; a dead worker
stops renewing and its claims are retaken once the lease expires. Each run's event is committed `started`
first, so a slow remote call is visible as a running event; an action's outcome is written when it
finishes and more actions follow; the final state and the last outcome are written together. An action's
transient `started` state is not written (a resumed run re-runs an unfinished action whatever its
recorded state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman import metrics
from switchman.action_sets.decision_store import Decision, record_decisions, settle_decisions
from switchman.action_sets.event_store import EventRecord, find_event, save_event, start_event
from switchman.config import Settings
from switchman.db.engine import Database
from switchman.engine.executor import ActionFailed, ActionState, ActionStep, EventState, run_actions
from switchman.flags.backend import FlagActionError, FlagBackend
from switchman.notifications.outbox import enqueue_runs
from switchman.signal_endpoints.queue import claim_signals, extend_claims, mark_processed
from switchman.tasks import cancel_and_wait
from switchman.timeutil import utcnow
from switchman.worker.failures import count_failure, is_outage
from switchman.worker.matching import BatchLookups
from switchman.worker.runs import PlannedRun, RunOutcome, log_outcome, resumable

log = logging.getLogger(__name__)

# How long after the action timeout a run gives up on a backend that overran its own deadline.
_GUARD_GRACE_SECONDS = 1.0


class RemoteSteps:
    """Drains the queue a claimed batch at a time, each run committing its own progress."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        backend: FlagBackend,
        worker_id: str,
        stopping: asyncio.Event,
    ) -> None:
        self._settings = settings
        self._db = db
        self._backend = backend
        self._worker_id = worker_id
        self._stopping = stopping
        self._lease = timedelta(seconds=settings.worker_lease_seconds)
        self._action_timeout = settings.action_timeout_seconds

    async def drain_once(self) -> int:
        """Claim one batch and run it; returns the number of signals claimed. When asked to stop, the
        rest of the batch is left to be retaken once its lease expires."""
        async with self._db.transaction() as conn:
            batch = await claim_signals(
                conn,
                worker_id=self._worker_id,
                now=utcnow(),
                lease=self._lease,
                limit=self._settings.worker_batch_size,
            )
        if not batch:
            return 0
        lookups = BatchLookups(self._db, trace=self._settings.decision_trace)
        done: list[int] = []
        recorded_runs: list[Decision] = []  # decisions written when their policy decided (to settle)
        heartbeat = asyncio.create_task(self._keep_claims([signal.id for signal in batch]))
        try:
            for signal in batch:
                if self._stopping.is_set():
                    break
                try:
                    for run in await lookups.planned_runs(signal):
                        await self._run(run)
                        if run.decision is not None and run.decision.recorded:
                            recorded_runs.append(run.decision)
                except Exception as error:
                    if is_outage(error):
                        raise
                    await count_failure(  # its runs so far stay; a retry resumes them
                        self._db,
                        signal_id=signal.id,
                        error=error,
                        set_aside_after=self._settings.worker_max_signal_failures,
                    )
                    continue
                done.append(signal.id)
        finally:
            await cancel_and_wait(heartbeat)
            # One commit for the batch: a crash before it only makes the signals be retaken, and a
            # retaken signal finds its events final and runs nothing again.
            if done:
                finished = set(done)
                decisions = [d for d in lookups.decisions if d.signal_id in finished]
                async with self._db.transaction() as conn:
                    now = utcnow()
                    await record_decisions(conn, decisions, now=now)
                    await settle_decisions(conn, [d for d in recorded_runs if d.signal_id in finished])
                    await mark_processed(conn, signal_ids=done, now=now)
                metrics.signals_processed(signal.created_at for signal in batch if signal.id in finished)
        return len(batch)

    async def _keep_claims(self, signal_ids: list[int]) -> None:
        interval = max(self._lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._db.transaction() as conn:
                    await extend_claims(
                        conn, worker_id=self._worker_id, signal_ids=signal_ids, until=utcnow() + self._lease
                    )
            except Exception:
                log.exception("could not extend the worker's claims")

    async def _run(self, run: PlannedRun) -> EventState | None:
        """Record and run one planned run; None when another run already finished it."""
        async with self._db.transaction() as conn:
            event = await start_event(conn, action_set=run.action_set, signal=run.signal, now=utcnow())
            if event is None:
                event = await _interrupted(conn, run)
        if event is None or event.state != EventState.STARTED:
            if event is not None:
                run.settle(event_id=event.id, state=event.state)
            return None
        steps, remaining = resumable(event)

        async def perform(step: ActionStep) -> None:
            actor, command = run.command(step)
            try:
                # A safety net: a remote backend bounds each operation by the same action timeout itself
                # and reports why (timeouts, retries); the grace lets its own message win the race.
                async with asyncio.timeout(self._action_timeout + _GUARD_GRACE_SECONDS):
                    await self._backend.toggle(actor, command)
            except FlagActionError as exc:
                raise ActionFailed(str(exc)) from exc
            except TimeoutError as exc:
                raise ActionFailed(
                    f"The flag operation did not finish within {self._action_timeout:g} s"
                ) from exc

        async def save_progress(ordered: Sequence[ActionStep]) -> None:
            if _worth_saving(ordered):
                await self._save(event, EventState.STARTED, steps)

        state = await run_actions(remaining, perform, save_progress) if remaining else EventState.SUCCESS
        outcome = RunOutcome(run.action_set, run.signal_id, state, steps, event.id)
        await self._save(event, state, steps, ended=outcome)
        run.settle(event_id=event.id, state=state)
        log_outcome(outcome)
        metrics.run_finished(run.action_set.project, run.action_set.id, state)
        return state

    async def _save(
        self,
        event: EventRecord,
        state: EventState,
        steps: Sequence[ActionStep],
        ended: RunOutcome | None = None,
    ) -> None:
        """Write the run's progress; with `ended`, its final state and its notifications, together."""
        async with self._db.transaction() as conn:
            await save_event(conn, event, state=state, steps=steps)
            if ended is not None:
                await enqueue_runs(conn, [ended])  # ADR 0027


async def _interrupted(conn: AsyncConnection, run: PlannedRun) -> EventRecord | None:
    """The run's existing event: one still `started` (its worker died) is resumed; one that ended is
    only linked from the run's decision."""
    existing = await find_event(conn, signal_id=run.signal_id, action_set_id=run.action_set.id)
    if existing is not None and existing.state == EventState.STARTED:
        log.info("resuming interrupted action set event %s", existing.id)
    return existing


def _worth_saving(ordered: Sequence[ActionStep]) -> bool:
    """Write progress only when an action has just succeeded and others still follow: a `started` step
    is transient, and a failure or the last success is written with the final state right after."""
    states = [step.state for step in ordered]
    if ActionState.STARTED in states or ActionState.FAILED in states:
        return False
    return ActionState.NOT_STARTED in states and ActionState.SUCCESS in states
