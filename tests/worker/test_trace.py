"""The decision trace (ADR 0022): every (signal, enabled action set of its source) decision with its reasons,
through the real worker (embedded store and a remote Unleash) and the HTTP API, on both databases."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from switchman.db.engine import Database
from switchman.runtime import Runtime
from switchman.signal_endpoints.retention import prune_decisions
from switchman.timeutil import utcnow
from switchman.worker.loop import SignalWorker
from tests.conftest import assert_error, make_settings
from tests.factories import running_app
from tests.worker.conftest import Scenario, build_scenario, drain, remote_worker, toggle

ACTIONS = "/api/admin/projects/default/actions"
SEVERITY_CRITICAL = {"severity": {"operator": "IN", "values": ["critical"]}}


async def trace_of(client: httpx.AsyncClient, signal_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/admin/signals/{signal_id}/trace")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_each_enabled_set_of_the_source_records_its_decision_and_why(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    critical = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={**SEVERITY_CRITICAL, "service": {"operator": "STR_STARTS_WITH", "values": ["check"]}},
    )
    warning = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.other_feature, 1)],
        filters={"severity": {"operator": "IN", "values": ["warning"]}},
    )
    failing = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", "no-such-flag", 1)], filters={})
    disabled = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    assert (await client.post(f"{ACTIONS}/{disabled}/off")).status_code == 200

    signal_id = await scenario.send(client, {"severity": "critical", "service": "checkout"})
    pending = await trace_of(client, signal_id)
    assert pending["state"] == "pending" and pending["decisions"] == []
    await drain(worker)

    trace = await trace_of(client, signal_id)
    assert trace["state"] == "processed"
    assert trace["source"] == "signal-endpoint" and trace["sourceId"] == scenario.endpoint_id
    assert trace["normalised"] is None  # the endpoint has no sender format
    decisions = {d["actionSetId"]: d for d in trace["decisions"]}
    assert set(decisions) == {critical, warning, failing}  # a disabled set decides nothing

    matched = decisions[critical]
    assert matched["outcome"] == "matched"
    assert [(r["parameter"], r["seen"], r["passed"]) for r in matched["reasons"]] == [
        ("service", "checkout", True),  # by parameter, as explain lists them
        ("severity", "critical", True),
    ]
    events = (await client.get(f"{ACTIONS}/{critical}/events")).json()["actionSetEvents"]
    assert matched["eventId"] == events[0]["id"]

    not_matched = decisions[warning]
    assert not_matched["outcome"] == "not-matched" and not_matched["eventId"] is None
    [reason] = not_matched["reasons"]
    assert reason["parameter"] == "severity" and reason["seen"] == "critical" and reason["passed"] is False
    assert reason["reason"]  # a human explanation

    assert decisions[failing]["outcome"] == "failed"
    assert decisions[failing]["reasons"] == []  # no filters: matches every signal
    failed_event = (await client.get(f"{ACTIONS}/{failing}/events")).json()["actionSetEvents"][0]
    assert decisions[failing]["eventId"] == failed_event["id"] and failed_event["state"] == "failed"


async def test_an_action_sets_decisions_page_newest_first_with_a_cursor(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)], filters=SEVERITY_CRITICAL
    )
    sent = [
        await scenario.send(client, {"severity": "critical" if n % 2 else "info", "n": n}) for n in range(7)
    ]
    await drain(worker)
    path = f"{ACTIONS}/{set_id}/decisions"
    everything = (await client.get(path)).json()["decisions"]
    assert [d["signalId"] for d in everything] == sent[::-1]
    assert [d["outcome"] for d in everything] == ["not-matched", "matched"] * 3 + ["not-matched"]

    first = (await client.get(path, params={"limit": "3"})).json()["decisions"]
    assert first == everything[:3]
    second = (await client.get(path, params={"limit": "3", "before": str(first[-1]["id"])})).json()
    assert second["decisions"] == everything[3:6]
    assert (await client.get(path, params={"limit": "3", "offset": "5"})).json()["decisions"] == everything[
        5:
    ]

    assert_error(await client.get(f"{ACTIONS}/999999/decisions"), 404, "NotFoundError")
    assert_error(await client.get("/api/admin/projects/nope/actions/1/decisions"), 404, "NotFoundError")
    assert_error(await client.get("/api/admin/signals/999999/trace"), 404, "NotFoundError")
    assert_error(await client.get("/api/admin/signals/x/trace"), 404, "NotFoundError")


async def test_the_trace_shows_the_sender_formats_view(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await client.put(f"/api/admin/signal-endpoints/{scenario.endpoint_id}/format", json={"format": "generic"})
    await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={"@switchman.status": {"operator": "IN", "values": ["firing"]}},
    )
    signal_id = await scenario.send(client, {"status": "resolved", "id": "alert-7"})
    await drain(worker)
    trace = await trace_of(client, signal_id)
    assert trace["normalised"]["status"] == "resolved" and trace["normalised"]["alertId"] == "alert-7"
    [decision] = trace["decisions"]
    assert decision["outcome"] == "not-matched"
    assert decision["reasons"][0]["parameter"] == "@switchman.status"
    assert decision["reasons"][0]["seen"] == "resolved"


async def test_remote_runs_are_traced_too(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    good = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
    bad = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", "missing", 1)])
    picky = await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)], filters=SEVERITY_CRITICAL
    )
    signal_id = await scenario.send(client, {"severity": "low"})
    async with remote_worker(app, []) as worker:
        await drain(worker)
    decisions = {d["actionSetId"]: d for d in (await trace_of(client, signal_id))["decisions"]}
    assert {k: d["outcome"] for k, d in decisions.items()} == {
        good: "matched",
        bad: "failed",
        picky: "not-matched",
    }
    assert decisions[good]["eventId"] is not None and decisions[picky]["eventId"] is None


async def test_retention_prunes_decisions_with_their_age(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, db: Database
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
    for n in range(3):
        await scenario.send(client, {"n": n})
    await drain(worker)
    assert await prune_decisions(db, older_than=utcnow() - timedelta(days=1)) == 0
    assert await prune_decisions(db, older_than=utcnow() + timedelta(seconds=1), batch_size=2) == 3
    assert (await client.get(f"{ACTIONS}/{set_id}/decisions")).json()["decisions"] == []


async def test_with_the_trace_off_nothing_is_recorded_and_runs_are_unchanged(db_url: str) -> None:
    settings = make_settings(db_url, decision_trace=False)
    async with running_app(settings) as (app, client):
        scenario = await build_scenario(client)
        set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
        signal_id = await scenario.send(client, {})
        ctx: Runtime = app.state.runtime
        worker = SignalWorker(settings=ctx.settings, db=ctx.db, wakeup=ctx.wakeup, backend=ctx.flag_backend)
        await drain(worker)
        assert (await trace_of(client, signal_id))["decisions"] == []
        events = (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]
        assert [e["state"] for e in events] == ["success"]
        assert json.dumps(events)  # the run itself is recorded as always
