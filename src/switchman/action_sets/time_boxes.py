"""Time boxes (ADR 0025): a set's open run is put back when no matching signal renewed it in time.

A run of a set whose policy has `revertAfterSeconds` opens a time box for its alert (the whole set without
`perAlert`): the policy state remembers the run (`open_event_id`), when the box ends (`revert_due_at`) and
the signal that last renewed it. Whoever reverts a box takes the set's row lock, reads the state again and
acts only if the box is still due — so, with any number of workers and replicas, a box is reverted once,
and a signal renewing it at the same moment either comes first (the box is no longer due) or finds it
closed (and its run opens a new one). The revert is `undo.restore_automatically` as the set's own service
account, written with the cleared state and a `reverted` entry in the trace, in one transaction: a crash
before the commit leaves the box due, to be reverted by the next worker.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import policy_store
from switchman.action_sets import repository as repo
from switchman.action_sets.decision_store import Decision, record_revert
from switchman.action_sets.undo import Cause, restore_automatically, restore_summary
from switchman.engine.decisions import Outcome
from switchman.engine.policy import time_box_due, time_box_reason
from switchman.service_accounts.service import get_actor


async def due_time_boxes(conn: AsyncConnection, *, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(set, alert) pairs whose box ended by `now` (to pass to `revert_if_due`, each in a transaction)."""
    return await policy_store.due_time_boxes(conn, now=now, limit=limit)


async def revert_if_due(conn: AsyncConnection, *, action_set_id: int, alert: str, now: datetime) -> bool:
    """Put back the open run of (set, alert) if its time box is still due under the set's lock; whether it
    did. A set or policy deleted meanwhile has no state left, so nothing is due. A disabled set's box is
    still reverted: it is a promise about a change already made."""
    await policy_store.lock_sets(conn, [action_set_id])
    policy = (await policy_store.policies_of(conn, [action_set_id])).get(action_set_id)
    state = await policy_store.load_state(conn, action_set_id, alert)
    action_set = await repo.get_action_set_by_id(conn, action_set_id)
    if policy is None or action_set is None or not time_box_due(state, now):
        return False
    assert state.open_event is not None and state.renewed_by is not None
    closed = replace(state, open_event=None, revert_due=None, renewed_by=None)
    await policy_store.save_states(conn, {(action_set_id, alert): closed}, now=now)
    actor = await get_actor(conn, action_set.actor_id)
    decision = Decision(
        signal_id=state.renewed_by,
        action_set_id=action_set_id,
        project=action_set.project,
        outcome=Outcome.REVERTED,
        reasons=[],
        event_id=state.open_event,
        alert_id=alert or None,
    )
    reason = time_box_reason(policy, state)
    if actor is None:
        decision.policy_reason = (
            f"{reason}; nothing put back: the service account {action_set.actor_id} the set runs as no longer "
            "exists"
        )
    else:
        result = await restore_automatically(
            conn, project=action_set.project, action_set_id=action_set_id, event_id=state.open_event,
            actor=actor, alert=alert, cause=Cause.TIME_BOX,
        )  # fmt: skip
        decision.policy_reason = f"{reason}; {restore_summary(result)}"
    await record_revert(conn, decision, now=now)
    return True
