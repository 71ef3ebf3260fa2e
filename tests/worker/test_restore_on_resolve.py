"""Restore on resolve (ADR 0024): a resolved alert puts back what the set's run for it changed — the state
before, not blindly "on", and nothing changed since — through HTTP and the real worker, on both databases."""

from __future__ import annotations

import json
from typing import Any

import httpx

from switchman.worker.loop import SignalWorker
from tests.conftest import REPO_ROOT, assert_error
from tests.worker.conftest import Scenario, drain, toggle

ACTIONS = "/api/admin/projects/default/actions"
FEATURES = "/api/admin/projects/default/features"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "senders"
FIRING = json.loads((FIXTURES / "alertmanager-firing.json").read_text())
RESOLVED = json.loads((FIXTURES / "alertmanager-resolved.json").read_text())


async def production_on(client: httpx.AsyncClient, flag: str) -> bool:
    feature = (await client.get(f"{FEATURES}/{flag}")).json()
    return bool(next(env["enabled"] for env in feature["environments"] if env["name"] == "production"))


async def switch(client: httpx.AsyncClient, flag: str, on: bool) -> None:
    answer = await client.post(f"{FEATURES}/{flag}/environments/production/{'on' if on else 'off'}")
    assert answer.status_code == 200, answer.text


async def kill_switch(client: httpx.AsyncClient, scenario: Scenario) -> int:
    """Alertmanager's format on the endpoint; a set turning the flag off while the alert fires, restoring
    it on resolve."""
    await client.put(
        f"/api/admin/signal-endpoints/{scenario.endpoint_id}/format", json={"format": "alertmanager"}
    )
    set_id = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={"@switchman.status": {"operator": "IN", "values": ["firing"]}},
    )
    policy = await client.put(f"{ACTIONS}/{set_id}/policy", json={"perAlert": True, "restoreOnResolve": True})
    assert policy.status_code == 200, policy.text
    assert policy.json()["restoreOnResolve"] is True
    return set_id


async def send(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, body: dict[str, Any]
) -> int:
    signal_id = await scenario.send(client, body)
    await drain(worker)
    return signal_id


async def decision_of(client: httpx.AsyncClient, signal_id: int, set_id: int) -> dict[str, Any]:
    trace = (await client.get(f"/api/admin/signals/{signal_id}/trace")).json()
    found: dict[str, Any] = next(d for d in trace["decisions"] if d["actionSetId"] == set_id)
    return found


async def test_a_resolution_puts_back_the_state_before_the_run(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await kill_switch(client, scenario)
    await switch(client, scenario.feature, True)
    await send(client, scenario, worker, FIRING)
    await send(client, scenario, worker, FIRING)  # Alertmanager repeats a firing group: no second "before"
    assert await production_on(client, scenario.feature) is False
    resolved = await send(client, scenario, worker, RESOLVED)
    assert await production_on(client, scenario.feature) is True

    decision = await decision_of(client, resolved, set_id)
    assert decision["outcome"] == "restored"
    assert decision["alertId"] == RESOLVED["groupKey"]
    events = (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]
    first_run = events[-1]["id"]  # newest first: the first firing's run is the one put back
    assert decision["eventId"] == first_run
    assert decision["policy"] == f"restored event {first_run}: {scenario.feature} in production back on"
    audit = (await client.get("/api/admin/events")).json()["events"]
    assert any(e["type"] == "action-set-event-restored" and e["data"]["eventId"] == first_run for e in audit)
    # Done once: a second resolution has nothing open, and the run cannot be undone again.
    again = await send(client, scenario, worker, RESOLVED)
    assert (await decision_of(client, again, set_id))["outcome"] == "not-matched"
    assert "no run of this set for it to restore" in (await decision_of(client, again, set_id))["policy"]
    refused = assert_error(await client.post(f"{ACTIONS}/{set_id}/events/{first_run}/undo"), 409)
    assert "restore on resolve" in refused["message"]


async def test_a_flag_that_was_already_off_stays_off(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await kill_switch(client, scenario)  # the flag starts off: the run changes nothing
    await send(client, scenario, worker, FIRING)
    resolved = await send(client, scenario, worker, RESOLVED)
    assert await production_on(client, scenario.feature) is False  # not blindly "on"
    decision = await decision_of(client, resolved, set_id)
    assert decision["outcome"] == "restored"
    assert decision["policy"].endswith(": nothing")


async def test_a_flag_changed_in_between_is_left_and_the_trace_says_who(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await kill_switch(client, scenario)
    await switch(client, scenario.feature, True)
    await send(client, scenario, worker, FIRING)
    await switch(client, scenario.feature, True)  # an engineer turns it back on by hand…
    await switch(client, scenario.feature, False)  # …and off again
    resolved = await send(client, scenario, worker, RESOLVED)
    assert await production_on(client, scenario.feature) is False
    decision = await decision_of(client, resolved, set_id)
    assert decision["outcome"] == "restored"
    assert "skipped: " in decision["policy"] and "changed since: turned off by " in decision["policy"]


async def test_restore_on_resolve_needs_an_alert_identity(
    client: httpx.AsyncClient, scenario: Scenario
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
    assert_error(
        await client.put(f"{ACTIONS}/{set_id}/policy", json={"restoreOnResolve": True}), 400, "BadDataError"
    )
