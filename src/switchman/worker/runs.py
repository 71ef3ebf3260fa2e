"""What both worker strategies share about one run: an action set matched by a signal, run as its actor.

Exactly-once recording: a run's event is inserted per (signal, action set) or found to exist (unique
constraint). An existing event that is still `started` belongs to a run that was interrupted (its worker
died and the signal's lease expired): it is resumed — actions already `success` are kept, the interrupted
one and the rest are run again. Flag on/off sets state, so re-running is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from switchman.action_sets.decision_store import Decision
from switchman.action_sets.event_store import EventRecord
from switchman.action_sets.service import ActionSetRecord
from switchman.auth.principal import Principal
from switchman.engine.actions import InvalidAction, ToggleCommand, command_for
from switchman.engine.decisions import Outcome
from switchman.engine.executor import ActionFailed, ActionState, ActionStep, EventState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedRun:
    """An action set whose filters passed for a signal, with the service account it runs as (None: the
    account does not exist, so every action fails saying so)."""

    action_set: ActionSetRecord
    signal: dict[str, Any]  # the signal as the event stores it (`ClaimedSignal.wire()`)
    actor: Principal | None
    decision: Decision | None = None  # its trace record, settled by how the run ends (None: trace off)

    def settle(self, *, event_id: int | None, state: str) -> None:
        """Record how the run ended in its decision: the event, and `failed` when the run failed."""
        if self.decision is not None:
            self.decision.event_id = event_id
            if state == EventState.FAILED:
                self.decision.outcome = Outcome.FAILED

    @property
    def signal_id(self) -> int:
        return int(self.signal["id"])

    def command(self, step: ActionStep) -> tuple[Principal, ToggleCommand]:
        """The actor and the flag change `step` asks for, or ActionFailed with why it cannot run."""
        if self.actor is None:
            raise ActionFailed(
                f"The service account {self.action_set.actor_id} that this action set runs as does not exist"
            )
        try:
            command = command_for(
                step.action, step.execution_params, expected_project=self.action_set.project
            )
        except InvalidAction as exc:
            raise ActionFailed(str(exc)) from exc
        return self.actor, command


def resumable(event: EventRecord) -> tuple[list[ActionStep], list[ActionStep]]:
    """All steps of the event and those still to run (an interrupted `started` step runs again)."""
    steps = event.steps()
    for step in steps:
        if step.state == ActionState.STARTED:
            step.state = ActionState.NOT_STARTED
    return steps, [step for step in steps if step.state != ActionState.SUCCESS]


async def nothing_to_save(_ordered: Sequence[ActionStep]) -> None:
    """Progress callback of a run inside one transaction: intermediate states are never visible."""


@dataclass(frozen=True)
class RunOutcome:
    """How one run of an action set for a signal ended."""

    action_set: ActionSetRecord
    signal_id: int
    state: EventState
    steps: Sequence[ActionStep]
    event_id: int | None = None  # the run's action set event (announced by notifications, ADR 0027)


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
