"""Running one matched action set for one signal: record the event, perform the actions, save states.

Exactly-once recording: `start_event` inserts the (signal, action set) event or reports that it exists
(unique constraint). An existing event that is still `started` belongs to a run that was interrupted
(its worker died and the signal's lease expired): it is resumed — actions already `success` are kept,
the interrupted one and the rest are run again. Flag on/off sets state, so re-running is harmless.

What is written when: the event is inserted `started` (every action `not started`); an action's
outcome is written when it finishes and more actions follow; the final state and the last outcome are
written together. An action's transient `started` state is not written: it would cost a commit per
action for a state that lasts milliseconds with the embedded store, and a resumed run re-runs an
unfinished action whatever its recorded state. Three commits for a one-action run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from switchman.action_sets.events import EventRecord, find_event, save_event, start_event
from switchman.action_sets.repository import ActionSetRecord
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.engine.actions import InvalidAction, command_for
from switchman.engine.executor import ActionFailed, ActionState, ActionStep, EventState, run_actions
from switchman.flags.backend import FlagActionError, FlagBackend
from switchman.service_accounts.service import get_actor
from switchman.timeutil import utcnow

log = logging.getLogger(__name__)


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
        async with self._db.transaction() as conn:
            event = await start_event(conn, action_set=action_set, signal=signal, now=utcnow())
        if event is None:
            async with self._db.read() as conn:
                event = await find_event(conn, signal_id=signal["id"], action_set_id=action_set.id)
            if event is None or event.state != EventState.STARTED:
                return None
            log.info("resuming interrupted action set event %s", event.id)
        steps = event.steps()
        for step in steps:
            if step.state == ActionState.STARTED:
                step.state = ActionState.NOT_STARTED
        remaining = [step for step in steps if step.state != ActionState.SUCCESS]

        if isinstance(actor, _Unset):
            async with self._db.read() as conn:
                actor = await get_actor(conn, action_set.actor_id)
        resolved_actor = actor

        async def perform(step: ActionStep) -> None:
            await self._perform(step, actor=resolved_actor, action_set=action_set)

        async def save_progress(ordered: Sequence[ActionStep]) -> None:
            if _worth_saving(ordered):
                await self._save(event, EventState.STARTED, steps)

        state = await run_actions(remaining, perform, save_progress) if remaining else EventState.SUCCESS
        await self._save(event, state, steps)
        return state

    async def _perform(
        self, step: ActionStep, *, actor: Principal | None, action_set: ActionSetRecord
    ) -> None:
        if actor is None:
            raise ActionFailed(
                f"The service account {action_set.actor_id} that this action set runs as does not exist"
            )
        try:
            command = command_for(step.action, step.execution_params, expected_project=action_set.project)
        except InvalidAction as exc:
            raise ActionFailed(str(exc)) from exc
        try:
            async with asyncio.timeout(self._action_timeout):
                if command.tag is not None:
                    await self._backend.set_enabled_by_tag(
                        actor=actor,
                        project=command.project,
                        environment=command.environment,
                        tag_type=command.tag[0],
                        tag_value=command.tag[1],
                        enabled=command.enabled,
                    )
                else:
                    assert command.feature_name is not None
                    await self._backend.set_enabled(
                        actor=actor,
                        project=command.project,
                        environment=command.environment,
                        feature_name=command.feature_name,
                        enabled=command.enabled,
                    )
        except FlagActionError as exc:
            raise ActionFailed(str(exc)) from exc
        except TimeoutError as exc:
            raise ActionFailed(
                f"The flag operation did not finish within {self._action_timeout:g} s"
            ) from exc

    async def _save(self, event: EventRecord, state: EventState, steps: Sequence[ActionStep]) -> None:
        async with self._db.transaction() as conn:
            await save_event(conn, event, state=state, steps=steps)
