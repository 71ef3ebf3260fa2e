"""Wire types of notification channels and their delivery log (switchman's own resources, ADR 0027)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema

from switchman.schemas import RequestModel, WireModel

DateTimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class NotificationEvent(StrEnum):
    """The outcomes a channel can be told about."""

    SUCCESS = "success"  # a run whose actions all succeeded
    FAILURE = "failure"  # a run that failed
    RESTORED = "restored"  # a run put back when its alert resolved (restore on resolve, ADR 0024)
    REVERTED = "reverted"  # a run put back when its time box ended (ADR 0025)
    UNDONE = "undone"  # a run undone by someone through the API (ADR 0024)


ALL_EVENTS = [event.value for event in NotificationEvent]
ChannelKind = Literal["slack", "webhook"]
_URL_MAX = 2000


class CreateNotificationChannelSchema(RequestModel):
    __qualname__ = "createNotificationChannelSchema"

    name: StrictStr = Field(min_length=1, max_length=255, description="Unique within the project.")
    kind: ChannelKind = Field(
        description="`slack`: a Slack-compatible incoming webhook; `webhook`: a JSON POST signed with the "
        "Standard Webhooks scheme."
    )
    url: StrictStr = Field(
        max_length=_URL_MAX,
        description="Where to POST (http or https). Stored sealed and never shown again in full.",
    )
    action_set_ids: list[StrictInt] | None = Field(
        default=None, max_length=1000, description="Only these action sets of the project; null: every one."
    )
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(NotificationEvent),
        min_length=1,
        description="The outcomes to announce; every one by default.",
    )
    enabled: StrictBool = True


class UpdateNotificationChannelSchema(RequestModel):
    """A whole channel, as on creation, except that `url` may be left out to keep the stored one (a
    channel's kind cannot change: create another)."""

    __qualname__ = "updateNotificationChannelSchema"

    name: StrictStr = Field(min_length=1, max_length=255)
    kind: ChannelKind
    url: StrictStr | None = Field(
        default=None, max_length=_URL_MAX, description="Absent: keep the stored URL."
    )
    action_set_ids: list[StrictInt] | None = Field(default=None, max_length=1000)
    events: list[NotificationEvent] = Field(default_factory=lambda: list(NotificationEvent), min_length=1)
    enabled: StrictBool = True


class _StrictWire(WireModel):
    model_config = ConfigDict(extra="forbid")


class NotificationChannelSchema(_StrictWire):
    __qualname__ = "notificationChannelSchema"

    id: int
    project: str
    name: str
    kind: ChannelKind
    url: str = Field(description="Scheme and host only, followed by `/…`: the full URL is not shown again.")
    action_set_ids: list[int] | None
    events: list[NotificationEvent]
    enabled: bool
    created_at: DateTimeText
    updated_at: DateTimeText


class CreatedNotificationChannelSchema(NotificationChannelSchema):
    __qualname__ = "createdNotificationChannelSchema"

    signing_secret: str | None = Field(
        description="`webhook` channels: the Standard Webhooks signing secret (`whsec_…`), shown only in this "
        "answer; null for `slack`."
    )


class NotificationChannelsSchema(_StrictWire):
    __qualname__ = "notificationChannelsSchema"

    notification_channels: list[NotificationChannelSchema]


class NotificationDeliverySchema(_StrictWire):
    __qualname__ = "notificationDeliverySchema"

    id: int
    webhook_id: str = Field(description="The message's id, the same in every attempt (`webhook-id`).")
    event: str
    attempt: int
    attempted_at: DateTimeText
    status_code: int | None = Field(description="The receiver's answer; null when none came (see `error`).")
    error: str | None
    duration_ms: int
    message_state: Literal["pending", "delivered", "failed"] = Field(
        description="Where the message is now: `pending` (to be retried), `delivered` or `failed` (given up)."
    )


class NotificationDeliveriesSchema(_StrictWire):
    __qualname__ = "notificationDeliveriesSchema"

    deliveries: list[NotificationDeliverySchema]
