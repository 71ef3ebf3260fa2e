"""`/api/admin/projects/{projectId}/notification-channels` routes (switchman's own resource, ADR 0027).

ADMIN for all, reads included, as for action sets. Path ids are strings parsed by the handlers, so a
non-integer id answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from switchman.auth.dependencies import AdminPrincipal
from switchman.http import normalize_limit, parse_path_id
from switchman.notifications import service
from switchman.notifications.schemas import (
    CreatedNotificationChannelSchema,
    CreateNotificationChannelSchema,
    NotificationChannelSchema,
    NotificationChannelsSchema,
    NotificationDeliveriesSchema,
    UpdateNotificationChannelSchema,
)
from switchman.openapi import error_responses
from switchman.runtime import runtime_of

router = APIRouter(prefix="/api/admin/projects", tags=["Notifications"])

ProjectId = Annotated[str, Path(alias="projectId", description="The project id, e.g. `default`.")]
ChannelId = Annotated[str, Path(alias="id", description="The notification channel id.")]
_WHAT = "notification channel"
_DOC = (
    "Where a project's action set run outcomes are announced (switchman extension): a Slack-compatible "
    "incoming webhook or a JSON webhook signed with the Standard Webhooks scheme."
)


@router.get(
    "/{projectId}/notification-channels",
    operation_id="get-notification-channels",
    summary="A project's notification channels (switchman extension).",
    description=_DOC + " Ascending id.",
    response_model=NotificationChannelsSchema,
)
async def get_channels(request: Request, project_id: ProjectId, _principal: AdminPrincipal) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return {"notificationChannels": await service.list_channels(conn, project=project_id)}


@router.post(
    "/{projectId}/notification-channels",
    operation_id="create-notification-channel",
    responses=error_responses(409),
    summary="Create a notification channel (switchman extension).",
    description=_DOC + " A `webhook` channel's signing secret is in this answer only. Needs "
    "SWITCHMAN_SECRET_KEY on the server (the URL and the secret are stored sealed).",
    status_code=201,
    response_model=CreatedNotificationChannelSchema,
)
async def create_channel(
    request: Request,
    response: Response,
    project_id: ProjectId,
    payload: CreateNotificationChannelSchema,
    principal: AdminPrincipal,
) -> dict[str, Any]:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        created = await service.create_channel(
            conn, project=project_id, payload=payload, principal=principal, box=ctx.secret_box
        )
    response.headers["Location"] = f"notification-channels/{created['id']}"
    return created


@router.get(
    "/{projectId}/notification-channels/{id}",
    operation_id="get-notification-channel",
    summary="A notification channel (switchman extension).",
    description=_DOC,
    response_model=NotificationChannelSchema,
)
async def get_channel(
    request: Request, project_id: ProjectId, channel_id: ChannelId, _principal: AdminPrincipal
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        return await service.get_channel(
            conn, project=project_id, channel_id=parse_path_id(channel_id, _WHAT)
        )


@router.put(
    "/{projectId}/notification-channels/{id}",
    operation_id="update-notification-channel",
    responses=error_responses(409),
    summary="Replace a notification channel (switchman extension).",
    description=_DOC
    + " `url` left out keeps the stored one; the signing secret is kept; `kind` cannot change.",
    response_model=NotificationChannelSchema,
)
async def update_channel(
    request: Request,
    project_id: ProjectId,
    channel_id: ChannelId,
    payload: UpdateNotificationChannelSchema,
    principal: AdminPrincipal,
) -> dict[str, Any]:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        return await service.update_channel(
            conn, project=project_id, channel_id=parse_path_id(channel_id, _WHAT), payload=payload,
            principal=principal, box=ctx.secret_box,
        )  # fmt: skip


@router.delete(
    "/{projectId}/notification-channels/{id}",
    operation_id="delete-notification-channel",
    summary="Delete a notification channel (switchman extension).",
    description="Its undelivered messages and its delivery log go with it.",
    status_code=200,
    response_class=Response,
)
async def delete_channel(
    request: Request, project_id: ProjectId, channel_id: ChannelId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await service.delete_channel(
            conn, project=project_id, channel_id=parse_path_id(channel_id, _WHAT), principal=principal
        )
    return Response(status_code=200)


@router.get(
    "/{projectId}/notification-channels/{id}/deliveries",
    operation_id="get-notification-channel-deliveries",
    summary="A notification channel's delivery log (switchman extension).",
    description="Every delivery attempt, newest first: the message's `webhookId` (the same in each of its "
    "attempts), the receiver's status code or the error, the duration and where the message is now.",
    response_model=NotificationDeliveriesSchema,
)
async def get_deliveries(
    request: Request,
    project_id: ProjectId,
    channel_id: ChannelId,
    _principal: AdminPrincipal,
    limit: Annotated[str | None, Query(description="At most this many (default 100, at most 1000).")] = None,
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        deliveries = await service.list_deliveries(
            conn, project=project_id, channel_id=parse_path_id(channel_id, _WHAT),
            limit=normalize_limit(limit, default=service.DELIVERIES_LIMIT),
        )  # fmt: skip
    return {"deliveries": deliveries}
