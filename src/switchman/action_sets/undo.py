"""Undo an action set event (ADR 0024): put back each flag state its run changed, unless changed since.

For each change the run recorded (`event_changes`): if the flag's state is still the one the run left and
no on/off of it was recorded after the run's change, it is set back — as the caller, so the flag audit log
names who undid it; otherwise the change is skipped with the reason (who changed it since, and when; or
that the flag is gone). All in one transaction, at most once per event (a second undo is a 409), and the
undo itself is an audit event linked to the event (`action-set-event-undone`).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import event_changes, event_store
from switchman.action_sets.service import require_action_set
from switchman.audit.log import last_toggle_since, record_event
from switchman.auth.access import check_permission
from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.engine.executor import EventState
from switchman.errors import ConflictError, NotFoundError, SwitchmanError
from switchman.flags.toggles import ToggleBatch
from switchman.notifications.outbox import enqueue_put_back
from switchman.notifications.schemas import NotificationEvent
from switchman.timeutil import iso, utcnow

EVENT_UNDONE = "action-set-event-undone"
EVENT_RESTORED = "action-set-event-restored"
EVENT_REVERTED = "action-set-event-reverted"


class Cause(Enum):
    """Why the worker puts a run back (named in the undo record and the audit log)."""

    RESOLVED = "restore on resolve"
    TIME_BOX = "time box"


_AUDIT_TYPES = {Cause.RESOLVED: EVENT_RESTORED, Cause.TIME_BOX: EVENT_REVERTED}
_NOTIFIED_AS = {Cause.RESOLVED: NotificationEvent.RESTORED, Cause.TIME_BOX: NotificationEvent.REVERTED}


async def undo_event(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int,
    event_id: int,
    principal: Principal,
    embedded: bool,
) -> dict[str, Any]:
    """`undoActionSetEventResultSchema`: what was put back and what was skipped, and why."""
    await require_action_set(conn, project=project, action_set_id=action_set_id, lock=True)
    event = await event_store.event_by_id(conn, event_id=event_id, action_set_id=action_set_id)
    if event is None:
        raise NotFoundError(f"Could not find event {event_id} of action set {action_set_id}.")
    if not embedded:
        raise ConflictError(
            "Undo needs switchman's own flag store: a remote Unleash does not tell which flags a run changed."
        )
    if event.state == EventState.STARTED:
        raise ConflictError(f"Event {event_id} is still running; undo it once it has ended.")
    done = await event_changes.undo_of(conn, event_id)
    if done is not None:
        raise ConflictError(
            f"Event {event_id} was already undone by {done.undone_by} at {iso(done.created_at)}."
        )
    check_permission(principal, UPDATE_FEATURE_ENVIRONMENT)
    result = await put_back(
        conn, project=project, action_set_id=action_set_id, event_id=event_id, actor=principal
    )
    now = utcnow()
    await event_changes.record_undo(conn, event_id, by=principal.username, result=result, now=now)
    await record_event(
        conn, type=EVENT_UNDONE, actor=principal, visible_to_clients=False, project=project, data=result
    )
    await enqueue_put_back(
        conn, event=NotificationEvent.UNDONE, project=project, action_set_id=action_set_id, result=result,
        by=principal.username,
    )  # fmt: skip
    return {**result, "undoneAt": iso(now), "undoneBy": principal.username}


async def put_back(
    conn: AsyncConnection, *, project: str, action_set_id: int, event_id: int, actor: Principal
) -> dict[str, Any]:
    """Set each flag state the event's run changed back, as `actor`, unless changed since: `{eventId,
    actionSetId, restored, skipped}`. Written with the transaction; the caller records why it was done."""
    batch = ToggleBatch(conn)
    restored: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for change in await event_changes.changes_of(conn, event_id):
        where = {"featureName": change.feature_name, "environment": change.environment}
        reason = await _why_not(conn, batch, project, change)
        if reason is None:
            try:
                await batch.set_enabled(
                    actor=actor,
                    project=project,
                    feature_name=change.feature_name,
                    environment=change.environment,
                    enabled=change.enabled_before,
                )
            except SwitchmanError as exc:
                reason = exc.message
        if reason is None:
            restored.append({**where, "enabled": change.enabled_before})
        else:
            skipped.append({**where, "reason": reason})
    await batch.flush()
    return {"eventId": event_id, "actionSetId": action_set_id, "restored": restored, "skipped": skipped}


async def restore_automatically(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int,
    event_id: int,
    actor: Principal,
    alert: str,
    cause: Cause,
) -> dict[str, Any]:
    """The worker's put-back of an alert's open run, on its resolution or at the end of its time box (ADR
    0024, 0025): `put_back` as the set's own service account, recorded as the event's undo (so it is done
    once) and audited; a run undone already by someone is left alone (`skipped` says so)."""
    done = await event_changes.undo_of(conn, event_id)
    if done is not None:
        return {
            "eventId": event_id,
            "actionSetId": action_set_id,
            "restored": [],
            "skipped": [{"featureName": "*", "environment": "*",
                         "reason": f"event {event_id} was already undone by {done.undone_by}"}],
        }  # fmt: skip
    result = await put_back(
        conn, project=project, action_set_id=action_set_id, event_id=event_id, actor=actor
    )
    now = utcnow()
    await event_changes.record_undo(
        conn, event_id, by=f"{actor.username} ({cause.value})", result=result, now=now
    )
    await record_event(
        conn, type=_AUDIT_TYPES[cause], actor=actor, visible_to_clients=False, project=project,
        data={**result, "alertId": alert},
    )  # fmt: skip
    await enqueue_put_back(
        conn, event=_NOTIFIED_AS[cause], project=project, action_set_id=action_set_id, result=result,
        by=f"{actor.username} ({cause.value})", alert=alert,
    )  # fmt: skip
    return result


def restore_summary(result: dict[str, Any]) -> str:
    """One line for the trace: what a restore put back and what it left, and why."""

    def flag(item: dict[str, Any]) -> str:
        return f"{item['featureName']} in {item['environment']}"

    parts = [f"restored event {result['eventId']}:"]
    parts.append(
        ", ".join(f"{flag(r)} back {'on' if r['enabled'] else 'off'}" for r in result["restored"])
        or "nothing"
    )
    if result["skipped"]:
        parts.append("; skipped: " + ", ".join(f"{flag(s)} ({s['reason']})" for s in result["skipped"]))
    return " ".join(parts[:2]) + ("" if len(parts) < 3 else parts[2])


async def _why_not(
    conn: AsyncConnection, batch: ToggleBatch, project: str, change: event_changes.FlagChange
) -> str | None:
    """Why the change cannot be put back (None: it can)."""
    state = await batch.state_of(
        project=project, feature_name=change.feature_name, environment=change.environment
    )
    if state is None:
        return f"the flag {change.feature_name} no longer exists in project {project} (or is archived)"
    later = await last_toggle_since(
        conn, feature_name=change.feature_name, environment=change.environment, since=change.changed_at
    )
    if later is not None:
        turned = "on" if later.type.endswith("enabled") else "off"
        return f"changed since: turned {turned} by {later.created_by} at {iso(later.created_at)}"
    if state != change.enabled_after:
        return "its state is no longer the one the run left"
    return None
