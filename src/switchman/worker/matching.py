"""Which action sets a claimed signal runs: its source's enabled sets whose filters pass (pure engine).

Action sets per source, the source's sender format (ADR 0021) and actors per id are read once per claimed
batch: a change to any of them takes effect from the next batch (≤ the batch size of signals later), which
keeps the per-signal cost to the matching itself.

With the decision trace on (ADR 0022), every candidate set's verdict becomes a `Decision` in `decisions`
(the runs' ones are settled by the runs), for the caller to write with the batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.decision_store import Decision
from switchman.action_sets.service import ActionSetRecord, matching_candidates
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.engine.decisions import Outcome, reasons_of
from switchman.engine.matching import CompiledFilters, compile_filters
from switchman.service_accounts.service import get_actor
from switchman.signal_endpoints.queue import ClaimedSignal
from switchman.signal_endpoints.sender_format import SenderFormat, filter_view, format_of
from switchman.worker.runs import PlannedRun


class BatchLookups:
    """Candidates and actors for one claimed batch, read through `conn` when the batch has a transaction
    of its own (embedded store) or through short reads otherwise."""

    def __init__(self, db: Database, conn: AsyncConnection | None = None, *, trace: bool = True) -> None:
        self._db = db
        self._conn = conn
        self._trace = trace
        self.decisions: list[Decision] = []
        self._candidates: dict[tuple[str, int], list[tuple[ActionSetRecord, CompiledFilters]]] = {}
        self._actors: dict[int, Principal | None] = {}
        self._formats: dict[int, SenderFormat | None] = {}

    async def planned_runs(self, signal: ClaimedSignal) -> list[PlannedRun]:
        """The runs `signal` asks for, ascending action set id. The payload is parsed and flattened once
        for all the candidate sets."""
        candidates = await self._candidates_of(signal.source, signal.source_id)
        if not candidates:
            return []
        flat = filter_view(await self._format_of(signal.source_id), signal.payload())
        if not self._trace:
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
            self.decisions.append(decision)
            if result.matched:
                wire_signal = wire_signal or signal.wire()
                actor = await self._actor(action_set.actor_id)
                runs.append(PlannedRun(action_set, wire_signal, actor, decision))
        return runs

    async def _candidates_of(
        self, source: str, source_id: int
    ) -> list[tuple[ActionSetRecord, CompiledFilters]]:
        key = (source, source_id)
        if key not in self._candidates:
            async with self._reading() as conn:
                sets = await matching_candidates(conn, source=source, source_id=source_id)
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
