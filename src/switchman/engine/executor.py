"""Running an action set's actions in order and keeping their states (spec §5.6, §5.8).

The run is pure: performing an action and recording progress are callbacks, so this module
knows nothing of flags, databases or clocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

MAX_DETAILS_LENGTH = 255  # Unleash stored `details` in varchar(255)
_ELLIPSIS = "…"


class ActionState(StrEnum):
    """State of one action inside an action set event (wire values, note the space)."""

    NOT_STARTED = "not started"
    STARTED = "started"
    SUCCESS = "success"
    FAILED = "failed"


class EventState(StrEnum):
    """State of an action set event."""

    STARTED = "started"
    SUCCESS = "success"
    FAILED = "failed"


class ActionFailed(Exception):
    """Raised by a `perform` callback for an expected failure; its message becomes `details`
    verbatim (other exceptions are shown as `TypeName: message`)."""


class InvariantViolation(AssertionError):
    """The action states contradict the event state (see `check_invariants`)."""


@dataclass
class ActionStep:
    """One action of a run, with its live state."""

    id: int
    action: str
    sort_order: int
    execution_params: dict[str, object]
    state: ActionState = ActionState.NOT_STARTED
    details: str | None = None


def order_steps(steps: Iterable[ActionStep]) -> list[ActionStep]:
    """Run order: ascending `sort_order`, ties by ascending `id` (our choice Q-21)."""
    return sorted(steps, key=lambda step: (step.sort_order, step.id))


def truncate_details(text: str) -> str:
    """`text` cut to at most 255 characters, ending in "…" when it was cut."""
    if len(text) <= MAX_DETAILS_LENGTH:
        return text
    return text[: MAX_DETAILS_LENGTH - len(_ELLIPSIS)] + _ELLIPSIS


def failure_details(error: Exception) -> str:
    """The `details` text for an action that raised `error`."""
    message = str(error)
    if not isinstance(error, ActionFailed):
        name = type(error).__name__
        message = f"{name}: {message}" if message else name
    return truncate_details(message)


async def run_actions(
    steps: Sequence[ActionStep],
    perform: Callable[[ActionStep], Awaitable[None]],
    on_progress: Callable[[Sequence[ActionStep]], Awaitable[None]],
) -> EventState:
    """Run `steps` in `order_steps` order, one at a time, and return the event's final state.

    Each step goes `started` (reported), then `perform(step)`; on return it becomes `success`
    (reported); if `perform` raises an `Exception` it becomes `failed` with `failure_details`
    (reported) and the run stops: later steps stay `not started` with no details.
    `on_progress` gets all steps in run order after every change. Exceptions from `on_progress`,
    and `BaseException`s such as cancellation, propagate and leave the current step `started`
    (a recovery sweep settles such events). All steps must start `not started`.
    """
    ordered = order_steps(steps)
    if any(step.state != ActionState.NOT_STARTED for step in ordered):
        raise ValueError("every step must start in state 'not started'")
    for step in ordered:
        step.state = ActionState.STARTED
        await on_progress(ordered)
        try:
            await perform(step)
        except Exception as error:
            step.state = ActionState.FAILED
            step.details = failure_details(error)
            await on_progress(ordered)
            return EventState.FAILED
        step.state = ActionState.SUCCESS
        await on_progress(ordered)
    return EventState.SUCCESS


def check_invariants(steps: Sequence[ActionStep], state: EventState) -> None:
    """Raise `InvariantViolation` unless the step states (in run order) fit the event state.

    - `success`: every step `success`;
    - `failed`: steps `success`… then exactly one `failed`, then `not started`… without details;
    - `started`: steps `success`… then at most one `started`, then `not started`….
    """
    states = [step.state for step in order_steps(steps)]
    done = 0
    while done < len(states) and states[done] == ActionState.SUCCESS:
        done += 1
    rest = states[done:]
    if state == EventState.SUCCESS:
        valid = not rest
    elif state == EventState.FAILED:
        valid = bool(rest) and rest[0] == ActionState.FAILED and _all_not_started(rest[1:])
        valid = valid and all(step.details is None for step in order_steps(steps)[done + 1 :])
    else:
        valid = _all_not_started(rest[1:] if rest and rest[0] == ActionState.STARTED else rest)
    if not valid:
        raise InvariantViolation(f"event {str(state)!r} with action states {[str(s) for s in states]}")


def _all_not_started(states: Sequence[ActionState]) -> bool:
    return all(state == ActionState.NOT_STARTED for state in states)
