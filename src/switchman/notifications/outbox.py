"""Writing notifications into the outbox (ADR 0027), inside the transaction that made the outcome.

The worker calls `enqueue_runs` once per committed batch (embedded store) or with each run's final save
(remote Unleash); undo, restore on resolve and time boxes call `enqueue_put_back`. Each looks up the enabled
channels of the projects concerned with ONE query (a batch's cost when no channel exists: that query on a
small table) and writes one message per (outcome, channel that wants it), its `webhook-id` fixed here. A
rollback takes the messages with it, a commit makes them as durable as the run: nothing is announced that
did not happen, nothing that happened is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.service import require_action_set
from switchman.engine.executor import ActionStep, EventState
from switchman.errors import NotFoundError
from switchman.notifications import repository as repo
from switchman.notifications.schemas import NotificationEvent
from switchman.timeutil import utcnow


class _ActionSet(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def project(self) -> str: ...


class Run(Protocol):
    """How a run ended, as the worker knows it (`worker.runs.RunOutcome`)."""

    @property
    def action_set(self) -> _ActionSet: ...
    @property
    def signal_id(self) -> int: ...
    @property
    def event_id(self) -> int | None: ...
    @property
    def state(self) -> str: ...
    @property
    def steps(self) -> Sequence[ActionStep]: ...


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


async def enqueue_runs(conn: AsyncConnection, runs: Sequence[Run]) -> int:
    """Messages for the runs that ended (success or failure) to the channels that want them; how many."""
    if not runs:
        return 0
    channels = await repo.enabled_channels(conn, (run.action_set.project for run in runs))
    if not channels:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for run in runs:
        event = NotificationEvent.SUCCESS if run.state == EventState.SUCCESS else NotificationEvent.FAILURE
        wanting = _wanting(
            channels, project=run.action_set.project, action_set_id=run.action_set.id, event=event
        )
        if not wanting:
            continue
        payload = {
            "project": run.action_set.project,
            "actionSetId": run.action_set.id,
            "actionSetName": run.action_set.name,
            "eventId": run.event_id,
            "signalId": run.signal_id,
            "state": str(run.state),
            "actions": [_action(step) for step in run.steps],
        }
        rows += [_message(channel_id, event, payload, now) for channel_id in wanting]
    await repo.insert_messages(conn, rows)
    return len(rows)


async def enqueue_put_back(
    conn: AsyncConnection,
    *,
    event: NotificationEvent,
    project: str,
    action_set_id: int,
    result: dict[str, Any],
    by: str,
    alert: str | None = None,
) -> int:
    """Messages for a run put back (`restored`, `reverted` or `undone`; `result` is `undo.put_back`'s)."""
    channels = await repo.enabled_channels(conn, [project])
    wanting = _wanting(channels, project=project, action_set_id=action_set_id, event=event)
    if not wanting:
        return 0
    try:
        name = (await require_action_set(conn, project=project, action_set_id=action_set_id)).name
    except NotFoundError:
        name = f"#{action_set_id}"
    payload = {
        "project": project,
        "actionSetId": action_set_id,
        "actionSetName": name,
        "eventId": result.get("eventId"),
        "alertId": alert or None,
        "by": by,
        "restored": list(result.get("restored", [])),
        "skipped": list(result.get("skipped", [])),
    }
    now = utcnow()
    rows = [_message(channel_id, event, payload, now) for channel_id in wanting]
    await repo.insert_messages(conn, rows)
    return len(rows)


def _wanting(
    channels: Iterable[Any], *, project: str, action_set_id: int, event: NotificationEvent
) -> list[int]:
    return [
        int(channel.id)
        for channel in channels
        if channel.project_id == project
        and event.value in channel.events
        and (channel.action_set_ids is None or action_set_id in channel.action_set_ids)
    ]


def _action(step: ActionStep) -> dict[str, Any]:
    params = step.execution_params
    item: dict[str, Any] = {
        "action": step.action,
        "environment": params.get("environment"),
        "state": str(step.state),
        "details": step.details,
    }
    if params.get("tag") is not None:
        item["tag"] = params.get("tag")
    else:
        item["featureName"] = params.get("featureName")
    return item


def _message(
    channel_id: int, event: NotificationEvent, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "webhook_id": new_webhook_id(),
        "event_type": event.value,
        "payload": payload,
        "state": repo.PENDING,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }
