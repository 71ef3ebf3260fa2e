"""Every committed run is one log line: INFO for a success, WARNING with the failed action's details."""

from __future__ import annotations

import logging

import httpx
import pytest

from switchman.worker.loop import SignalWorker
from tests.worker.conftest import Scenario, drain, toggle

RUNS_LOG = "switchman.worker.runs"
SECRET_PAYLOAD = {"alert": {"status": "firing", "apiKey": "do-not-log-me"}}


async def test_a_successful_run_is_one_info_line(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, caplog: pytest.LogCaptureFixture
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    signal_id = await scenario.send(client, SECRET_PAYLOAD)
    with caplog.at_level(logging.INFO, logger=RUNS_LOG):
        assert await drain(worker) == 1
    [record] = [r for r in caplog.records if r.name == RUNS_LOG]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert message.startswith(f"action set {set_id} (")
    assert f"project default) ran for signal {signal_id}: success, 1 action(s)" in message
    assert "do-not-log-me" not in caplog.text and scenario.token not in caplog.text


async def test_a_failed_run_is_a_warning_with_the_action_and_its_details(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, caplog: pytest.LogCaptureFixture
) -> None:
    set_id = await scenario.add_set(
        client,
        [
            toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1),
            toggle("TOGGLE_FEATURE_ON", scenario.other_feature, 2),
        ],
        actor_id=scenario.viewer_actor_id,
    )
    signal_id = await scenario.send(client, SECRET_PAYLOAD)
    with caplog.at_level(logging.INFO, logger=RUNS_LOG):
        assert await drain(worker) == 1
    [record] = [r for r in caplog.records if r.name == RUNS_LOG]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith(f"action set {set_id} (")
    assert (
        f"project default) failed for signal {signal_id}: TOGGLE_FEATURE_OFF flag {scenario.feature} in production: "
        in message
    )
    assert message.endswith("; 1 later action(s) not started")
    events = (await client.get(f"/api/admin/projects/default/actions/{set_id}/events")).json()[
        "actionSetEvents"
    ]
    details = events[0]["actionSet"]["actions"][0]["details"]
    assert details and details in message  # the same words as the event's details
    assert "do-not-log-me" not in caplog.text
