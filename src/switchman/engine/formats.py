"""Sender formats: one normalised view of what any sender's payload says (pure; ADR 0021).

A signal endpoint may name the format its sender posts (`alertmanager`, `grafana`, `datadog`,
`pagerduty`, `sentry`, `github`, `cloudwatch-sns`, `newrelic`, `opsgenie`, `generic`). The format reads the raw payload — which is
stored unchanged — into the same five fields whatever the sender:

- `status`: `firing` or `resolved` (absent when the payload says neither, e.g. a PagerDuty acknowledgement);
- `alertId`: what identifies the alert across its firing and resolution (group key, incident id, ARN…);
- `severity`: the sender's own word, lower-cased (`critical`, `warning`, `high`, `error`…);
- `title`: a one-line description;
- `source`: the format's name.

Filters read them under the reserved keys `@switchman.status`, `@switchman.alertId`, … (`NORMALISED_PREFIX`),
next to the payload's own flattened keys. A field the payload does not carry is absent (as a missing key).
Never raises: a payload of another shape yields only `source`.

Some formats also name a delivery id (`delivery_id`): what stays the same when the sender retries one
delivery and differs between deliveries — PagerDuty's `event.id`, Datadog's `id` (`$ID`), SNS's
`MessageId` — and Sentry's `Request-ID` header (`DELIVERY_ID_HEADERS`). Ingestion uses it when the call
carries no delivery-id header of its own (ADR 0019).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any


class Format(StrEnum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    DATADOG = "datadog"
    PAGERDUTY = "pagerduty"
    SENTRY = "sentry"
    GITHUB = "github"
    CLOUDWATCH_SNS = "cloudwatch-sns"
    NEW_RELIC = "newrelic"
    OPSGENIE = "opsgenie"
    GENERIC = "generic"


NORMALISED_PREFIX = "@switchman."
FIELDS = ("status", "alertId", "severity", "title", "source")
FIRING, RESOLVED = "firing", "resolved"
# Severity words from most to least severe, for "the worst severity of a group".
_SEVERITY_ORDER = ("critical", "page", "high", "error", "major", "warning", "warn", "minor", "low", "info")


def normalise(fmt: Format, payload: Mapping[str, Any], *, split: bool = False) -> dict[str, str]:
    """The normalised fields `fmt` reads from `payload` (absent ones left out). `split`: the payload is
    one alert of a group (`split_group`), identified by its own fingerprint rather than the group's key."""
    try:
        fields = _READERS[fmt](payload if isinstance(payload, Mapping) else {})
        if split and fmt in (Format.ALERTMANAGER, Format.GRAFANA):
            fields["alertId"] = _text(_get(payload, "alerts", 0, "fingerprint")) or fields.get("alertId")
    except Exception:  # a payload of another shape; JSON-derived input never reaches here otherwise
        fields = {}
    out = {key: str(value) for key, value in fields.items() if value not in (None, "")}
    out["source"] = str(fmt)
    return out


def normalised_keys(fmt: Format, payload: Mapping[str, Any], *, split: bool = False) -> dict[str, str]:
    """`normalise` under the reserved filter keys (`@switchman.status`, …)."""
    return {NORMALISED_PREFIX + key: value for key, value in normalise(fmt, payload, split=split).items()}


def split_group(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An Alertmanager-style group as one payload per alert: the group's fields, the alert's own `status`,
    and `alerts` holding that alert alone (so the group's filters still apply). A payload without a
    non-empty `alerts` list is returned whole."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        return [dict(payload)]
    envelope = {key: value for key, value in payload.items() if key != "alerts"}
    out: list[dict[str, Any]] = []
    for alert in alerts:
        status = alert.get("status") if isinstance(alert, Mapping) else None
        out.append({**envelope, **({"status": status} if isinstance(status, str) else {}), "alerts": [alert]})
    return out


def _get(value: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and -len(value) <= step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _worst(severities: list[Any]) -> str | None:
    words = [s.lower() for s in severities if isinstance(s, str) and s]
    for word in _SEVERITY_ORDER:
        if word in words:
            return word
    return words[0] if words else None


def _alertmanager(p: Mapping[str, Any]) -> dict[str, Any]:
    """Alertmanager webhook v4; Grafana's unified alerting posts the same envelope."""
    status = _text(p.get("status"))
    found = p.get("alerts")
    alerts: list[Any] = found if isinstance(found, list) else []
    return {
        "status": status if status in (FIRING, RESOLVED) else None,
        "alertId": _text(p.get("groupKey")),
        "severity": _text(_get(p, "commonLabels", "severity"))
        or _worst([_get(alert, "labels", "severity") for alert in alerts]),
        "title": _text(_get(p, "commonAnnotations", "summary"))
        or _text(_get(p, "groupLabels", "alertname"))
        or _text(_get(p, "commonLabels", "alertname")),
    }


def _grafana(p: Mapping[str, Any]) -> dict[str, Any]:
    fields = _alertmanager(p)
    fields["title"] = _text(p.get("title")) or fields["title"]
    return fields


_DATADOG_FIRING = ("triggered", "re-triggered", "warn", "re-warn", "no data", "re-no data")


def _datadog(p: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of docs/integrations/datadog.md (`transition` from `$ALERT_TRANSITION`), or Datadog's
    default one, whose title starts with the transition in brackets (`[Triggered] …`)."""
    title = _text(p.get("title"))
    transition = _text(p.get("transition")) or _text(p.get("alert_transition"))
    if transition is None and title and title.startswith("["):
        transition = title[1:].split("]", 1)[0].split(" on ", 1)[0]
    status = None
    if transition:
        lowered = transition.lower()
        status = RESOLVED if lowered == "recovered" else FIRING if lowered in _DATADOG_FIRING else None
    return {
        "status": status,
        "alertId": _text(p.get("alert_id")) or _text(p.get("aggreg_key")),
        "severity": (_text(p.get("priority")) or "").lower() or None,
        "title": title,
    }


def _pagerduty(p: Mapping[str, Any]) -> dict[str, Any]:
    """PagerDuty webhooks v3: `event.event_type` `incident.triggered` … `incident.resolved`."""
    event_type = _text(_get(p, "event", "event_type")) or ""
    status = {"incident.triggered": FIRING, "incident.reopened": FIRING, "incident.resolved": RESOLVED}
    return {
        "status": status.get(event_type),
        "alertId": _text(_get(p, "event", "data", "id")),
        "severity": (_text(_get(p, "event", "data", "priority", "summary")) or "").lower()
        or _text(_get(p, "event", "data", "urgency")),
        "title": _text(_get(p, "event", "data", "title")),
    }


def _sentry(p: Mapping[str, Any]) -> dict[str, Any]:
    """Sentry integration webhooks: issue alerts (`data.issue`) and metric alerts (`data.metric_alert`)."""
    action = (_text(p.get("action")) or "").lower()
    issue = _get(p, "data", "issue")
    if isinstance(issue, Mapping):
        status = {"created": FIRING, "unresolved": FIRING, "resolved": RESOLVED}.get(action)
        return {
            "status": status,
            "alertId": _text(str(issue["id"])) if issue.get("id") is not None else None,
            "severity": (_text(issue.get("level")) or "").lower() or None,
            "title": _text(issue.get("title")),
        }
    metric = _get(p, "data", "metric_alert")
    status = {"critical": FIRING, "warning": FIRING, "resolved": RESOLVED}.get(action)
    return {
        "status": status,
        "alertId": _text(str(metric["id"])) if isinstance(metric, Mapping) and metric.get("id") else None,
        "severity": action if action in ("critical", "warning") else None,
        "title": _text(_get(p, "data", "description_title")) or _text(_get(metric, "title")),
    }


_GITHUB_FAILED = ("failure", "timed_out", "startup_failure")


def _github(p: Mapping[str, Any]) -> dict[str, Any]:
    """GitHub `workflow_run` and `check_run` (completed: failure → firing, success → resolved) and
    `deployment_status` (failure/error → firing, success → resolved)."""
    run = p.get("workflow_run") or p.get("check_run")
    if isinstance(run, Mapping):
        conclusion = _text(run.get("conclusion"))
        status = FIRING if conclusion in _GITHUB_FAILED else RESOLVED if conclusion == "success" else None
        name = _text(run.get("name"))
        branch = _text(run.get("head_branch"))
        repository = _text(_get(p, "repository", "full_name"))
        return {
            "status": status,
            "alertId": "/".join(part for part in (repository, name, branch) if part) or None,
            "severity": None,
            "title": name,
        }
    deployment = p.get("deployment_status")
    if isinstance(deployment, Mapping):
        state = _text(deployment.get("state"))
        return {
            "status": FIRING if state in ("failure", "error") else RESOLVED if state == "success" else None,
            "alertId": _text(_get(p, "deployment", "environment")),
            "severity": None,
            "title": _text(deployment.get("description")),
        }
    return {}


def _cloudwatch_sns(p: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudWatch alarm delivered by SNS: the alarm is the JSON text in the notification's `Message`."""
    message = p.get("Message")
    alarm = json.loads(message) if isinstance(message, str) and message.lstrip().startswith("{") else p
    state = _text(_get(alarm, "NewStateValue"))
    return {
        "status": FIRING if state == "ALARM" else RESOLVED if state == "OK" else None,
        "alertId": _text(_get(alarm, "AlarmArn")),
        "severity": None,
        "title": _text(_get(alarm, "AlarmName")) or _text(p.get("Subject")),
    }


_NEW_RELIC_FIRING = ("activated", "created")


def _newrelic(p: Mapping[str, Any]) -> dict[str, Any]:
    """New Relic workflows' default webhook payload (`state` ACTIVATED / CREATED / CLOSED / …)."""
    state = (_text(p.get("state")) or "").lower()
    title = p.get("title")
    if isinstance(title, list):  # `{{annotations.title}}` renders as a list in some templates
        title = title[0] if title else None
    return {
        "status": FIRING if state in _NEW_RELIC_FIRING else RESOLVED if state == "closed" else None,
        "alertId": _text(p.get("id")) or _text(p.get("issueId")),
        "severity": (_text(p.get("priority")) or "").lower() or None,
        "title": _text(title),
    }


def _opsgenie(p: Mapping[str, Any]) -> dict[str, Any]:
    """Opsgenie's outgoing webhook: `action` Create / Close / Acknowledge / …, the alert in `alert`."""
    action = (_text(p.get("action")) or "").lower()
    return {
        "status": FIRING if action == "create" else RESOLVED if action == "close" else None,
        "alertId": _text(_get(p, "alert", "alertId")) or _text(_get(p, "alert", "alias")),
        "severity": (_text(_get(p, "alert", "priority")) or "").lower() or None,
        "title": _text(_get(p, "alert", "message")),
    }


_GENERIC_FIRING = (
    "firing",
    "alerting",
    "alert",
    "triggered",
    "trigger",
    "open",
    "problem",
    "active",
    "critical",
)
_GENERIC_RESOLVED = ("resolved", "ok", "recovered", "closed", "normal", "inactive")


def _generic(p: Mapping[str, Any]) -> dict[str, Any]:
    """Common field names: `status`/`state`, `id`/`fingerprint`/`alert_id`, `severity`/`level`/`priority`,
    `title`/`summary`/`message`."""
    raw = (_text(p.get("status")) or _text(p.get("state")) or "").lower()
    status = FIRING if raw in _GENERIC_FIRING else RESOLVED if raw in _GENERIC_RESOLVED else None
    identity = next(
        (p[k] for k in ("fingerprint", "alert_id", "alertId", "incident_id", "id") if p.get(k)), None
    )
    severity = next((p[k] for k in ("severity", "level", "priority") if _text(p.get(k))), None)
    return {
        "status": status,
        "alertId": str(identity)
        if isinstance(identity, str | int) and not isinstance(identity, bool)
        else None,
        "severity": severity.lower() if isinstance(severity, str) else None,
        "title": next((p[k] for k in ("title", "summary", "message") if _text(p.get(k))), None),
    }


_READERS: dict[Format, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    Format.ALERTMANAGER: _alertmanager,
    Format.GRAFANA: _grafana,
    Format.DATADOG: _datadog,
    Format.PAGERDUTY: _pagerduty,
    Format.SENTRY: _sentry,
    Format.GITHUB: _github,
    Format.CLOUDWATCH_SNS: _cloudwatch_sns,
    Format.NEW_RELIC: _newrelic,
    Format.OPSGENIE: _opsgenie,
    Format.GENERIC: _generic,
}


def _pagerduty_delivery(p: Mapping[str, Any]) -> Any:
    return _get(p, "event", "id")


def _datadog_delivery(p: Mapping[str, Any]) -> Any:
    found = p.get("id")
    return None if isinstance(found, str) and found.startswith("$") else found  # `$ID` not expanded


def _sns_delivery(p: Mapping[str, Any]) -> Any:
    return p.get("MessageId")


# Formats whose payload carries its delivery's id; the others either put it in a header or have none
# (Alertmanager and Grafana repeat a group on purpose; New Relic's and Opsgenie's ids name the issue or
# alert, which recurs across deliveries, so taking them would drop a real later delivery).
_DELIVERY_READERS: dict[Format, Callable[[Mapping[str, Any]], Any]] = {
    Format.PAGERDUTY: _pagerduty_delivery,
    Format.DATADOG: _datadog_delivery,
    Format.CLOUDWATCH_SNS: _sns_delivery,
}
# Formats whose sender names each delivery in a header of its own (lower-case names).
DELIVERY_ID_HEADERS: dict[Format, bytes] = {Format.SENTRY: b"request-id"}


def has_body_delivery_id(fmt: Format) -> bool:
    return fmt in _DELIVERY_READERS


def delivery_id(fmt: Format, payload: Mapping[str, Any]) -> str | None:
    """The id of the delivery `payload` came in, as the sender `fmt` writes it; None when it has none."""
    reader = _DELIVERY_READERS.get(fmt)
    if reader is None or not isinstance(payload, Mapping):
        return None
    found = reader(payload)
    if isinstance(found, bool) or not isinstance(found, str | int):
        return None
    return str(found) or None
