"""The planner and the document, pure: no server involved."""

from __future__ import annotations

from typing import Any

import pytest

from switchman.config_as_code.document import DocumentError, empty, expand, normalise, parse, render
from switchman.config_as_code.planner import plan


def _doc(**parts: Any) -> dict[str, Any]:
    return normalise({"apiVersion": "switchman/v1", **parts})


def _set(name: str, endpoint: str = "pager", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "actor": "bot",
        "match": {"source": "signal-endpoint", "endpoint": endpoint},
        "actions": [{"action": "TOGGLE_FEATURE_OFF", "executionParams": {"featureName": "checkout"}}],
        **extra,
    }


FULL = _doc(
    signalEndpoints=[{"name": "pager", "format": {"format": "pagerduty"}}],
    projects=[
        {
            "id": "default",
            "actionBudget": {"maxChangesPerHour": 5},
            "actionSets": [_set("off", policy={"shadow": True})],
            "notificationChannels": [
                {"name": "ops", "kind": "slack", "url": "https://hooks.test/x", "actionSets": ["off"]}
            ],
        }
    ],
)


def _described(steps: list[Any]) -> list[str]:
    return [step.describe() for step in steps]


def test_from_nothing_everything_is_created_in_dependency_order() -> None:
    assert _described(plan(FULL, empty(), prune=False)) == [
        "create signal endpoint pager",
        "create action set default/off",
        "create policy default/off",
        "create action budget default",
        "create notification channel default/ops",
    ]


def test_the_same_document_plans_nothing() -> None:
    hints = {("default", "ops"): "https://hooks.test/…"}
    assert plan(FULL, FULL, prune=True, url_hints=hints) == []


def test_a_channel_url_is_sent_again_only_when_what_is_shown_of_it_differs() -> None:
    moved = _doc(**{k: v for k, v in FULL.items() if k != "apiVersion"})
    moved["projects"][0]["notificationChannels"][0]["url"] = "https://elsewhere.test/x"
    (step,) = plan(moved, FULL, prune=False, url_hints={("default", "ops"): "https://hooks.test/…"})
    assert (step.op, step.kind, step.options) == ("update", "notification channel", {"sendUrl": True})


def test_nothing_is_deleted_without_prune_and_deletions_run_last_in_reverse_order() -> None:
    desired = _doc(signalEndpoints=[{"name": "other"}], projects=[{"id": "default"}])
    assert _described(plan(desired, FULL, prune=False)) == [
        "create signal endpoint other",
        "delete action budget default",  # the project is named without a budget
    ]
    assert _described(plan(desired, FULL, prune=True)) == [
        "create signal endpoint other",
        "delete action budget default",
        "delete notification channel default/ops",
        "delete action set default/off",
        "delete signal endpoint pager",
    ]


def test_a_project_the_document_does_not_name_is_left_alone_unless_pruning() -> None:
    assert plan(empty(), FULL, prune=False) == []
    assert _described(plan(empty(), FULL, prune=True)) == [
        "delete notification channel default/ops",
        "delete action budget default",
        "delete action set default/off",
        "delete signal endpoint pager",
    ]


def test_a_set_named_without_its_policy_loses_the_policy_and_a_changed_set_is_updated() -> None:
    desired = _doc(**{k: v for k, v in FULL.items() if k != "apiVersion"})
    changed = desired["projects"][0]["actionSets"][0]
    del changed["policy"]
    changed["enabled"] = False
    steps = plan(desired, FULL, prune=False, url_hints={("default", "ops"): "https://hooks.test/…"})
    assert _described(steps) == ["update action set default/off", "delete policy default/off"]
    assert steps[0].desired is not None and steps[0].desired["enabled"] is False


def test_render_is_deterministic_and_parse_reads_it_back() -> None:
    shuffled = _doc(
        signalEndpoints=[{"name": "b"}, {"name": "a", "enabled": True}],
        projects=[{"id": "z"}, {"id": "a", "actionSets": [_set("y"), _set("x")]}],
    )
    text = render(shuffled)
    assert text.index("name: a") < text.index("name: b")
    assert parse(text) == shuffled
    assert render(parse(text)) == text


def test_defaults_and_none_values_are_one_normal_form() -> None:
    terse = _doc(projects=[{"id": "p", "actionSets": [_set("s", policy={"cooldownSeconds": 9})]}])
    verbose = _doc(
        projects=[
            {
                "id": "p",
                "actionSets": [
                    _set(
                        "s",
                        enabled=True,
                        policy={"cooldownSeconds": 9, "shadow": False, "alertKey": None, "perAlert": False},
                    )
                ],
                "notificationChannels": [],
            }
        ]
    )
    assert terse == verbose


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("apiVersion: v9\n", "apiVersion: must be 'switchman/v1'"),
        ("signalEndpoints: []\n", "apiVersion: is required"),
        ("apiVersion: switchman/v1\nsignalEndpoints: {name: a}\n", "signalEndpoints: must be a list"),
        (
            "apiVersion: switchman/v1\nsignalEndpoints: [{name: a, token: s3cret}]\n",
            "signalEndpoints[0].token: unknown key",
        ),
        (
            "apiVersion: switchman/v1\nsignalEndpoints: [{name: a}, {name: a}]\n",
            "signalEndpoints[1].name: 'a' appears twice",
        ),
        (
            "apiVersion: switchman/v1\nprojects: [{id: p, actionSets: [{name: s, actions: [{action: A}], match: {source: signal-endpoint, endpoint: e}}]}]\n",
            "projects[0].actionSets[0].actor: is required",
        ),
        (
            "apiVersion: switchman/v1\nprojects: [{id: p, actionSets: [{name: off, actor: a, actions: [], "
            "match: {source: signal-endpoint, endpoint: e}}]}]\n",
            "projects[0].actionSets[0].name: must be text, not the boolean false (quote it)",
        ),
        (
            "apiVersion: switchman/v1\nprojects: [{id: p, actionSets: [{name: s, actor: a, actions: [], "
            "match: {source: webhook, endpoint: e}}]}]\n",
            "projects[0].actionSets[0].match.source: must be 'signal-endpoint'",
        ),
        (
            "apiVersion: switchman/v1\nprojects: [{id: p, actionBudget: {maxChangesPerHour: many}}]\n",
            "projects[0].actionBudget.maxChangesPerHour: must be an integer",
        ),
        (
            "apiVersion: switchman/v1\nprojects: [{id: p, notificationChannels: [{name: c, kind: email, url: x}]}]\n",
            "projects[0].notificationChannels[0].kind: must be one of slack, webhook",
        ),
        (
            "apiVersion: switchman/v1\nprojects: [{id: p, notificationChannels: "
            "[{name: c, kind: slack, url: x, actionSets: [ghost]}]}]\n",
            "projects[0].notificationChannels[0].actionSets: names action set 'ghost'",
        ),
        ("apiVersion: switchman/v1\nprojects: [\n", "line "),
    ],
)
def test_an_invalid_document_says_where(text: str, where: str) -> None:
    with pytest.raises(DocumentError) as raised:
        parse(text)
    assert where in str(raised.value)


def test_placeholders_expand_from_the_environment_only() -> None:
    assert expand("https://h/${A}/${B}", "x", {"A": "1", "B": "2"}) == "https://h/1/2"
    assert expand("https://h/$A", "x", {}) == "https://h/$A"
    with pytest.raises(DocumentError, match=r"x: environment variable C is not set"):
        expand("${C}", "x", {})
