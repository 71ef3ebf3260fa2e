"""The two message formats (ADR 0027): a signed JSON webhook body and a Slack incoming-webhook message.

Both are rendered from the payload stored in the outbox when the outcome happened, so every attempt of a
message sends the same body. `link` is the event's page in the console (`SWITCHMAN_PUBLIC_URL`).
"""

from __future__ import annotations

from typing import Any

import orjson

TYPE_PREFIX = "action-set-event."
_HEADLINES = {
    "success": "ran",
    "failure": "failed",
    "restored": "was put back: its alert resolved",
    "reverted": "was put back: its time box ended",
    "undone": "was undone",
}
_MAX_SLACK_ITEMS = 20  # Slack allows 50 blocks; a longer run is summarised


def event_link(base_url: str, payload: dict[str, Any]) -> str:
    return f"{base_url}/ui/projects/{payload['project']}/actions/{payload['actionSetId']}"


def webhook_body(*, event: str, created_at: str, payload: dict[str, Any], link: str) -> bytes:
    """Standard Webhooks' recommended shape: `{type, timestamp, data}`."""
    return orjson.dumps(
        {"type": TYPE_PREFIX + event, "timestamp": created_at, "data": {**payload, "url": link}}
    )


def slack_body(*, event: str, payload: dict[str, Any], link: str) -> bytes:
    headline = (
        f"Action set *{_escape(payload['actionSetName'])}* (project `{_escape(payload['project'])}`) "
        f"{_HEADLINES.get(event, event)}"
    )
    if payload.get("eventId") is not None:
        headline += f" — event {payload['eventId']}"
    lines = [_action_line(item) for item in payload.get("actions", [])]
    lines += [_restored_line(item) for item in payload.get("restored", [])]
    lines += [_skipped_line(item) for item in payload.get("skipped", [])]
    if payload.get("by"):
        lines.append(f"by {_escape(str(payload['by']))}")
    if len(lines) > _MAX_SLACK_ITEMS:
        lines = [*lines[:_MAX_SLACK_ITEMS], f"… and {len(lines) - _MAX_SLACK_ITEMS} more"]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in switchman>"}]}
    )
    return orjson.dumps({"text": _plain(headline), "blocks": blocks})


def _action_line(item: dict[str, Any]) -> str:
    target = (
        f"flags tagged {item['tag']}"
        if item.get("tag")
        else f"flag `{_escape(str(item.get('featureName')))}`"
    )
    line = f"• {item['action']} {target} in `{_escape(str(item.get('environment')))}`: *{item['state']}*"
    if item.get("details"):
        line += f" — {_escape(str(item['details']))}"
    return line


def _restored_line(item: dict[str, Any]) -> str:
    state = "on" if item.get("enabled") else "off"
    return f"• `{_escape(item['featureName'])}` in `{_escape(item['environment'])}` back {state}"


def _skipped_line(item: dict[str, Any]) -> str:
    return (
        f"• `{_escape(item['featureName'])}` in `{_escape(item['environment'])}` left as it is: "
        f"{_escape(str(item.get('reason')))}"
    )


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(mrkdwn: str) -> str:
    return mrkdwn.replace("*", "").replace("`", "")
