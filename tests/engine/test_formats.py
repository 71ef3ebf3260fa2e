"""Sender formats: each documented payload read into the same normalised view (ADR 0021)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.engine.formats import (
    DELIVERY_ID_HEADERS,
    Format,
    delivery_id,
    normalise,
    normalised_keys,
    split_group,
)
from switchman.engine.matching import match_payload
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "senders"


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return payload


@pytest.mark.parametrize(
    ("fmt", "fixture", "expected"),
    [
        (Format.ALERTMANAGER, "alertmanager-firing.json", {
            "status": "firing", "alertId": '{}/{severity="critical"}:{alertname="CheckoutErrorRate"}',
            "severity": "critical", "title": "Checkout 5xx rate above 5 %"}),
        (Format.ALERTMANAGER, "alertmanager-resolved.json", {"status": "resolved", "severity": "critical"}),
        (Format.GRAFANA, "grafana-firing.json", {
            "status": "firing", "alertId": '{}:{alertname="Search latency"}', "severity": "critical",
            "title": "[FIRING:1] Search latency search (critical)"}),
        (Format.DATADOG, "datadog-triggered.json", {
            "status": "firing", "alertId": "91234567", "severity": "p1",
            "title": "[Triggered on {service:search}] Search p99 latency is high"}),
        (Format.DATADOG, "datadog-recovered.json", {"status": "resolved", "alertId": "91234567"}),
        (Format.PAGERDUTY, "pagerduty-incident-triggered.json", {
            "status": "firing", "alertId": "PGR0VU2", "severity": "p1", "title": "Checkout error rate above 5 %"}),
        (Format.PAGERDUTY, "pagerduty-incident-resolved.json", {"status": "resolved", "alertId": "PGR0VU2"}),
        (Format.SENTRY, "sentry-issue-created.json", {
            "status": "firing", "alertId": "1170820242", "severity": "error",
            "title": "TypeError: Cannot read properties of undefined (reading 'total')"}),
        (Format.SENTRY, "sentry-issue-resolved.json", {"status": "resolved", "alertId": "1170820242"}),
        (Format.GITHUB, "github-workflow-run-failure.json", {
            "status": "firing", "alertId": "acme/shop/Deploy production/main", "title": "Deploy production"}),
        (Format.GITHUB, "github-workflow-run-success.json", {"status": "resolved"}),
        (Format.NEW_RELIC, "newrelic-issue-activated.json", {
            "status": "firing", "alertId": "8c4d3b8e-5c6a-4b1e-9e6f-2d1a0b9c8e7f", "severity": "critical",
            "title": "Checkout Apdex below 0.8 for at least 5 minutes on 'checkout-api'"}),
        (Format.OPSGENIE, "opsgenie-alert-create.json", {
            "status": "firing", "alertId": "70413a06-38d6-4c85-92b8-5ebc900d42e2", "severity": "p1",
            "title": "Checkout error rate above 5 %"}),
        (Format.CLOUDWATCH_SNS, "sns-cloudwatch-alarm.json", {
            "status": "firing", "alertId": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:checkout-5xx-rate",
            "title": "checkout-5xx-rate"}),
    ],
)  # fmt: skip
def test_documented_payloads_read_into_the_normalised_view(
    fmt: Format, fixture: str, expected: dict[str, str]
) -> None:
    view = normalise(fmt, load(fixture))
    assert view["source"] == str(fmt)
    for field, value in expected.items():
        assert view.get(field) == value, (field, view)


def test_a_resolution_carries_the_same_alert_id_as_its_firing() -> None:
    for fmt, firing, resolved in [
        (Format.ALERTMANAGER, "alertmanager-firing.json", "alertmanager-resolved.json"),
        (Format.PAGERDUTY, "pagerduty-incident-triggered.json", "pagerduty-incident-resolved.json"),
        (Format.SENTRY, "sentry-issue-created.json", "sentry-issue-resolved.json"),
        (Format.GITHUB, "github-workflow-run-failure.json", "github-workflow-run-success.json"),
        (Format.DATADOG, "datadog-triggered.json", "datadog-recovered.json"),
    ]:
        assert normalise(fmt, load(firing))["alertId"] == normalise(fmt, load(resolved))["alertId"], fmt


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"title": "[Recovered] Disk full on db-1", "id": "9"}, {"status": "resolved", "title": "[Recovered] Disk full on db-1"}),
        ({"title": "[Triggered on {host:db-1}] Disk full"}, {"status": "firing"}),
        ({"title": "no brackets"}, {}),
    ],
)  # fmt: skip
def test_datadog_default_payload_status_comes_from_the_title(
    payload: dict[str, Any], expected: dict[str, str]
) -> None:
    view = normalise(Format.DATADOG, payload)
    assert {k: v for k, v in view.items() if k in expected} == expected
    if not expected:
        assert "status" not in view


def test_an_acknowledgement_is_neither_firing_nor_resolved() -> None:
    payload = load("pagerduty-incident-triggered.json")
    payload["event"]["event_type"] = "incident.acknowledged"
    assert "status" not in normalise(Format.PAGERDUTY, payload)
    opsgenie = {**load("opsgenie-alert-create.json"), "action": "Acknowledge"}
    assert "status" not in normalise(Format.OPSGENIE, opsgenie)


def test_closing_resolves_new_relic_and_opsgenie() -> None:
    closed = {**load("newrelic-issue-activated.json"), "state": "CLOSED"}
    assert normalise(Format.NEW_RELIC, closed)["status"] == "resolved"
    close = {**load("opsgenie-alert-create.json"), "action": "Close"}
    assert normalise(Format.OPSGENIE, close)["status"] == "resolved"
    assert (
        normalise(Format.OPSGENIE, close)["alertId"]
        == normalise(Format.OPSGENIE, load("opsgenie-alert-create.json"))["alertId"]
    )


@pytest.mark.parametrize(
    ("payload", "status", "identity", "severity", "title"),
    [
        ({"state": "ALERTING", "fingerprint": "ab12", "level": "Warning", "summary": "x"}, "firing", "ab12", "warning", "x"),
        ({"status": "ok", "id": 42, "message": "back"}, "resolved", "42", None, "back"),
        ({"status": "maybe"}, None, None, None, None),
    ],
)  # fmt: skip
def test_generic_reads_common_field_names(
    payload: dict[str, Any], status: str | None, identity: str | None, severity: str | None, title: str | None
) -> None:
    view = normalise(Format.GENERIC, payload)
    assert (view.get("status"), view.get("alertId"), view.get("severity"), view.get("title")) == (
        status,
        identity,
        severity,
        title,
    )


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize(
    "payload", [{}, {"alerts": "not a list", "event": [1], "data": None, "Message": "{bad"}, {"x": [[[]]]}]
)
def test_other_shapes_never_raise(fmt: Format, payload: dict[str, Any]) -> None:
    assert normalise(fmt, payload)["source"] == str(fmt)


def test_filters_read_the_view_under_reserved_keys_and_it_wins() -> None:
    payload = {**load("pagerduty-incident-triggered.json"), "@switchman.status": "resolved"}
    extra = normalised_keys(Format.PAGERDUTY, payload)
    assert extra["@switchman.status"] == "firing"
    firing = {"@switchman.status": {"operator": "IN", "values": ["firing"]}}
    assert match_payload(firing, payload, extra=extra).matched is True
    assert match_payload(firing, payload).matched is False  # without the format: the payload's own key


def test_split_group_gives_each_alert_its_own_status_and_identity() -> None:
    group = load("alertmanager-firing.json")
    group["alerts"][0]["status"] = "resolved"
    parts = split_group(group)
    assert len(parts) == 2
    assert [p["status"] for p in parts] == ["resolved", "firing"]
    assert all(len(p["alerts"]) == 1 for p in parts)
    assert all(p["groupKey"] == group["groupKey"] and p["receiver"] == "switchman" for p in parts)
    views = [normalise(Format.ALERTMANAGER, p, split=True) for p in parts]
    assert [v["alertId"] for v in views] == ["a1b2c3d4e5f60718", "0f1e2d3c4b5a6978"]
    assert [v["severity"] for v in views] == ["warning", "critical"]
    assert normalise(Format.ALERTMANAGER, parts[0])["alertId"] == group["groupKey"]  # unsplit: the group
    assert split_group({"status": "firing"}) == [{"status": "firing"}]
    assert split_group({"alerts": []}) == [{"alerts": []}]


def test_delivery_ids_by_format() -> None:
    assert delivery_id(Format.PAGERDUTY, {"event": {"id": "01DEN4"}}) == "01DEN4"
    assert delivery_id(Format.DATADOG, {"id": 7451329863123829174}) == "7451329863123829174"
    assert delivery_id(Format.DATADOG, {"id": "$ID"}) is None  # the template variable was not expanded
    assert delivery_id(Format.CLOUDWATCH_SNS, {"MessageId": "b9b0"}) == "b9b0"
    assert delivery_id(Format.PAGERDUTY, {"event": {"id": True}}) is None
    assert delivery_id(Format.PAGERDUTY, {"event": "x"}) is None
    assert delivery_id(Format.ALERTMANAGER, {"groupKey": "g"}) is None  # groups repeat on purpose
    assert delivery_id(Format.NEW_RELIC, {"id": "issue-1"}) is None  # names the issue, not the delivery
    assert DELIVERY_ID_HEADERS == {Format.SENTRY: b"request-id"}
