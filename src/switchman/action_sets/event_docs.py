"""Building and reading the stored JSON document of an action set event (pure: no I/O).

An event row keeps its whole `actionSetEventSchema` object as compact JSON text (`doc`), rewritten
on every state change. The listing then concatenates stored documents without touching them.
The document is built from two snapshots taken when the event starts: the signal (`signalSchema`)
and the action set (`actionsSchema`); the action set's actions are decorated with each action's
`state` and `details`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from switchman.engine.executor import ActionState, ActionStep
from switchman.timeutil import iso

_DECORATIONS = ("state", "details")


def decorate_actions(
    actions: Sequence[Mapping[str, Any]], steps: Sequence[ActionStep]
) -> list[dict[str, Any]]:
    """The snapshot's actions (in snapshot order) with the `state`/`details` of their step.

    Actions without a step are `not started` with `details: null`. A step whose id is not an
    action of the snapshot is a programming error (ValueError).
    """
    by_id = {step.id: step for step in steps}
    known = {action["id"] for action in actions}
    unknown = sorted(set(by_id) - known)
    if unknown:
        raise ValueError(f"steps {unknown} are not actions of this action set snapshot")
    decorated: list[dict[str, Any]] = []
    for action in actions:
        step = by_id.get(action["id"])
        decorated.append(
            {
                **action,
                "state": str(step.state) if step is not None else str(ActionState.NOT_STARTED),
                "details": step.details if step is not None else None,
            }
        )
    return decorated


def build_event_doc(
    *,
    event_id: int,
    action_set_id: int,
    signal_id: int,
    created_at: datetime,
    state: str,
    signal: Mapping[str, Any],
    action_set: Mapping[str, Any],
    steps: Sequence[ActionStep],
) -> dict[str, Any]:
    """The `actionSetEventSchema` object of an event in `state` whose actions are at `steps`."""
    return {
        "id": event_id,
        "actionSetId": action_set_id,
        "signalId": signal_id,
        "createdAt": iso(created_at),
        "state": state,
        "signal": signal,
        "actionSet": {**action_set, "actions": decorate_actions(action_set["actions"], steps)},
    }


def dump_doc(doc: Mapping[str, Any]) -> str:
    """Compact JSON text of a document (orjson; `orjson.Fragment` values are embedded verbatim)."""
    return orjson.dumps(doc).decode()


def load_doc(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(text)
    return doc


def snapshot_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The undecorated action set snapshot (`actionsSchema`) inside a stored document."""
    action_set = doc["actionSet"]
    return {
        **action_set,
        "actions": [
            {key: value for key, value in action.items() if key not in _DECORATIONS}
            for action in action_set["actions"]
        ],
    }


def join_docs(docs: Sequence[str]) -> bytes:
    """The `actionSetEventsSchema` body for stored documents already in listing order."""
    return b'{"actionSetEvents":[' + ",".join(docs).encode() + b"]}"
