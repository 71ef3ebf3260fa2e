"""The worker strategy for the embedded flag store: a claimed batch is one transaction.

Claim, run every matching action set and mark the signals processed in ONE transaction. The claimed rows
stay locked (`FOR UPDATE SKIP LOCKED`) until the commit, so no other worker can take them; if this worker
dies, the transaction rolls back and the signals are simply pending again (no lease to wait for). A run is
atomic: there is never a flag change without its event, and one commit serves the whole batch.

Set-based: the batch's events are started together (`start_events`), the flag changes are decided in
memory and written by one `FlagBatch.flush`, and the events are written once with their final documents
(`finish_events`) — about a dozen statements per batch instead of a dozen per run. The outcomes are those
of running each run in order on its own: each run's flag changes see the changes of the runs before it, a
run's first failed action stops it (later ones `not started`), every action is checked against its own
actor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman import metrics
from switchman.action_sets.decision_store import record_decisions
from switchman.action_sets.event_changes import RunChanges, record_changes
from switchman.action_sets.event_store import EventRecord, finish_events, start_events
from switchman.action_sets.undo import Cause, restore_automatically, restore_summary
from switchman.auth.principal import Principal
from switchman.config import Settings
from switchman.db.engine import Database
from switchman.engine.actions import ToggleCommand
from switchman.engine.decisions import Outcome
from switchman.engine.executor import ActionFailed, ActionStep, EventState, run_actions
from switchman.flags.backend import FlagActionError, TransactionalFlagBackend
from switchman.notifications.outbox import enqueue_runs
from switchman.signal_endpoints.queue import claim_signals, mark_processed
from switchman.timeutil import utcnow
from switchman.wakeup import Wakeup
from switchman.worker.budgets import ChangeBudgets
from switchman.worker.failures import count_failure, describe, is_outage
from switchman.worker.matching import BatchLookups, Resolution
from switchman.worker.runs import PlannedRun, RunOutcome, log_outcome, nothing_to_save, resumable

log = logging.getLogger(__name__)

# On SQLite, a batch waits until ingestion has committed nothing for this long (or for the batch target):
# longer than the gap between commits of a steady stream, short enough to add little latency when idle.
SQLITE_INGESTION_LULL_SECONDS = 0.005


class ClaimSizer:
    """How many signals the next claim asks for.

    A claim that comes back full means a backlog, so the next one doubles (up to `maximum`) as long as the
    batch took at most `target_seconds`; a batch that took more than twice that halves it; a claim that
    does not come back full (it took every signal there was) keeps at most twice what it found, at least
    `base`: a steady stream keeps claims sized to what arrives between two batches instead of starting
    again from `base` (a batch of 10 costs about as much as one of 100: ADR 0017), and a quiet queue
    keeps small ones. Per-batch costs (the commit, the locks, a dozen statements) are then shared by many
    signals exactly while signals queue, and no batch holds its locks (on SQLite: the write lock that
    ingestion waits for) much longer than the target.
    """

    def __init__(self, *, base: int, maximum: int, target_seconds: float) -> None:
        self.base = base
        self.maximum = maximum
        self.target_seconds = target_seconds
        self.limit = base

    def observe(self, *, asked: int, handled: int, elapsed: float) -> None:
        if handled < asked:
            self.limit = max(self.base, min(self.limit, 2 * handled))
        elif elapsed <= self.target_seconds:
            self.limit = max(self.base, min(asked * 2, self.maximum))
        elif elapsed > 2 * self.target_seconds:
            self.limit = max(self.base, asked // 2)


class EmbeddedBatches:
    """Drains the queue a batch (one transaction) at a time, sized to the backlog by `sizer`."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        backend: TransactionalFlagBackend,
        worker_id: str,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._db = db
        self._wakeup = wakeup
        self._behind = False  # the last claim came back full: signals are queueing
        self._backend = backend
        self._worker_id = worker_id
        self._lease = timedelta(seconds=settings.worker_lease_seconds)
        self._trace = settings.decision_trace
        self._max_failures = settings.worker_max_signal_failures
        self._claimed: list[int] = []  # the ids of the batch being processed (to count a failure against)
        self._isolating_through: int | None = None  # after a failed batch: its last signal's id
        self.sizer = ClaimSizer(
            base=settings.worker_batch_size,
            maximum=settings.worker_max_batch_size,
            target_seconds=settings.worker_batch_target_seconds,
        )

    async def drain_once(self) -> int:
        """Claim one batch (of `sizer.limit` signals at most) and process it; the number handled.

        A batch that raises (other than a database outage, which is raised) is rolled back whole, then its
        signals are taken one at a time until past the failed batch, so the one that raises is found, its
        failure counted and, after `worker_max_signal_failures`, set aside (ADR 0028); the others pass."""
        if self._isolating_through is not None:
            return await self._drain_isolated()
        if self._wakeup is not None and self._db.is_sqlite and not self._behind:
            # One writer at a time: let a stream of ingestion commits run, then take its signals at once.
            # Not while signals queue (the last claim came back full): then catching up comes first.
            await self._wakeup.lull(quiet=SQLITE_INGESTION_LULL_SECONDS, at_most=self.sizer.target_seconds)
        asked = self.sizer.limit
        started = time.perf_counter()
        try:
            handled = await self._drain(asked)
        except Exception as error:
            if is_outage(error) or not self._claimed:
                raise
            if len(self._claimed) == 1:
                await self._count_failure(self._claimed[0], error)
            else:
                log.warning(
                    "a batch of %d signals (%d to %d) failed (%s); taking them one at a time",
                    len(self._claimed), self._claimed[0], self._claimed[-1], describe(error),
                )  # fmt: skip
                self._isolating_through = self._claimed[-1]
            return len(self._claimed)
        self.sizer.observe(asked=asked, handled=handled, elapsed=time.perf_counter() - started)
        self._behind = handled == asked
        return handled

    async def _drain_isolated(self) -> int:
        """One signal per transaction until the queue passes the failed batch's last signal."""
        try:
            handled = await self._drain(1)
        except Exception as error:
            if is_outage(error) or not self._claimed:
                raise
            await self._count_failure(self._claimed[0], error)
            handled = 1
        if handled == 0 or self._claimed[-1] >= (self._isolating_through or 0):
            self._isolating_through = None
        return handled

    async def _count_failure(self, signal_id: int, error: Exception) -> None:
        await count_failure(self._db, signal_id=signal_id, error=error, set_aside_after=self._max_failures)

    async def _drain(self, limit: int) -> int:
        outcomes: list[RunOutcome] = []
        self._claimed = []
        async with self._db.transaction() as conn:
            batch = await claim_signals(
                conn, worker_id=self._worker_id, now=utcnow(), lease=self._lease, limit=limit
            )
            self._claimed = [signal.id for signal in batch]
            if not batch:
                return 0
            lookups = BatchLookups(self._db, conn, trace=self._trace)
            await lookups.prepare(batch)
            runs = [run for signal in batch for run in await lookups.planned_runs(signal)]
            if runs:
                outcomes = await self._run_all(conn, runs, lookups)
                await enqueue_runs(conn, outcomes)  # in the batch's transaction (ADR 0027)
            for resolution in lookups.restores:
                await _restore(conn, lookups, resolution)
            now = utcnow()
            await lookups.save_policy_states()
            await record_decisions(conn, lookups.decisions, now=now)
            await mark_processed(conn, signal_ids=[signal.id for signal in batch], now=now)
        for outcome in outcomes:  # committed: only now are these runs facts
            log_outcome(outcome)
            metrics.run_finished(outcome.action_set.project, outcome.action_set.id, outcome.state)
        metrics.signals_processed(signal.created_at for signal in batch)
        return len(batch)

    async def _run_all(
        self, conn: AsyncConnection, runs: Sequence[PlannedRun], lookups: BatchLookups
    ) -> list[RunOutcome]:
        """Run `runs` in order inside `conn`'s transaction; the outcome of each run that ended here (runs
        that had already ended are left out)."""
        events = await start_events(conn, [(run.action_set, run.signal) for run in runs], now=utcnow())
        # An event that ended in an earlier batch (None) recorded its decision then and is left out.
        started = [
            _Started(run, event, *resumable(event)) for run, event in zip(runs, events, strict=True) if event
        ]
        flags = self._backend.batch_in(conn)
        await flags.prepare(
            command for run in started for command in run.commands.values() if command is not None
        )
        outcomes: list[RunOutcome] = []
        finished: list[tuple[EventRecord, str, Sequence[ActionStep]]] = []
        changes = RunChanges()
        budgets = ChangeBudgets(conn, lookups)
        for item in started:

            async def perform(step: ActionStep, item: _Started = item) -> None:
                actor, command = item.command(step)
                run = item.run
                if budgets.budgeted(run):
                    refusal = await budgets.refusal(run, await flags.would_change(command))
                    if refusal is not None:
                        raise ActionFailed(refusal)
                try:
                    report = await flags.toggle(actor, command)
                except FlagActionError as exc:
                    raise ActionFailed(str(exc)) from exc
                changes.note(
                    item.event.id, report, command, at=utcnow(), action_set_id=run.action_set.id,
                    project=run.action_set.project,
                )  # fmt: skip
                budgets.spend(run, len(report.changed or ()))

            run, event, steps = item.run, item.event, item.steps
            state = (
                await run_actions(item.remaining, perform, nothing_to_save)
                if item.remaining
                else EventState.SUCCESS
            )
            finished.append((event, state, steps))
            run.settle(event_id=event.id, state=state)
            lookups.opened(run, event.id)
            outcomes.append(RunOutcome(run.action_set, run.signal_id, state, steps, event.id))
        await flags.flush()
        await finish_events(conn, finished, now=utcnow())
        await record_changes(conn, changes)
        return outcomes


async def _restore(conn: AsyncConnection, lookups: BatchLookups, resolution: Resolution) -> None:
    """Put back the resolved alert's open run (after the batch's runs, whose changes are written by now)
    and settle the resolving signal's decision (ADR 0024)."""
    decision, action_set = resolution.decision, resolution.action_set
    event_id = await lookups.take_open_event(resolution)
    if event_id is None:
        decision.policy_reason = f"alert {resolution.alert} resolved; no run of this set for it to restore"
        return
    actor = await lookups.actor_of(action_set)
    if actor is None:
        decision.policy_reason = f"the service account {action_set.actor_id} this set runs as does not exist"
        return
    result = await restore_automatically(
        conn, project=action_set.project, action_set_id=action_set.id, event_id=event_id, actor=actor,
        alert=resolution.alert, cause=Cause.RESOLVED,
    )  # fmt: skip
    decision.outcome, decision.event_id = Outcome.RESTORED, event_id
    decision.policy_reason = restore_summary(result)


class _Started:
    """A run whose event is open in this batch: its steps, those still to run, and the flag change each of
    those asks for (None: it cannot run, `command` says why), worked out once for locking and running."""

    __slots__ = ("commands", "event", "remaining", "run", "steps")

    def __init__(
        self, run: PlannedRun, event: EventRecord, steps: list[ActionStep], remaining: list[ActionStep]
    ) -> None:
        self.run, self.event, self.steps, self.remaining = run, event, steps, remaining
        self.commands: dict[int, ToggleCommand | None] = {}
        for step in remaining:
            try:
                self.commands[step.id] = run.command(step)[1]
            except ActionFailed:
                self.commands[step.id] = None

    def command(self, step: ActionStep) -> tuple[Principal, ToggleCommand]:
        """The actor and flag change of `step`, or ActionFailed with why it cannot run."""
        command = self.commands.get(step.id)
        if command is None:
            return self.run.command(step)  # raises ActionFailed with the reason
        assert self.run.actor is not None  # a command exists only when the actor does
        return self.run.actor, command
