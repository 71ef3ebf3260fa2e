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
