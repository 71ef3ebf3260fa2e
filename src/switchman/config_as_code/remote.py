"""A running switchman through its admin API: read its configuration as a document, check a desired
document's references, and execute a plan.

Every call goes through the `httpx.AsyncClient` given (its base URL and Authorization header set by
the caller): the CLI's points at a remote server, the tests' at an in-process app. Failures become
`RemoteError` with one line saying which call failed and the server's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from switchman.config_as_code.document import (
    API_VERSION,
    SIGNAL_SOURCE,
    Document,
    channel_url_variable,
    normal_policy,
)
from switchman.config_as_code.planner import Step

ENDPOINTS = "/api/admin/signal-endpoints"
PROJECTS = "/api/admin/projects"
SERVICE_ACCOUNTS = "/api/admin/service-account"


class RemoteError(Exception):
    """One line: what could not be done against the server, and why."""


@dataclass
class Current:
    """The server's configuration as a document, plus what applying needs and the document never shows."""

    document: Document
    endpoint_ids: dict[str, int] = field(default_factory=dict)
    set_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    channel_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    url_hints: dict[tuple[str, str], str] = field(default_factory=dict)
    actors: dict[str, int] = field(default_factory=dict)  # service account username → id
    projects: set[str] = field(default_factory=set)
    # Signing secrets of the webhook channels this apply created ("project/name", secret): the server
    # shows each once, in its creation answer, so apply hands it to the operator (never stored here).
    new_signing_secrets: list[tuple[str, str]] = field(default_factory=list)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, *, json: Any = None, ok404: bool = False
) -> Any:
    try:
        response = await client.request(method, path, json=json)
    except httpx.HTTPError as exc:
        raise RemoteError(
            f"cannot reach switchman at {client.base_url}: {exc or type(exc).__name__}"
        ) from None
    if response.status_code == 404 and ok404:
        return None
    if response.status_code in (401, 403):
        raise RemoteError(
            f"switchman at {client.base_url} refused the token in SWITCHMAN_API_TOKEN "
            f"({response.status_code} on {method} {path}): an admin API token or personal access token is needed"
        )
    if response.status_code >= 400:
        raise RemoteError(f"{method} {path} failed with {response.status_code}: {_reason(response)}")
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise RemoteError(
            f"{method} {path}: the answer is not JSON (is {client.base_url} a switchman?)"
        ) from None


def _reason(response: httpx.Response) -> str:
    """The server's message and, for a validation error, its first detail (which says what and where)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else "(no message)"
    if not isinstance(body, dict):
        return str(body)
    message = str(body.get("message") or "(no message)")
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        where = f" at {first['path']}" if first.get("path") else ""
        message = f"{message} — {first.get('message', first.get('description', ''))}{where}"
    return message


async def read_state(client: httpx.AsyncClient) -> Current:
    """The configuration the server holds now, as a normal-form document (channel URLs as placeholders)."""
    current = Current(document={"apiVersion": API_VERSION, "signalEndpoints": [], "projects": []})
    accounts = await _call(client, "GET", SERVICE_ACCOUNTS)
    current.actors = {a["username"]: a["id"] for a in accounts["serviceAccounts"]}
    actor_names = {a["id"]: a["username"] for a in accounts["serviceAccounts"]}

    endpoint_names: dict[int, str] = {}
    for listed in (await _call(client, "GET", ENDPOINTS))["signalEndpoints"]:
        query_token = await _call(client, "GET", f"{ENDPOINTS}/{listed['id']}/query-token")
        endpoint: dict[str, Any] = {
            "name": listed["name"],
            "enabled": listed["enabled"],
            "queryTokenAccepted": query_token["accepted"],
        }
        if listed.get("description") is not None:
            endpoint["description"] = listed["description"]
        fmt = await _call(client, "GET", f"{ENDPOINTS}/{listed['id']}/format", ok404=True)
        if fmt is not None:
            endpoint["format"] = {"format": fmt["format"], "splitAlerts": fmt["splitAlerts"]}
        current.endpoint_ids[listed["name"]] = listed["id"]
        endpoint_names[listed["id"]] = listed["name"]
        current.document["signalEndpoints"].append(endpoint)
    current.document["signalEndpoints"].sort(key=lambda e: e["name"])

    for project in (await _call(client, "GET", PROJECTS))["projects"]:
        project_id = project["id"]
        current.projects.add(project_id)
        described = await _read_project(client, current, project_id, endpoint_names, actor_names)
        if described["actionSets"] or described["notificationChannels"] or "actionBudget" in described:
            current.document["projects"].append(described)
    current.document["projects"].sort(key=lambda p: p["id"])
    return current


async def _read_project(
    client: httpx.AsyncClient,
    current: Current,
    project_id: str,
    endpoint_names: dict[int, str],
    actor_names: dict[int, str],
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": project_id}
    budget = await _call(client, "GET", f"{PROJECTS}/{project_id}/action-budget", ok404=True)
    if budget is not None:
        out["actionBudget"] = {"maxChangesPerHour": budget["maxChangesPerHour"]}
    set_names: dict[int, str] = {}
    sets: list[dict[str, Any]] = []
    for listed in (await _call(client, "GET", f"{PROJECTS}/{project_id}/actions"))["actions"]:
        where = f"action set {project_id}/{listed['name']}"
        if listed["actorId"] not in actor_names or listed["match"]["sourceId"] not in endpoint_names:
            raise RemoteError(f"{where} names a service account or signal endpoint that no longer exists")
        action_set: dict[str, Any] = {
            "name": listed["name"],
            "enabled": listed["enabled"],
            "actor": actor_names[listed["actorId"]],
            "match": {
                "source": SIGNAL_SOURCE,
                "endpoint": endpoint_names[listed["match"]["sourceId"]],
                "payload": listed["match"]["payload"],
            },
            "actions": [
                {"action": a["action"], "executionParams": a["executionParams"]}
                for a in sorted(listed["actions"], key=lambda a: (a["sortOrder"], a["id"]))
            ],
        }
        if listed.get("description") is not None:
            action_set["description"] = listed["description"]
        policy = await _call(
            client, "GET", f"{PROJECTS}/{project_id}/actions/{listed['id']}/policy", ok404=True
        )
        if policy is not None:
            fields = {k: v for k, v in policy.items() if k not in {"actionSetId", "updatedAt"}}
            action_set["policy"] = normal_policy(fields, where)
        current.set_ids[(project_id, listed["name"])] = listed["id"]
        set_names[listed["id"]] = listed["name"]
        sets.append(action_set)
    out["actionSets"] = sorted(sets, key=lambda s: s["name"])

    channels: list[dict[str, Any]] = []
    listed_channels = await _call(client, "GET", f"{PROJECTS}/{project_id}/notification-channels", ok404=True)
    for listed in (listed_channels or {}).get("notificationChannels", []):
        channel: dict[str, Any] = {
            "name": listed["name"],
            "kind": listed["kind"],
            "url": "${" + channel_url_variable(project_id, listed["name"]) + "}",
            "events": sorted(listed["events"]),
            "enabled": listed["enabled"],
        }
        if listed["actionSetIds"] is not None:
            channel["actionSets"] = sorted(set_names[i] for i in listed["actionSetIds"] if i in set_names)
        current.channel_ids[(project_id, listed["name"])] = listed["id"]
        current.url_hints[(project_id, listed["name"])] = listed["url"]
        channels.append(channel)
    out["notificationChannels"] = sorted(channels, key=lambda c: c["name"])
    return out


async def check_references(
    client: httpx.AsyncClient, desired: Document, current: Current, *, prune: bool = False
) -> None:
    """Everything the desired document names but does not define exists on the server (projects, service
    accounts, flags, endpoints): checked before any change, so a typo changes nothing. With `prune`, an
    endpoint the document does not define is about to be deleted, so a set may not name it."""
    endpoints = {e["name"] for e in desired["signalEndpoints"]}
    if not prune:
        endpoints |= set(current.endpoint_ids)
    flags_checked: set[tuple[str, str]] = set()
    for i, project in enumerate(desired["projects"]):
        where = f"projects[{i}]"
        if project["id"] not in current.projects:
            raise RemoteError(f"{where}.id: project {project['id']!r} does not exist on the server")
        for j, action_set in enumerate(project["actionSets"]):
            at = f"{where}.actionSets[{j}] ({action_set['name']})"
            if action_set["actor"] not in current.actors:
                raise RemoteError(f"{at}.actor: no service account with username {action_set['actor']!r}")
            if action_set["match"]["endpoint"] not in endpoints:
                raise RemoteError(
                    f"{at}.match.endpoint: no signal endpoint {action_set['match']['endpoint']!r} "
                    + (
                        "in the document (--prune deletes the others)"
                        if prune
                        else "on the server or in the document"
                    )
                )
            for k, action in enumerate(action_set["actions"]):
                feature = action["executionParams"].get("featureName")
                flag_project = action["executionParams"].get("project", project["id"])
                if feature is None or (flag_project, feature) in flags_checked:
                    continue
                path = f"{PROJECTS}/{flag_project}/features/{feature}"
                if await _call(client, "GET", path, ok404=True) is None:
                    raise RemoteError(f"{at}.actions[{k}]: no flag {feature!r} in project {flag_project!r}")
                flags_checked.add((flag_project, feature))


async def execute(client: httpx.AsyncClient, steps: list[Step], current: Current) -> None:
    """Run the steps in order; ids of what is created are remembered for the steps that name it."""
    for done, step in enumerate(steps):
        try:
            await _STEP_RUNNERS[step.kind](client, step, current)
        except RemoteError as exc:
            raise RemoteError(
                f"{step.describe()}: {exc} ({done} of {len(steps)} step(s) done before)"
            ) from None


async def _endpoint_step(client: httpx.AsyncClient, step: Step, current: Current) -> None:
    if step.op == "delete":
        await _call(client, "DELETE", f"{ENDPOINTS}/{current.endpoint_ids[step.name]}")
        return
    wanted = step.desired or {}
    body = {"name": step.name, "enabled": wanted["enabled"], "description": wanted.get("description")}
    if step.op == "create":
        created = await _call(client, "POST", ENDPOINTS, json=body)
        current.endpoint_ids[step.name] = created["id"]
    else:
        await _call(client, "PUT", f"{ENDPOINTS}/{current.endpoint_ids[step.name]}", json=body)
    had_format = (step.current or {}).get("format")
    path = f"{ENDPOINTS}/{current.endpoint_ids[step.name]}/format"
    if wanted.get("format") is not None and wanted["format"] != had_format:
        await _call(client, "PUT", path, json=wanted["format"])
    elif wanted.get("format") is None and had_format is not None:
        await _call(client, "DELETE", path)
    if wanted["queryTokenAccepted"] != (step.current or {}).get("queryTokenAccepted", False):
        await _call(
            client,
            "PUT",
            f"{ENDPOINTS}/{current.endpoint_ids[step.name]}/query-token",
            json={"accepted": wanted["queryTokenAccepted"]},
        )


async def _action_set_step(client: httpx.AsyncClient, step: Step, current: Current) -> None:
    base = f"{PROJECTS}/{step.project}/actions"
    key = (str(step.project), step.name)
    if step.op == "delete":
        await _call(client, "DELETE", f"{base}/{current.set_ids[key]}")
        return
    wanted = step.desired or {}
    body = {
        "name": step.name,
        "description": wanted.get("description"),
        "enabled": wanted["enabled"],
        "actorId": current.actors[wanted["actor"]],
        "match": {
            "source": SIGNAL_SOURCE,
            "sourceId": current.endpoint_ids[wanted["match"]["endpoint"]],
            "payload": wanted["match"]["payload"],
        },
        "actions": [
            {"action": a["action"], "sortOrder": i, "executionParams": a["executionParams"]}
            for i, a in enumerate(wanted["actions"], start=1)
        ],
    }
    if step.op == "create":
        created = await _call(client, "POST", base, json=body)
        current.set_ids[key] = created["id"]
    else:
        await _call(client, "PUT", f"{base}/{current.set_ids[key]}", json=body)


async def _policy_step(client: httpx.AsyncClient, step: Step, current: Current) -> None:
    set_id = current.set_ids[(str(step.project), step.name)]
    await _put_or_delete(client, f"{PROJECTS}/{step.project}/actions/{set_id}/policy", step)


async def _budget_step(client: httpx.AsyncClient, step: Step, _current: Current) -> None:
    await _put_or_delete(client, f"{PROJECTS}/{step.project}/action-budget", step)


async def _put_or_delete(client: httpx.AsyncClient, path: str, step: Step) -> None:
    """A singleton resource: PUT the desired document (create or update), or DELETE it."""
    if step.op == "delete":
        await _call(client, "DELETE", path)
    else:
        await _call(client, "PUT", path, json=step.desired)


async def _channel_step(client: httpx.AsyncClient, step: Step, current: Current) -> None:
    base = f"{PROJECTS}/{step.project}/notification-channels"
    key = (str(step.project), step.name)
    if step.op == "delete":
        await _call(client, "DELETE", f"{base}/{current.channel_ids[key]}")
        return
    wanted = step.desired or {}
    names = wanted.get("actionSets")
    body: dict[str, Any] = {
        "name": step.name,
        "kind": wanted["kind"],
        "events": wanted["events"],
        "enabled": wanted["enabled"],
        "actionSetIds": None if names is None else [current.set_ids[(str(step.project), n)] for n in names],
    }
    if step.op == "create":
        # A webhook channel's signing secret is in this answer only: passed on once, never kept (ADR 0031).
        created = await _call(client, "POST", base, json={**body, "url": wanted["url"]})
        current.channel_ids[key] = created["id"]
        if created.get("signingSecret"):
            current.new_signing_secrets.append((f"{step.project}/{step.name}", str(created["signingSecret"])))
    else:
        if step.options.get("sendUrl"):
            body["url"] = wanted["url"]
        await _call(client, "PUT", f"{base}/{current.channel_ids[key]}", json=body)


_STEP_RUNNERS = {
    "signal endpoint": _endpoint_step,
    "action set": _action_set_step,
    "policy": _policy_step,
    "action budget": _budget_step,
    "notification channel": _channel_step,
}
