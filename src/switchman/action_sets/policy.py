"""Action set policies (ADR 0023): read, set and remove an action set's policy.

A set without a policy behaves exactly as Unleash's (every match runs). The policy is switchman's own
sub-resource, `…/actions/{id}/policy`; Unleash's action set schema is untouched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import policy_store
from switchman.action_sets.schemas import ActionSetPolicySchema
from switchman.action_sets.service import policy_from_schema, require_action_set
from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.errors import VALIDATION_MESSAGE, BadDataError, NotFoundError
from switchman.timeutil import iso, utcnow

# Audit log event types (switchman's own; Unleash has no action set policies).
POLICY_UPDATED = "action-set-policy-updated"
POLICY_DELETED = "action-set-policy-deleted"


def _wire(action_set_id: int, row: Any) -> dict[str, Any]:
    return {
        "actionSetId": action_set_id,
        "shadow": bool(row.shadow),
        "cooldownSeconds": row.cooldown_seconds,
        "windowCount": row.window_count,
        "windowSeconds": row.window_seconds,
        "perAlert": bool(row.per_alert),
        "alertKey": row.alert_key,
        "restoreOnResolve": bool(row.restore_on_resolve),
        "maxChangesPerHour": row.max_changes_per_hour,
        "revertAfterSeconds": row.revert_after_seconds,
        "updatedAt": iso(row.updated_at),
    }


async def get_policy(conn: AsyncConnection, *, project: str, action_set_id: int) -> dict[str, Any]:
    await require_action_set(conn, project=project, action_set_id=action_set_id)
    row = await policy_store.get_policy_row(conn, action_set_id)
    if row is None:
        raise NotFoundError(
            f"Action set {action_set_id} has no policy (it runs on every match, as Unleash's)."
        )
    return _wire(action_set_id, row)


async def put_policy(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int,
    body: ActionSetPolicySchema,
    principal: Principal,
    embedded: bool = True,
) -> dict[str, Any]:
    """Set the policy (audited). Changing it starts its counting afresh (the stored cooldown and window
    state go; runs still to be put back stay, `restart_counting`). Restore on resolve, change budgets and
    time boxes need the flag changes only switchman's own store reports (`embedded`)."""
    await require_action_set(conn, project=project, action_set_id=action_set_id, lock=True)
    if not embedded:
        needs_changes = {
            "/restoreOnResolve": body.restore_on_resolve,
            "/maxChangesPerHour": body.max_changes_per_hour is not None,
            "/revertAfterSeconds": body.revert_after_seconds is not None,
        }
        details = [
            {"path": path, "message": "needs switchman's own flag store: a remote Unleash does not tell which "
             "flags a run changed"}
            for path, used in needs_changes.items() if used
        ]  # fmt: skip
        if details:
            raise BadDataError(VALIDATION_MESSAGE, details=details)
    policy = policy_from_schema(body)
    previous = await policy_store.get_policy_row(conn, action_set_id)
    if previous is not None and policy_store.policy_of_row(previous) != policy:
        await policy_store.restart_counting(conn, action_set_id, policy)
    await policy_store.put_policy(conn, action_set_id, policy, now=utcnow())
    after = _wire(action_set_id, await policy_store.get_policy_row(conn, action_set_id))
    before = _wire(action_set_id, previous) if previous is not None else None
    await record_event(conn, type=POLICY_UPDATED, actor=principal, visible_to_clients=False, project=project,
                       data=after, pre_data=before)  # fmt: skip
    return after


async def delete_policy(
    conn: AsyncConnection, *, project: str, action_set_id: int, principal: Principal
) -> None:
    """Remove the policy (audited): the set runs on every match again, as Unleash's."""
    await require_action_set(conn, project=project, action_set_id=action_set_id, lock=True)
    previous = await policy_store.get_policy_row(conn, action_set_id)
    if previous is None or not await policy_store.delete_policy(conn, action_set_id):
        raise NotFoundError(f"Action set {action_set_id} has no policy.")
    await record_event(conn, type=POLICY_DELETED, actor=principal, visible_to_clients=False, project=project,
                       pre_data=_wire(action_set_id, previous))  # fmt: skip
