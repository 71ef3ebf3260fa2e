"""Notification channels of a project (ADR 0027): create, read, replace, delete; their delivery log.

Functions run inside the caller's transaction. A channel's URL (a Slack URL is a credential) and a webhook
channel's signing secret are sealed with the server's `SecretBox` before they are stored: the secret is
shown once, in the creation answer; the URL is shown back as its scheme and host only. Neither is written
to the audit log or to the logs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets.service import require_action_set, require_project
from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.errors import VALIDATION_MESSAGE, BadDataError, NameExistsError, NotFoundError
from switchman.notifications import repository as repo
from switchman.notifications.schemas import (
    CreateNotificationChannelSchema,
    NotificationEvent,
    UpdateNotificationChannelSchema,
)
from switchman.notifications.signing import new_secret
from switchman.secret_box import SecretBox
from switchman.timeutil import iso, utcnow

CHANNEL_CREATED = "notification-channel-created"
CHANNEL_UPDATED = "notification-channel-updated"
CHANNEL_DELETED = "notification-channel-deleted"
DELIVERIES_LIMIT = 100


def _wire(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "project": row.project_id,
        "name": row.name,
        "kind": row.kind,
        "url": row.url_hint,
        "actionSetIds": list(row.action_set_ids) if row.action_set_ids is not None else None,
        "events": list(row.events),
        "enabled": bool(row.enabled),
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }


def _audited(wire: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in wire.items() if key not in {"createdAt", "updatedAt"}}


def url_hint(url: str) -> str:
    """What is shown of a URL: its scheme and host (with the port), then `/…`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def _checked_url(url: str) -> str:
    problem = None
    try:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            problem = "must be an http or https URL"
        elif not parts.hostname:
            problem = "must name a host"
        elif any(ch.isspace() for ch in url):
            problem = "must not contain white space"
        else:
            parts.port  # noqa: B018 — raises ValueError on a port that is not a number in range
    except ValueError:
        problem = "is not a valid URL"
    if problem is not None:
        raise BadDataError(VALIDATION_MESSAGE, details=[{"path": "/url", "message": problem}])
    return url


def _require_box(box: SecretBox | None) -> SecretBox:
    if box is None:
        raise BadDataError(
            "This server has no SWITCHMAN_SECRET_KEY, so it cannot keep a notification channel's URL and "
            "signing secret sealed. Set one (`switchman secrets new-key` prints a key) and restart.",
            details=[{"path": "/url", "message": "needs SWITCHMAN_SECRET_KEY on the server"}],
        )
    return box


async def _check_action_sets(conn: AsyncConnection, project: str, ids: list[int] | None) -> list[int] | None:
    if ids is None:
        return None
    for index, action_set_id in enumerate(ids):
        try:
            await require_action_set(conn, project=project, action_set_id=action_set_id)
        except NotFoundError:
            raise BadDataError(
                VALIDATION_MESSAGE,
                details=[{"path": f"/actionSetIds/{index}",
                          "message": f"no action set {action_set_id} in project {project}"}],
            ) from None  # fmt: skip
    return sorted(set(ids))


def _events(events: list[NotificationEvent]) -> list[str]:
    wanted = {str(event) for event in events}
    return [event.value for event in NotificationEvent if event.value in wanted]  # declared order, once


async def _require_channel(conn: AsyncConnection, project: str, channel_id: int) -> Any:
    row = await repo.get_channel(conn, project=project, channel_id=channel_id)
    if row is None:
        raise NotFoundError(
            f"Could not find notification channel with id {channel_id} in project {project!r}"
        )
    return row


async def list_channels(conn: AsyncConnection, *, project: str) -> list[dict[str, Any]]:
    await require_project(conn, project)
    return [_wire(row) for row in await repo.list_channels(conn, project)]


async def get_channel(conn: AsyncConnection, *, project: str, channel_id: int) -> dict[str, Any]:
    await require_project(conn, project)
    return _wire(await _require_channel(conn, project, channel_id))


async def create_channel(
    conn: AsyncConnection,
    *,
    project: str,
    payload: CreateNotificationChannelSchema,
    principal: Principal,
    box: SecretBox | None,
) -> dict[str, Any]:
    """The channel, with `signingSecret` (webhook channels: shown in this answer only)."""
    await require_project(conn, project, lock=True)
    url = _checked_url(payload.url)
    action_set_ids = await _check_action_sets(conn, project, payload.action_set_ids)
    sealer = _require_box(box)
    if await repo.name_taken(conn, project=project, name=payload.name):
        raise NameExistsError(
            f"A notification channel named {payload.name!r} already exists in project {project}."
        )
    secret = new_secret() if payload.kind == "webhook" else None
    now = utcnow()
    channel_id = await repo.insert_channel(
        conn,
        {
            "project_id": project,
            "name": payload.name,
            "kind": payload.kind,
            "sealed_url": sealer.seal(url.encode()),
            "url_hint": url_hint(url),
            "sealed_secret": sealer.seal(secret.encode()) if secret is not None else None,
            "action_set_ids": action_set_ids,
            "events": _events(payload.events),
            "enabled": payload.enabled,
            "created_at": now,
            "updated_at": now,
        },
    )
    created = _wire(await _require_channel(conn, project, channel_id))
    await record_event(conn, type=CHANNEL_CREATED, actor=principal, visible_to_clients=False, project=project,
                       data=_audited(created))  # fmt: skip
    return {**created, "signingSecret": secret}


async def update_channel(
    conn: AsyncConnection,
    *,
    project: str,
    channel_id: int,
    payload: UpdateNotificationChannelSchema,
    principal: Principal,
    box: SecretBox | None,
) -> dict[str, Any]:
    """Replace the channel; `url` absent keeps the stored one, the signing secret is kept."""
    await require_project(conn, project, lock=True)
    before = await _require_channel(conn, project, channel_id)
    if payload.kind != before.kind:
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": "/kind", "message": f"a channel's kind cannot change (it is {before.kind})"}],
        )
    values: dict[str, Any] = {
        "name": payload.name,
        "action_set_ids": await _check_action_sets(conn, project, payload.action_set_ids),
        "events": _events(payload.events),
        "enabled": payload.enabled,
        "updated_at": utcnow(),
    }
    if payload.url is not None:
        url = _checked_url(payload.url)
        values |= {"sealed_url": _require_box(box).seal(url.encode()), "url_hint": url_hint(url)}
    if await repo.name_taken(conn, project=project, name=payload.name, other_than=channel_id):
        raise NameExistsError(
            f"A notification channel named {payload.name!r} already exists in project {project}."
        )
    await repo.update_channel(conn, channel_id, values)
    after = _wire(await _require_channel(conn, project, channel_id))
    await record_event(conn, type=CHANNEL_UPDATED, actor=principal, visible_to_clients=False, project=project,
                       data=_audited(after), pre_data=_audited(_wire(before)))  # fmt: skip
    return after


async def delete_channel(
    conn: AsyncConnection, *, project: str, channel_id: int, principal: Principal
) -> None:
    """Delete the channel with its undelivered messages and its delivery log."""
    await require_project(conn, project, lock=True)
    before = await _require_channel(conn, project, channel_id)
    await repo.delete_channel(conn, channel_id)
    await record_event(conn, type=CHANNEL_DELETED, actor=principal, visible_to_clients=False, project=project,
                       pre_data=_audited(_wire(before)))  # fmt: skip


async def list_deliveries(
    conn: AsyncConnection, *, project: str, channel_id: int, limit: int
) -> list[dict[str, Any]]:
    """The channel's delivery attempts, newest first."""
    await require_project(conn, project)
    await _require_channel(conn, project, channel_id)
    return [
        {
            "id": int(row.id),
            "webhookId": row.webhook_id,
            "event": row.event_type,
            "attempt": int(row.attempt),
            "attemptedAt": iso(row.attempted_at),
            "statusCode": row.status_code,
            "error": row.error,
            "durationMs": int(row.duration_ms),
            "messageState": row.state,
        }
        for row in await repo.deliveries(conn, channel_id=channel_id, limit=limit)
    ]


async def reseal_all(conn: AsyncConnection, box: SecretBox) -> int:
    """Seal every channel's URL and secret with the box's current key (after a key rotation); how many
    channels changed. A value no configured key opens raises SecretBoxError and the caller rolls back."""
    changed = 0
    for row in await repo.sealed_values(conn):
        values: dict[str, Any] = {}
        if not box.sealed_with_current(row.sealed_url):
            values["sealed_url"] = box.seal(box.open(row.sealed_url))
        if row.sealed_secret and not box.sealed_with_current(row.sealed_secret):
            values["sealed_secret"] = box.seal(box.open(row.sealed_secret))
        if values:
            await repo.update_channel(conn, int(row.id), values)
            changed += 1
    return changed
