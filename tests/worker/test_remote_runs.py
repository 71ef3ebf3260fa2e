"""Runs against a remote Unleash (step-by-step strategy): the remote server is a scripted process edge."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from switchman.flags.unleash import UnleashFlagBackend
from switchman.runtime import Runtime
from switchman.worker.loop import SignalWorker
from tests.action_sets.founding import assert_valid
from tests.worker.conftest import Scenario, drain, toggle


def _remote(calls: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if "/features/missing/" in request.url.path:
            body = {
                "name": "NotFoundError",
                "message": 'There\'s no feature named "missing" in project "default".',
            }
            return httpx.Response(404, content=json.dumps(body), headers={"Content-Type": "application/json"})
        return httpx.Response(200)

    return httpx.MockTransport(handle)


async def test_remote_run_calls_unleash_in_order_and_stops_at_the_first_failure(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    backend = UnleashFlagBackend(
        "http://unleash.test", "*:*.remote-secret", timeout=5, transport=_remote(calls)
    )
    ctx: Runtime = app.state.runtime
    worker = SignalWorker(settings=ctx.settings, db=ctx.db, wakeup=ctx.wakeup, backend=backend)
    set_id = await scenario.add_set(
        client,
        [
            toggle("TOGGLE_FEATURE_OFF", "checkout", 1),
            toggle("TOGGLE_FEATURE_ON", "missing", 2),
            toggle("TOGGLE_FEATURE_ON", "never", 3),
        ],
    )
    signal = await client.post(
        f"/api/signal-endpoint/{scenario.endpoint_name}", json={}, headers={"Authorization": scenario.token}
    )
    assert signal.status_code == 200
    try:
        with caplog.at_level(logging.INFO, logger="switchman.worker.runs"):
            await drain(worker)
    finally:
        await backend.close()
    [logged] = [r for r in caplog.records if r.name == "switchman.worker.runs"]
    assert logged.levelno == logging.WARNING
    assert "TOGGLE_FEATURE_ON flag missing in production: " in logged.getMessage()
    assert logged.getMessage().endswith("; 1 later action(s) not started")
    assert "remote-secret" not in caplog.text
    assert calls == [
        "POST /api/admin/projects/default/features/checkout/environments/production/off",
        "POST /api/admin/projects/default/features/missing/environments/production/on",
    ]
    body = (await client.get(f"/api/admin/projects/default/actions/{set_id}/events")).json()
    assert_valid(body)
    (event,) = body["actionSetEvents"]
    assert event["state"] == "failed"
    assert [a["state"] for a in event["actionSet"]["actions"]] == ["success", "failed", "not started"]
    assert "no feature named" in event["actionSet"]["actions"][1]["details"]
    assert "remote-secret" not in json.dumps(event)
