"""An endpoint's sender format through the API: stored, used by the worker and by explain (ADR 0021)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from switchman.flags.factory import create_flag_backend
from switchman.runtime import Runtime
from switchman.worker.loop import SignalWorker
from tests.conftest import REPO_ROOT, assert_error
from tests.factories import endpoint_with_token, make_flag, make_service_account
from tests.signal_endpoints.helpers import BASE

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "senders"
ACTIONS = "/api/admin/projects/default/actions"


@pytest.fixture
async def worker(app: FastAPI) -> AsyncIterator[SignalWorker]:
    runtime: Runtime = app.state.runtime
    backend = create_flag_backend(runtime.settings, runtime.db)
    yield SignalWorker(settings=runtime.settings, db=runtime.db, wakeup=runtime.wakeup, backend=backend)
    await backend.close()


async def flag_on(client: httpx.AsyncClient, flag: str) -> bool:
    feature = (await client.get(f"/api/admin/projects/default/features/{flag}")).json()
    return bool(next(env["enabled"] for env in feature["environments"] if env["name"] == "production"))


async def test_the_format_resource(client: httpx.AsyncClient) -> None:
    endpoint, _ = await endpoint_with_token(client)
    path = f"{BASE}/{endpoint['id']}/format"
    assert_error(await client.get(path), 404, "NotFoundError")
    assert_error(await client.put(path, json={"format": "nagios"}), 400, "BadDataError")
    created = await client.put(path, json={"format": "pagerduty"})
    assert created.status_code == 200, created.text
    assert created.json()["format"] == "pagerduty"
    assert "@switchman.status" in created.json()["normalisedKeys"]
    assert (await client.put(path, json={"format": "sentry"})).json()["format"] == "sentry"
    assert (await client.get(path)).json()["format"] == "sentry"
    assert (await client.delete(path)).status_code == 200
    assert_error(await client.delete(path), 404, "NotFoundError")
    assert_error(await client.get(f"{BASE}/999999/format"), 404, "NotFoundError")


async def test_filters_on_the_normalised_view_end_to_end(
    client: httpx.AsyncClient, worker: SignalWorker
) -> None:
    endpoint, token = await endpoint_with_token(client)
    await client.put(f"{BASE}/{endpoint['id']}/format", json={"format": "pagerduty"})
    flag = await make_flag(client)
    await client.post(f"/api/admin/projects/default/features/{flag}/environments/production/on")
    actor = await make_service_account(client, role=1)
    ids = []
    for status, action in (("firing", "TOGGLE_FEATURE_OFF"), ("resolved", "TOGGLE_FEATURE_ON")):
        body = {
            "name": f"{status} → {action}",
            "actorId": actor["id"],
            "match": {
                "source": "signal-endpoint",
                "sourceId": endpoint["id"],
                "payload": {
                    "@switchman.status": {"operator": "IN", "values": [status]},
                    "@switchman.severity": {"operator": "IN", "values": ["p1", "p2"]},
                },
            },
            "actions": [
                {
                    "action": action,
                    "sortOrder": 1,
                    "executionParams": {
                        "project": "default",
                        "environment": "production",
                        "featureName": flag,
                    },
                }
            ],
        }
        created = await client.post(ACTIONS, json=body)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])

    call = f"/api/signal-endpoint/{endpoint['name']}"
    triggered = (FIXTURES / "pagerduty-incident-triggered.json").read_bytes()
    stored = await client.post(call, content=triggered, headers={"Authorization": token})
    assert stored.json()["signals"][0]["payload"] == json.loads(triggered)  # stored as posted
    while await worker.drain_once():
        pass
    assert await flag_on(client, flag) is False

    explained = await client.post(f"{ACTIONS}/{ids[0]}/explain", json={"payload": json.loads(triggered)})
    assert explained.status_code == 200, explained.text
    answer = explained.json()
    assert answer["matched"] is True
    assert answer["normalised"]["status"] == "firing"
    assert answer["normalised"]["alertId"] == "PGR0VU2"
    warnings = (await client.get(f"{ACTIONS}/{ids[0]}/warnings")).json()
    assert [w for w in warnings["warnings"] if w["code"] == "unknown-key"] == []
    assert "@switchman.status" in warnings["suggestedKeys"]

    resolved = (FIXTURES / "pagerduty-incident-resolved.json").read_bytes()
    await client.post(call, content=resolved, headers={"Authorization": token})
    while await worker.drain_once():
        pass
    assert await flag_on(client, flag) is True

    listing = await client.get(f"{BASE}/{endpoint['id']}/normalised-signals", params={"limit": "10"})
    assert listing.status_code == 200, listing.text
    answer = listing.json()
    assert answer["format"] == "pagerduty" and answer["splitAlerts"] is False
    assert [s["normalised"]["status"] for s in answer["signals"]] == ["resolved", "firing"]  # newest first
    assert {s["normalised"]["alertId"] for s in answer["signals"]} == {"PGR0VU2"}
    await client.delete(f"{BASE}/{endpoint['id']}/format")
    assert_error(await client.get(f"{BASE}/{endpoint['id']}/normalised-signals"), 404, "NotFoundError")


def _big_group(alerts: int) -> dict[str, object]:
    group = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
    template = group["alerts"][1]
    group["alerts"] = [
        {**template, "fingerprint": f"{n:016x}", "labels": {**template["labels"], "instance": f"checkout-{n}:8080",
                                                           "padding": "x" * 500}}
        for n in range(alerts)
    ]  # fmt: skip
    return group


async def test_a_split_group_is_one_signal_per_alert(client: httpx.AsyncClient, app: FastAPI) -> None:
    endpoint, token = await endpoint_with_token(client)
    path = f"{BASE}/{endpoint['id']}/format"
    refused = await client.put(path, json={"format": "pagerduty", "splitAlerts": True})
    assert_error(refused, 400, "BadDataError")
    assert (await client.put(path, json={"format": "alertmanager", "splitAlerts": True})).json()[
        "splitAlerts"
    ]
    rules = app.state.runtime.ingestion.endpoint_rules
    rules._ttl = 0  # the new rule applies at once instead of within a second

    group = _big_group(250)  # ≈ 190 KB: more than one signal may hold, less than a group may
    body = json.dumps(group).encode()
    assert len(body) > 100 * 1024
    call = f"/api/signal-endpoint/{endpoint['name']}"
    headers = {"Authorization": token, "Idempotency-Key": "group-1"}
    stored = await client.post(call, content=body, headers=headers)
    assert stored.status_code == 200, stored.text
    signals = stored.json()["signals"]
    assert len(signals) == 250
    assert [s["payload"]["alerts"][0]["fingerprint"] for s in signals] == [f"{n:016x}" for n in range(250)]
    assert all(s["payload"]["groupKey"] == group["groupKey"] for s in signals)
    # A retry of the same delivery is every alert's first signal again; nothing new is stored.
    again = await client.post(call, content=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [s["id"] for s in again.json()["signals"]] == [s["id"] for s in signals]

    # Each alert's own status: one resolved alert in a firing group is a resolved signal.
    mixed = _big_group(2)
    mixed["alerts"][0]["status"] = "resolved"
    parts = (await client.post(call, json=mixed, headers={"Authorization": token})).json()["signals"]
    assert [p["payload"]["status"] for p in parts] == ["resolved", "firing"]

    # Without the split, the same group is over the per-signal cap.
    await client.put(path, json={"format": "alertmanager"})
    assert_error(await client.post(call, content=body, headers={"Authorization": token}), 413)
