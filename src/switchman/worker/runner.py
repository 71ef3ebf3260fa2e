"""Running one matched action set for one signal: record the event, perform the actions, save states.

Exactly-once recording: `start_event` inserts the (signal, action set) event or reports that it exists
(unique constraint). An existing event that is still `started` belongs to a run that was interrupted
(its worker died and the signal's lease expired): it is resumed — actions already `success` are kept,
the interrupted one and the rest are run again. Flag on/off sets state, so re-running is harmless.

Two strategies, chosen by the backend:
- **One transaction** (embedded flag store, `TransactionalFlagBackend`): the event, every flag change
  (each in its own savepoint) and the final states commit together. A run is atomic: there is never a
  flag change without its event, and one commit serves the whole run.
- **Step by step** (remote Unleash): the event is committed `started` first, so a slow remote call is
  visible as a running event; an action's outcome is written when it finishes and more actions follow;
  the final state and the last outcome are written together. An action's transient `started` state is
  not written (a resumed run re-runs an unfinished action whatever its recorded state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.events import (
    EventRecord,
    find_event,
    finish_events,
    save_event,
    start_event,
    start_events,
)
from switchman.action_sets.repository import ActionSetRecord
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.engine.actions import InvalidAction, ToggleCommand, command_for
from switchman.engine.executor import ActionFailed, ActionState, ActionStep, EventState, run_actions
from switchman.flags.backend import (
    FlagActionError,
    FlagBackend,
    FlagBatch,
    TagToggleReport,
    TransactionalFlagBackend,
)
from switchman.service_accounts.service import get_actor
from switchman.timeutil import utcnow

log = logging.getLogger(__name__)


# How long after the action timeout the runner gives up on a backend that overran its own deadline.
_GUARD_GRACE_SECONDS = 1.0


class _Unset:
    pass


_UNSET = _Unset()


def _worth_saving(ordered: Sequence[ActionStep]) -> bool:
    """Write progress only when an action has just succeeded and others still follow: a `started` step
    is transient, and a failure or the last success is written with the final state right after."""
    states = [step.state for step in ordered]
    if ActionState.STARTED in states or ActionState.FAILED in states:
        return False
    return ActionState.NOT_STARTED in states and ActionState.SUCCESS in states


def _resumable(event: EventRecord) -> tuple[list[ActionStep], list[ActionStep]]:
    """All steps of the event and those still to run (an interrupted `started` step runs again)."""
    steps = event.steps()
    for step in steps:
        if step.state == ActionState.STARTED:
            step.state = ActionState.NOT_STARTED
    return steps, [step for step in steps if step.state != ActionState.SUCCESS]


async def _no_progress(_ordered: Sequence[ActionStep]) -> None:
    """In one transaction, intermediate states are never visible: nothing to write until the end."""


class ActionSetRunner:
    def __init__(self, *, db: Database, backend: FlagBackend, action_timeout: float) -> None:
        self._db = db
        self._backend = backend
        self._action_timeout = action_timeout

    async def run(
        self,
        action_set: ActionSetRecord,
        signal: dict[str, Any],
        *,
        actor: Principal | _Unset | None = _UNSET,
    ) -> EventState | None:
        """Record and run `action_set` for `signal`; None when another run already finished it.

        `actor` is the action set's service account if the caller already looked it up (None: it
        does not exist); otherwise it is read here.
        """
        if isinstance(actor, _Unset):
            async with self._db.read() as conn:
                actor = await get_actor(conn, action_set.actor_id)
        if self.transactional_backend is not None:
            async with self._db.transaction() as conn:
                return await self.run_in(conn, action_set, signal, actor=actor)
        return await self._run_step_by_step(action_set, signal, actor)

    @property
    def transactional_backend(self) -> TransactionalFlagBackend | None:
        """The backend, when it can work inside the caller's transaction (the embedded store)."""
        return self._backend if isinstance(self._backend, TransactionalFlagBackend) else None

    async def run_in(
        self,
        conn: AsyncConnection,
        action_set: ActionSetRecord,
        signal: dict[str, Any],
        *,
        actor: Principal | None,
    ) -> EventState | None:
        """Record and run `action_set` for `signal` inside the caller's transaction (transactional backend
        only): the event, its flag changes and its final state commit with the caller's transaction."""
        backend = self.transactional_backend
        if backend is None:
            raise TypeError("run_in needs a backend that works inside a transaction")
        # The final save below rewrites the document in this same transaction.
        event = await self._start_or_resume(conn, action_set, signal, write_doc=False)
        if event is None:
            return None
        steps, remaining = _resumable(event)

        async def perform(step: ActionStep) -> None:
            command = _command(step, actor=actor, action_set=action_set)
            assert actor is not None
            await _apply(
                command,
                actor,
                set_enabled=partial(backend.set_enabled_in, conn),
                set_enabled_by_tag=partial(backend.set_enabled_by_tag_in, conn),
            )

        state = await run_actions(remaining, perform, _no_progress) if remaining else EventState.SUCCESS
        await save_event(conn, event, state=state, steps=steps)
        return state

    async def run_batch_in(
        self,
        conn: AsyncConnection,
        runs: Sequence[tuple[ActionSetRecord, dict[str, Any], Principal | None]],
    ) -> list[RunOutcome]:
        """`run_in` for many runs (in the given order) inside the caller's transaction, set-based.

        Same outcomes as calling `run_in` for each run in order: each run's flag changes see the
        changes of the runs before it, a run's first failed action stops it (later ones `not started`),
        every action is checked against its own actor. The difference is the cost: the events are
        started together (`start_events`), the flag changes are decided in memory and written by one
        `FlagBatch.flush`, and the events are written once, with their final documents
        (`finish_events`) — about a dozen statements per batch instead of a dozen per run.
        Returns the outcome of each run that ended here (runs that had already ended are left out), for
        the caller to report with `log_outcome` once the transaction has committed.
        """
        backend = self.transactional_backend
        if backend is None:
            raise TypeError("run_batch_in needs a backend that works inside a transaction")
        events = await start_events(
            conn, [(action_set, signal) for action_set, signal, _ in runs], now=utcnow()
        )
        flags = backend.batch_in(conn)
        await _prepare(flags, runs, events)
        results: list[RunOutcome] = []
        finished: list[tuple[EventRecord, str, Sequence[ActionStep]]] = []
        for (action_set, signal, actor), event in zip(runs, events, strict=True):
            if event is None:
                continue
            steps, remaining = _resumable(event)

            async def perform(
                step: ActionStep, action_set: ActionSetRecord = action_set, actor: Principal | None = actor
            ) -> None:
                command = _command(step, actor=actor, action_set=action_set)
                assert actor is not None
                await _apply(
                    command, actor, set_enabled=flags.set_enabled, set_enabled_by_tag=flags.set_enabled_by_tag
                )

            state = await run_actions(remaining, perform, _no_progress) if remaining else EventState.SUCCESS
            finished.append((event, state, steps))
            results.append(RunOutcome(action_set, int(signal["id"]), state, steps))
        await flags.flush()
        await finish_events(conn, finished, now=utcnow())
        return results

    async def _run_step_by_step(
        self, action_set: ActionSetRecord, signal: dict[str, Any], actor: Principal | None
    ) -> EventState | None:
        async with self._db.transaction() as conn:
            event = await self._start_or_resume(conn, action_set, signal)
        if event is None:
            return None
        steps, remaining = _resumable(event)

        async def perform(step: ActionStep) -> None:
            command = _command(step, actor=actor, action_set=action_set)
            assert actor is not None
            try:
                # A safety net: a remote backend bounds each operation by the same action timeout itself
                # and reports why (timeouts, retries); the grace lets its own message win the race.
                async with asyncio.timeout(self._action_timeout + _GUARD_GRACE_SECONDS):
                    await _apply(
                        command,
                        actor,
                        set_enabled=self._backend.set_enabled,
                        set_enabled_by_tag=self._backend.set_enabled_by_tag,
                    )
            except TimeoutError as exc:
                raise ActionFailed(
                    f"The flag operation did not finish within {self._action_timeout:g} s"
                ) from exc

        async def save_progress(ordered: Sequence[ActionStep]) -> None:
            if _worth_saving(ordered):
                await self._save(event, EventState.STARTED, steps)

        state = await run_actions(remaining, perform, save_progress) if remaining else EventState.SUCCESS
        await self._save(event, state, steps)
        log_outcome(RunOutcome(action_set, int(signal["id"]), state, steps))
        return state

    @staticmethod
    async def _start_or_resume(
        conn: AsyncConnection, action_set: ActionSetRecord, signal: dict[str, Any], *, write_doc: bool = True
    ) -> EventRecord | None:
        """A new `started` event, an interrupted one to resume, or None when the run already ended."""
        event = await start_event(
            conn, action_set=action_set, signal=signal, now=utcnow(), write_doc=write_doc
        )
        if event is not None:
            return event
        existing = await find_event(conn, signal_id=signal["id"], action_set_id=action_set.id)
        if existing is None or existing.state != EventState.STARTED:
            return None
        log.info("resuming interrupted action set event %s", existing.id)
        return existing

    async def _save(self, event: EventRecord, state: EventState, steps: Sequence[ActionStep]) -> None:
        async with self._db.transaction() as conn:
            await save_event(conn, event, state=state, steps=steps)


@dataclass(frozen=True)
class RunOutcome:
    """How one run of an action set for a signal ended."""

    action_set: ActionSetRecord
    signal_id: int
    state: EventState
    steps: Sequence[ActionStep]


def log_outcome(outcome: RunOutcome) -> None:
    """One line per committed run: INFO for a success, WARNING with each failed action's details for a
    failure. Payloads and tokens are never logged; action parameters and details name flags only."""
    action_set = outcome.action_set
    if outcome.state == EventState.SUCCESS:
        log.info(
            "action set %d (%r, project %s) ran for signal %d: success, %d action(s)",
            action_set.id,
            action_set.name,
            action_set.project,
            outcome.signal_id,
            len(outcome.steps),
        )
        return
    if not log.isEnabledFor(logging.WARNING):
        return
    failed = "; ".join(
        f"{step.action} {_target(step)} in {step.execution_params.get('environment')}: {step.details}"
        for step in outcome.steps
        if step.state == ActionState.FAILED
    )
    not_started = sum(1 for step in outcome.steps if step.state == ActionState.NOT_STARTED)
    log.warning(
        "action set %d (%r, project %s) failed for signal %d: %s%s",
        action_set.id,
        action_set.name,
        action_set.project,
        outcome.signal_id,
        failed or "no action failed",
        f"; {not_started} later action(s) not started" if not_started else "",
    )


def _target(step: ActionStep) -> str:
    params = step.execution_params
    if params.get("tag") is not None:
        return f"flags tagged {params.get('tag')}"
    return f"flag {params.get('featureName')}"


async def _prepare(
    flags: FlagBatch,
    runs: Sequence[tuple[ActionSetRecord, dict[str, Any], Principal | None]],
    events: Sequence[EventRecord | None],
) -> None:
    """Lock and read, in one go, every flag the batch's actions name (those of by-tag actions too)."""
    names: set[str] = set()
    projects: set[str] = set()
    for (action_set, _signal, actor), event in zip(runs, events, strict=True):
        if event is None or actor is None:
            continue
        for step in _resumable(event)[1]:
            try:
                command = _command(step, actor=actor, action_set=action_set)
            except ActionFailed:
                continue
            projects.add(command.project)
            if command.feature_name is not None:
                names.add(command.feature_name)
            elif command.tag is not None:
                names.update(
                    await flags.flags_with_tag(
                        project=command.project, tag_type=command.tag[0], tag_value=command.tag[1]
                    )
                )
    await flags.prepare(names, projects)


def _command(step: ActionStep, *, actor: Principal | None, action_set: ActionSetRecord) -> ToggleCommand:
    """The flag change a step asks for, or ActionFailed with the reason it cannot run."""
    if actor is None:
        raise ActionFailed(
            f"The service account {action_set.actor_id} that this action set runs as does not exist"
        )
    try:
        return command_for(step.action, step.execution_params, expected_project=action_set.project)
    except InvalidAction as exc:
        raise ActionFailed(str(exc)) from exc


class _SetEnabled(Protocol):
    async def __call__(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None: ...


class _SetEnabledByTag(Protocol):
    async def __call__(
        self,
        *,
        actor: Principal,
        project: str,
        environment: str,
        tag_type: str,
        tag_value: str,
        enabled: bool,
    ) -> TagToggleReport: ...


async def _apply(
    command: ToggleCommand,
    actor: Principal,
    *,
    set_enabled: _SetEnabled,
    set_enabled_by_tag: _SetEnabledByTag,
) -> None:
    """Perform `command` with the backend's operations (bound to a connection or not)."""
    try:
        if command.tag is not None:
            await set_enabled_by_tag(
                actor=actor,
                project=command.project,
                environment=command.environment,
                tag_type=command.tag[0],
                tag_value=command.tag[1],
                enabled=command.enabled,
            )
        else:
            assert command.feature_name is not None
            await set_enabled(
                actor=actor,
                project=command.project,
                environment=command.environment,
                feature_name=command.feature_name,
                enabled=command.enabled,
            )
    except FlagActionError as exc:
        raise ActionFailed(str(exc)) from exc
