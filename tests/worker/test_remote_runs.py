"""Runs against a remote Unleash (step-by-step strategy): the remote server is a scripted process edge."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from tests.action_sets.founding import assert_valid
from tests.worker.conftest import Scenario, drain, remote_worker, toggle


async def test_remote_run_calls_unleash_in_order_and_stops_at_the_first_failure(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
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
    async with remote_worker(app, calls) as worker:
        with caplog.at_level(logging.INFO, logger="switchman.worker.runs"):
            await drain(worker)
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
