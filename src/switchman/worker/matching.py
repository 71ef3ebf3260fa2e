"""Which action sets a claimed signal runs: its source's enabled sets whose filters pass (pure engine).

Action sets per source, the source's sender format (ADR 0021) and actors per id are read once per claimed
batch: a change to any of them takes effect from the next batch (≤ the batch size of signals later), which
keeps the per-signal cost to the matching itself.

With the decision trace on (ADR 0022), every candidate set's verdict becomes a `Decision` in `decisions`
(the runs' ones are settled by the runs), for the caller to write with the batch. A matching set with a
policy (ADR 0023) runs only if its policy allows it: on the embedded store the policy's state is read and
written in the batch's transaction, under the sets' row locks taken by `prepare`; on the remote path each
such decision is a short transaction of its own under the set's lock, recorded at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import policy_store
from switchman.action_sets.decision_store import Decision, find_decision, record_decisions
from switchman.action_sets.service import ActionSetRecord, matching_candidates
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.engine.decisions import Outcome, reasons_of
from switchman.engine.matching import CompiledFilters, compile_filters
from switchman.engine.policy import (
    Policy,
    PolicyState,
    Verdict,
    alert_identity,
    decide,
    renew_time_box,
    resolves,
)
from switchman.service_accounts.service import get_actor
from switchman.signal_endpoints.queue import ClaimedSignal
from switchman.signal_endpoints.sender_format import SenderFormat, filter_view, format_of
from switchman.timeutil import utcnow
from switchman.worker.runs import PlannedRun


@dataclass(frozen=True)
class Resolution:
    """A signal that resolved `alert` for a set that restores on resolve; its `decision` is settled by the
    restore."""

    action_set: ActionSetRecord
    alert: str
    decision: Decision


class BatchLookups:
    """Candidates, policies and actors for one claimed batch, read through `conn` when the batch has a
    transaction of its own (embedded store) or through short transactions otherwise (remote backend)."""

    def __init__(self, db: Database, conn: AsyncConnection | None = None, *, trace: bool = True) -> None:
        self._db = db
        self._conn = conn
        self._trace = trace
        self.decisions: list[Decision] = []
        self.restores: list[Resolution] = []  # resolved alerts to put back, in signal order
        self._candidates: dict[tuple[str, int], list[tuple[ActionSetRecord, CompiledFilters]]] = {}
        self._policies: dict[int, Policy] = {}
        self._states: dict[tuple[int, str], PolicyState] = {}
        self._changed: set[tuple[int, str]] = set()
        self._actors: dict[int, Principal | None] = {}
        self._formats: dict[int, SenderFormat | None] = {}
        self._project_budgets: dict[str, int] = {}

    async def prepare(self, signals: Sequence[ClaimedSignal]) -> None:
        """Embedded store: read the batch's candidate sets; lock the budgets of their projects that have
        one, then the sets with a policy, in order and before anything else of the batch is locked (ADR
        0023, 0024), so that policy decisions and budgets are taken one worker after another."""
        for source, source_id in sorted({(signal.source, signal.source_id) for signal in signals}):
            await self._candidates_of(source, source_id)
        if self._conn is None:
            return
        projects = {action_set.project for found in self._candidates.values() for action_set, _ in found}
        self._project_budgets = await policy_store.project_budgets_of(self._conn, projects)
        await policy_store.lock_project_budgets(self._conn, self._project_budgets)
        if self._policies:
            await policy_store.lock_sets(self._conn, self._policies)

    async def planned_runs(self, signal: ClaimedSignal) -> list[PlannedRun]:
        """The runs `signal` asks for, ascending action set id. The payload is parsed and flattened once
        for all the candidate sets."""
        candidates = await self._candidates_of(signal.source, signal.source_id)
        if not candidates:
            return []
        flat = filter_view(await self._format_of(signal.source_id), signal.payload())
        if not self._trace and not self._policies:
            matched = [action_set for action_set, compiled in candidates if compiled.matches(flat)]
            if not matched:
                return []
            wire = signal.wire()
            return [
                PlannedRun(action_set, wire, await self._actor(action_set.actor_id)) for action_set in matched
            ]
        runs: list[PlannedRun] = []
        wire_signal: dict[str, Any] | None = None
        for action_set, compiled in candidates:
            result = compiled.decide(flat)
            decision = Decision(
                signal_id=signal.id,
                action_set_id=action_set.id,
                project=action_set.project,
                outcome=Outcome.MATCHED if result.matched else Outcome.NOT_MATCHED,
                reasons=reasons_of(result.filters, matched=result.matched),
            )
            policy = self._policies.get(action_set.id)
            if result.matched and policy is not None:
                await self._apply_policy(policy, decision, flat, signal)
            elif policy is not None and policy.restore_on_resolve and resolves(flat):
                self._resolution(action_set, policy, decision, flat)
            if self._trace and not decision.recorded:
                self.decisions.append(decision)
            if decision.outcome == Outcome.MATCHED:
                wire_signal = wire_signal or signal.wire()
                actor = await self._actor(action_set.actor_id)
                traced = self._trace or decision.recorded or policy is not None
                runs.append(PlannedRun(action_set, wire_signal, actor, decision if traced else None))
        return runs

    def _resolution(
        self, action_set: ActionSetRecord, policy: Policy, decision: Decision, flat: Mapping[str, object]
    ) -> None:
        """A resolved alert for a set that restores on resolve: queued for `restores` (embedded store)."""
        alert = alert_identity(policy, flat)
        decision.alert_id = alert or None
        if self._conn is None:
            decision.policy_reason = "restore on resolve needs switchman's own flag store; nothing restored"
        elif not alert:
            decision.policy_reason = "the resolved signal names no alert identity; nothing restored"
        else:
            self.restores.append(Resolution(action_set, alert, decision))

    def opened(self, run: PlannedRun, event_id: int) -> None:
        """A run of a set that restores on resolve or has a time box: the alert's run to put back — the
        first since the alert's last one was put back (a repeated firing finds the flags already changed,
        and what must come back is the state before the first)."""
        policy = self._policies.get(run.action_set.id)
        if policy is None or not policy.keeps_open_run or run.decision is None:
            return
        key = (run.action_set.id, run.decision.alert_id or "")
        state = self._states.get(key, PolicyState())
        if state.open_event is None:
            self._states[key] = replace(state, open_event=event_id)
            self._changed.add(key)

    async def take_open_event(self, resolution: Resolution) -> int | None:
        """The alert's open run (and forget it: it is put back once)."""
        assert self._conn is not None
        key = (resolution.action_set.id, resolution.alert)
        state = self._states.get(key)
        if state is None:
            state = await policy_store.load_state(self._conn, *key)
        self._states[key] = replace(state, open_event=None, revert_due=None, renewed_by=None)
        self._changed.add(key)
        return state.open_event

    def policy_of(self, action_set_id: int) -> Policy | None:
        return self._policies.get(action_set_id)

    def project_budget_of(self, project: str) -> int | None:
        """The project's change budget (embedded store; read and locked by `prepare`)."""
        return self._project_budgets.get(project)

    async def actor_of(self, action_set: ActionSetRecord) -> Principal | None:
        return await self._actor(action_set.actor_id)

    async def _apply_policy(
        self, policy: Policy, decision: Decision, flat: Mapping[str, object], signal: ClaimedSignal
    ) -> None:
        """Settle a matching `decision` by the set's policy: it stays `matched` (run), or becomes
        `suppressed` or `shadow` with the policy's reason."""
        alert = alert_identity(policy, flat)
        decision.alert_id = alert or None
        if self._conn is not None:
            await self._policy_verdict(self._conn, policy, decision, signal.created_at)
        else:
            # Remote backend: decided in a transaction of its own under the set's lock, and recorded
            # with it, so that a signal retaken after a crash finds its verdict instead of deciding again.
            async with self._db.transaction() as conn:
                await policy_store.lock_sets(conn, [decision.action_set_id])
                found = await find_decision(
                    conn, signal_id=decision.signal_id, action_set_id=decision.action_set_id
                )
                if found is not None:  # decided before a crash: the same verdict (a run resumes)
                    ran = found.outcome in (Outcome.MATCHED, Outcome.FAILED)
                    decision.outcome = Outcome.MATCHED if ran else Outcome(found.outcome)
                    decision.policy_reason = found.policy_reason
                    decision.recorded = True
                    return
                # Another worker may have decided for this set since: the state is read afresh.
                self._states.pop((decision.action_set_id, alert), None)
                await self._policy_verdict(conn, policy, decision, signal.created_at)
                now = utcnow()
                await policy_store.save_states(conn, self._take_changed(), now=now)
                await record_decisions(conn, [decision], now=now)
                decision.recorded = True

    async def _policy_verdict(
        self, conn: AsyncConnection, policy: Policy, decision: Decision, at: datetime
    ) -> Verdict:
        key = (decision.action_set_id, decision.alert_id or "")
        state = self._states.get(key)
        if state is None:
            state = await policy_store.load_state(conn, *key)
        decided = decide(policy, state, at)
        self._states[key] = renew_time_box(
            policy, decided.state, at=at, signal_id=decision.signal_id, running=decided.verdict == Verdict.RUN
        )
        self._changed.add(key)
        if decided.verdict != Verdict.RUN or policy.stateful or policy.shadow:
            decision.policy_reason = decided.reason
        if decided.verdict == Verdict.SUPPRESSED:
            decision.outcome = Outcome.SUPPRESSED
        elif decided.verdict == Verdict.SHADOW:
            decision.outcome = Outcome.SHADOW
        return decided.verdict

    async def save_policy_states(self) -> None:
        """Embedded store: write the policy states this batch changed (in its transaction)."""
        if self._conn is not None and self._changed:
            await policy_store.save_states(self._conn, self._take_changed(), now=utcnow())

    def _take_changed(self) -> dict[tuple[int, str], PolicyState]:
        changed = {key: self._states[key] for key in self._changed}
        self._changed.clear()
        return changed

    async def _candidates_of(
        self, source: str, source_id: int
    ) -> list[tuple[ActionSetRecord, CompiledFilters]]:
        key = (source, source_id)
        if key not in self._candidates:
            async with self._reading() as conn:
                sets = await matching_candidates(conn, source=source, source_id=source_id)
                self._policies.update(await policy_store.policies_of(conn, [item.id for item in sets]))
            self._candidates[key] = [(action_set, compile_filters(action_set.filters)) for action_set in sets]
        return self._candidates[key]

    async def _format_of(self, source_id: int) -> SenderFormat | None:
        if source_id not in self._formats:
            async with self._reading() as conn:
                self._formats[source_id] = await format_of(conn, source_id)
        return self._formats[source_id]

    async def _actor(self, actor_id: int) -> Principal | None:
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
