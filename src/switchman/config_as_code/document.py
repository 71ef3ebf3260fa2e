"""The configuration document: parsing (with the path of whatever is wrong), normalising and rendering.

Both sides of a plan are documents in this normal form: the file's (`parse`) and the server's as read by
`remote.read_state`. Normal form fills every default (so an omitted `enabled` equals `enabled: true`),
sorts every named list by name, and drops values that mean "none" (a policy's null fields and false
switches), so two documents describing the same configuration are equal as Python values and render to
the same bytes. Ids never appear: endpoints, service accounts and action sets are named.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

API_VERSION = "switchman/v1"
SIGNAL_SOURCE = "signal-endpoint"
CHANNEL_KINDS = ("slack", "webhook")
CHANNEL_EVENTS = ("success", "failure", "restored", "reverted", "undone")
POLICY_KEYS = {
    "shadow": bool,
    "cooldownSeconds": int,
    "windowCount": int,
    "windowSeconds": int,
    "perAlert": bool,
    "alertKey": str,
    "restoreOnResolve": bool,
    "maxChangesPerHour": int,
    "revertAfterSeconds": int,
}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class DocumentError(ValueError):
    """An invalid document; the message starts with where (`projects[0].actionSets[1].actor`)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"invalid document at {where or '(top)'}: {problem}")


Document = dict[str, Any]


def empty() -> Document:
    return {"apiVersion": API_VERSION, "signalEndpoints": [], "projects": []}


def render(document: Document) -> str:
    """The document as YAML: keys sorted, block style, so the same configuration gives the same bytes."""
    text: str = yaml.safe_dump(
        document, sort_keys=True, default_flow_style=False, allow_unicode=True, width=100
    )
    return text


def channel_url_variable(project: str, channel: str) -> str:
    """The environment variable an exported channel URL points at (the URL is a secret: never exported)."""
    return "SWITCHMAN_CHANNEL_URL_" + re.sub(r"[^A-Z0-9]+", "_", f"{project}_{channel}".upper()).strip("_")


def expand(url: str, where: str, environ: dict[str, str] | None = None) -> str:
    """`${VAR}` placeholders replaced from the environment; an unset variable is a document error."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise DocumentError(where, f"environment variable {name} is not set")
        return env[name]

    return _PLACEHOLDER.sub(value, url)


def parse(text: str) -> Document:
    """The YAML text as a normal-form document, or DocumentError saying where it is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise DocumentError(where, f"not YAML ({getattr(exc, 'problem', None) or exc})") from None
    return normalise(raw)


def normalise(raw: Any) -> Document:
    top = _mapping(raw, "", required={"apiVersion"}, optional={"signalEndpoints", "projects"})
    if top["apiVersion"] != API_VERSION:
        raise DocumentError("apiVersion", f"must be {API_VERSION!r}")
    endpoints = [
        _endpoint(item, f"signalEndpoints[{i}]")
        for i, item in enumerate(_list(top.get("signalEndpoints"), "signalEndpoints"))
    ]
    projects = [
        _project(item, f"projects[{i}]") for i, item in enumerate(_list(top.get("projects"), "projects"))
    ]
    _unique(endpoints, "name", "signalEndpoints")
    _unique(projects, "id", "projects")
    return {
        "apiVersion": API_VERSION,
        "signalEndpoints": sorted(endpoints, key=lambda e: e["name"]),
        "projects": sorted(projects, key=lambda p: p["id"]),
    }


def _endpoint(raw: Any, where: str) -> dict[str, Any]:
    item = _mapping(
        raw, where, required={"name"}, optional={"description", "enabled", "format", "queryTokenAccepted"}
    )
    out: dict[str, Any] = {
        "name": _text(item["name"], f"{where}.name"),
        "enabled": _bool(item.get("enabled", True), f"{where}.enabled"),
        "queryTokenAccepted": _bool(item.get("queryTokenAccepted", False), f"{where}.queryTokenAccepted"),
    }
    if item.get("description") is not None:
        out["description"] = _text(item["description"], f"{where}.description", allow_empty=True)
    if item.get("format") is not None:
        fmt = _mapping(item["format"], f"{where}.format", required={"format"}, optional={"splitAlerts"})
        out["format"] = {
            "format": _text(fmt["format"], f"{where}.format.format"),
            "splitAlerts": _bool(fmt.get("splitAlerts", False), f"{where}.format.splitAlerts"),
        }
    return out


def _project(raw: Any, where: str) -> dict[str, Any]:
    item = _mapping(
        raw, where, required={"id"}, optional={"actionBudget", "actionSets", "notificationChannels"}
    )
    out: dict[str, Any] = {"id": _text(item["id"], f"{where}.id")}
    if item.get("actionBudget") is not None:
        budget = _mapping(item["actionBudget"], f"{where}.actionBudget", required={"maxChangesPerHour"})
        out["actionBudget"] = {
            "maxChangesPerHour": _int(budget["maxChangesPerHour"], f"{where}.actionBudget.maxChangesPerHour")
        }
    sets = [
        _action_set(s, f"{where}.actionSets[{i}]")
        for i, s in enumerate(_list(item.get("actionSets"), f"{where}.actionSets"))
    ]
    channels = [
        _channel(c, f"{where}.notificationChannels[{i}]")
        for i, c in enumerate(_list(item.get("notificationChannels"), f"{where}.notificationChannels"))
    ]
    _unique(sets, "name", f"{where}.actionSets")
    _unique(channels, "name", f"{where}.notificationChannels")
    names = {s["name"] for s in sets}
    for i, channel in enumerate(channels):
        for name in channel.get("actionSets") or []:
            if name not in names:
                raise DocumentError(
                    f"{where}.notificationChannels[{i}].actionSets",
                    f"names action set {name!r}, which this project's actionSets do not define",
                )
    out["actionSets"] = sorted(sets, key=lambda s: s["name"])
    out["notificationChannels"] = sorted(channels, key=lambda c: c["name"])
    return out


def _action_set(raw: Any, where: str) -> dict[str, Any]:
    item = _mapping(
        raw,
        where,
        required={"name", "actor", "match", "actions"},
        optional={"description", "enabled", "policy"},
    )
    name = _text(item["name"], f"{where}.name")
    match = _mapping(item["match"], f"{where}.match", required={"source", "endpoint"}, optional={"payload"})
    if match["source"] != SIGNAL_SOURCE:
        raise DocumentError(f"{where}.match.source", f"must be {SIGNAL_SOURCE!r}")
    payload = match.get("payload", {})
    if not isinstance(payload, dict):
        raise DocumentError(f"{where}.match.payload", "must be a mapping of payload paths to filters")
    actions = _list(item["actions"], f"{where}.actions")
    if not actions:
        raise DocumentError(f"{where}.actions", "needs at least one action")
    out: dict[str, Any] = {
        "name": name,
        "enabled": _bool(item.get("enabled", True), f"{where}.enabled"),
        "actor": _text(item["actor"], f"{where}.actor"),
        "match": {
            "source": SIGNAL_SOURCE,
            "endpoint": _text(match["endpoint"], f"{where}.match.endpoint"),
            "payload": payload,
        },
        "actions": [_action(a, f"{where}.actions[{i}]") for i, a in enumerate(actions)],
    }
    if item.get("description") is not None:
        out["description"] = _text(item["description"], f"{where}.description", allow_empty=True)
    if item.get("policy") is not None:
        out["policy"] = normal_policy(item["policy"], f"{where}.policy")
    return out


def _action(raw: Any, where: str) -> dict[str, Any]:
    item = _mapping(raw, where, required={"action"}, optional={"executionParams"})
    params = item.get("executionParams", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise DocumentError(f"{where}.executionParams", "must map parameter names to text")
    return {"action": _text(item["action"], f"{where}.action"), "executionParams": dict(params)}


def normal_policy(raw: Any, where: str) -> dict[str, Any]:
    """A policy without its "none" values (null fields, false switches): those are the defaults."""
    item = _mapping(raw, where, optional=set(POLICY_KEYS))
    out: dict[str, Any] = {}
    for key, value in item.items():
        if value is None or value is False:
            continue
        if POLICY_KEYS[key] is bool:
            out[key] = _bool(value, f"{where}.{key}")
        elif POLICY_KEYS[key] is int:
            out[key] = _int(value, f"{where}.{key}")
        else:
            out[key] = _text(value, f"{where}.{key}")
    return out


def _channel(raw: Any, where: str) -> dict[str, Any]:
    item = _mapping(
        raw, where, required={"name", "kind", "url"}, optional={"actionSets", "events", "enabled"}
    )
    kind = item["kind"]
    if kind not in CHANNEL_KINDS:
        raise DocumentError(f"{where}.kind", f"must be one of {', '.join(CHANNEL_KINDS)}")
    events = _list(item.get("events", list(CHANNEL_EVENTS)), f"{where}.events")
    for i, event in enumerate(events):
        if event not in CHANNEL_EVENTS:
            raise DocumentError(f"{where}.events[{i}]", f"must be one of {', '.join(CHANNEL_EVENTS)}")
    out: dict[str, Any] = {
        "name": _text(item["name"], f"{where}.name"),
        "kind": kind,
        "url": _text(item["url"], f"{where}.url"),
        "events": sorted(set(events)),
        "enabled": _bool(item.get("enabled", True), f"{where}.enabled"),
    }
    if item.get("actionSets") is not None:
        names = _list(item["actionSets"], f"{where}.actionSets")
        out["actionSets"] = sorted({_text(n, f"{where}.actionSets[{i}]") for i, n in enumerate(names)})
    return out


# --- small checks, each naming where -----------------------------------------------------------------


def _mapping(
    raw: Any, where: str, *, required: set[str] | None = None, optional: set[str] | None = None
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DocumentError(where, "must be a mapping")
    allowed = (required or set()) | (optional or set())
    for key in raw:
        if key not in allowed:
            raise DocumentError(
                _join(where, str(key)), f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
    for key in sorted(required or set()):
        if raw.get(key) is None:
            raise DocumentError(_join(where, key), "is required")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DocumentError(where, "must be a list")
    return raw


def _text(raw: Any, where: str, *, allow_empty: bool = False) -> str:
    if isinstance(raw, bool):
        # YAML 1.1 reads an unquoted on/off/yes/no as a boolean: say so, it is the usual cause.
        raise DocumentError(where, f"must be text, not the boolean {str(raw).lower()} (quote it)")
    if not isinstance(raw, str) or (not allow_empty and not raw.strip()):
        raise DocumentError(where, "must be non-empty text" if not allow_empty else "must be text")
    return raw


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise DocumentError(where, "must be true or false")
    return raw


def _int(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise DocumentError(where, "must be an integer")
    return raw


def _unique(items: list[dict[str, Any]], key: str, where: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item[key] in seen:
            raise DocumentError(f"{where}[{i}].{key}", f"{item[key]!r} appears twice")
        seen.add(item[key])


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
