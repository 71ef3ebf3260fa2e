"""The plan (pure): what to create, update and delete so that the current configuration becomes the desired.

Contracts:
- Both documents are in `document`'s normal form. The desired one has its channel URLs expanded; the
  current one cannot show them (they are secrets), so `url_hints` gives what the server shows of each
  (`scheme://host/…`): a channel's URL is sent again only when the desired URL's hint differs.
- Forward steps come first, in dependency order: signal endpoints, action sets (they name endpoints),
  policies, budgets, notification channels (they name action sets). Deletions of whole resources the
  document does not name happen only with `prune`, after every forward step, in reverse order.
- What belongs to a named resource is wholly described by the document: an endpoint named without a
  `format` loses its format, a set named without a `policy` loses its policy, a project named without an
  `actionBudget` loses its budget. A project the document does not name is left alone unless `prune`.
- An empty plan means the server already matches: applying the same document twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from switchman.config_as_code.document import Document

Op = Literal["create", "update", "delete"]
Kind = Literal["signal endpoint", "action set", "policy", "action budget", "notification channel"]


@dataclass(frozen=True)
class Step:
    op: Op
    kind: Kind
    project: str | None  # None for signal endpoints, which belong to the instance
    name: str  # the endpoint's, set's or channel's name; the project id for a budget
    desired: dict[str, Any] | None = None
    current: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        where = (
            self.name
            if self.project is None or self.kind == "action budget"
            else f"{self.project}/{self.name}"
        )
        return f"{self.op} {self.kind} {where}"


def url_hint(url: str) -> str:
    """What switchman shows of a notification channel's URL (notifications' own rule, ADR 0027)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def plan(
    desired: Document, current: Document, *, prune: bool, url_hints: dict[tuple[str, str], str] | None = None
) -> list[Step]:
    hints = url_hints or {}
    forward: list[Step] = []
    deletions: list[Step] = []

    want_endpoints = {e["name"]: e for e in desired["signalEndpoints"]}
    have_endpoints = {e["name"]: e for e in current["signalEndpoints"]}
    for name, endpoint in want_endpoints.items():
        if name not in have_endpoints:
            forward.append(Step("create", "signal endpoint", None, name, desired=endpoint))
        elif endpoint != have_endpoints[name]:
            forward.append(Step("update", "signal endpoint", None, name, endpoint, have_endpoints[name]))
    if prune:
        deletions.extend(
            Step("delete", "signal endpoint", None, name, current=have)
            for name, have in have_endpoints.items()
            if name not in want_endpoints
        )

    want_projects = {p["id"]: p for p in desired["projects"]}
    have_projects = {p["id"]: p for p in current["projects"]}
    sets: list[Step] = []
    policies: list[Step] = []
    budgets: list[Step] = []
    channels: list[Step] = []
    set_deletions: list[Step] = []
    budget_deletions: list[Step] = []
    channel_deletions: list[Step] = []
    for project_id in sorted(want_projects.keys() | have_projects.keys()):
        want = want_projects.get(project_id)
        have = have_projects.get(project_id) or {
            "id": project_id,
            "actionSets": [],
            "notificationChannels": [],
        }
        if want is None and not prune:
            continue
        want = want or {"id": project_id, "actionSets": [], "notificationChannels": []}

        have_sets = {s["name"]: s for s in have["actionSets"]}
        want_sets = {s["name"]: s for s in want["actionSets"]}
        for name, wanted in want_sets.items():
            had = have_sets.get(name)
            if had is None:
                sets.append(Step("create", "action set", project_id, name, desired=_without_policy(wanted)))
            elif _without_policy(wanted) != _without_policy(had):
                sets.append(
                    Step(
                        "update",
                        "action set",
                        project_id,
                        name,
                        _without_policy(wanted),
                        _without_policy(had),
                    )
                )
            want_policy = wanted.get("policy")
            have_policy = had.get("policy") if had is not None else None
            if want_policy is not None and want_policy != have_policy:
                op: Op = "create" if have_policy is None else "update"
                policies.append(Step(op, "policy", project_id, name, want_policy, have_policy))
            elif want_policy is None and have_policy is not None:
                policies.append(Step("delete", "policy", project_id, name, current=have_policy))
        if prune:
            set_deletions.extend(
                Step("delete", "action set", project_id, name, current=had)
                for name, had in have_sets.items()
                if name not in want_sets
            )

        want_budget, have_budget = want.get("actionBudget"), have.get("actionBudget")
        if want_budget is not None and want_budget != have_budget:
            op = "create" if have_budget is None else "update"
            budgets.append(Step(op, "action budget", project_id, project_id, want_budget, have_budget))
        elif want_budget is None and have_budget is not None:
            step = Step("delete", "action budget", project_id, project_id, current=have_budget)
            (budgets if project_id in want_projects else budget_deletions).append(step)

        have_channels = {c["name"]: c for c in have["notificationChannels"]}
        want_channels = {c["name"]: c for c in want["notificationChannels"]}
        for name, wanted in want_channels.items():
            had = have_channels.get(name)
            if had is None:
                channels.append(Step("create", "notification channel", project_id, name, desired=wanted))
                continue
            new_url = url_hint(wanted["url"]) != hints.get((project_id, name))
            if new_url or _without_url(wanted) != _without_url(had):
                channels.append(
                    Step(
                        "update", "notification channel", project_id, name, wanted, had, {"sendUrl": new_url}
                    )
                )
        if prune:
            channel_deletions.extend(
                Step("delete", "notification channel", project_id, name, current=had)
                for name, had in have_channels.items()
                if name not in want_channels
            )

    forward.extend([*sets, *policies, *budgets, *channels])
    return [*forward, *channel_deletions, *budget_deletions, *set_deletions, *deletions]


def _without_policy(action_set: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in action_set.items() if key != "policy"}


def _without_url(channel: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in channel.items() if key != "url"}
