"""Undo an action set event (ADR 0024) through HTTP, after real worker runs, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchman.action_sets.undo import undo_event
from switchman.auth.principal import Principal, PrincipalKind
from switchman.db.engine import Database
from switchman.errors import ConflictError
from switchman.worker.loop import SignalWorker
from tests.conftest import assert_error
from tests.worker.conftest import Scenario, drain, toggle

ACTIONS = "/api/admin/projects/default/actions"
FEATURES = "/api/admin/projects/default/features"


async def production_on(client: httpx.AsyncClient, flag: str) -> bool:
    feature = (await client.get(f"{FEATURES}/{flag}")).json()
    return bool(next(env["enabled"] for env in feature["environments"] if env["name"] == "production"))


async def switch(client: httpx.AsyncClient, flag: str, on: bool) -> None:
    answer = await client.post(f"{FEATURES}/{flag}/environments/production/{'on' if on else 'off'}")
    assert answer.status_code == 200, answer.text


async def run_once(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, actions: list[dict[str, Any]]
) -> tuple[int, int]:
    """A filterless set with `actions`, run by one signal: (set id, event id)."""
    set_id = await scenario.add_set(client, actions)
    await scenario.send(client, {})
    await drain(worker)
    [event] = (await client.get(f"{ACTIONS}/{set_id}/events")).json()["actionSetEvents"]
    assert event["state"] == "success", event
    return set_id, int(event["id"])


async def test_undo_puts_back_what_the_run_changed_once(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await switch(client, scenario.feature, True)
    set_id, event_id = await run_once(
        client,
        scenario,
        worker,
        [
            toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1),
            toggle("TOGGLE_FEATURE_OFF", scenario.other_feature, 2),
        ],
    )
    assert await production_on(client, scenario.feature) is False
    undone = await client.post(f"{ACTIONS}/{set_id}/events/{event_id}/undo")
    assert undone.status_code == 200, undone.text
    answer = undone.json()
    # The other flag was already off: the run changed nothing there, so there is nothing to put back.
    assert answer["restored"] == [
        {"featureName": scenario.feature, "environment": "production", "enabled": True}
    ]
    assert answer["skipped"] == []
    assert answer["eventId"] == event_id and answer["undoneBy"]
    assert await production_on(client, scenario.feature) is True
    assert await production_on(client, scenario.other_feature) is False

    audit = (await client.get(f"/api/admin/events/{scenario.feature}")).json()["events"]
    enabled = [e for e in audit if e["type"] == "feature-environment-enabled"]
    assert enabled[0]["createdBy"] == answer["undoneBy"]  # the caller, newest first
    linked = [
        e
        for e in (await client.get("/api/admin/events")).json()["events"]
        if e["type"] == "action-set-event-undone"
    ]
    assert linked and linked[0]["data"]["eventId"] == event_id

    again = assert_error(
        await client.post(f"{ACTIONS}/{set_id}/events/{event_id}/undo"), 409, "ConflictError"
    )
    assert "already undone" in again["message"]
    assert await production_on(client, scenario.feature) is True


async def test_a_flag_changed_since_is_left_as_it_is(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await switch(client, scenario.feature, True)
    set_id, event_id = await run_once(
        client, scenario, worker, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)]
    )
    await switch(client, scenario.feature, True)  # someone put it back by hand…
    await switch(client, scenario.feature, False)  # …and off again: the state is the run's, the change is not
    answer = (await client.post(f"{ACTIONS}/{set_id}/events/{event_id}/undo")).json()
    assert answer["restored"] == []
    [skipped] = answer["skipped"]
    assert skipped["featureName"] == scenario.feature
    assert skipped["reason"].startswith("changed since: turned off by ")
    assert await production_on(client, scenario.feature) is False


async def test_undo_of_a_by_tag_run(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    for flag in (scenario.feature, scenario.other_feature):
        tagged = await client.post(
            f"/api/admin/features/{flag}/tags", json={"type": "simple", "value": "checkout"}
        )
        assert tagged.status_code in (200, 201), tagged.text
    await switch(client, scenario.feature, True)
    by_tag = {
        "action": "TOGGLE_FEATURES_OFF_BY_TAG",
        "sortOrder": 1,
        "executionParams": {"project": "default", "environment": "production", "tag": "simple:checkout"},
    }
    set_id, event_id = await run_once(client, scenario, worker, [by_tag])
    answer = (await client.post(f"{ACTIONS}/{set_id}/events/{event_id}/undo")).json()
    assert [r["featureName"] for r in answer["restored"]] == [scenario.feature]
    assert await production_on(client, scenario.feature) is True
    assert await production_on(client, scenario.other_feature) is False


async def test_undo_errors(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, db: Database
) -> None:
    set_id, event_id = await run_once(
        client, scenario, worker, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)]
    )
    other = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    assert_error(await client.post(f"{ACTIONS}/{other}/events/{event_id}/undo"), 404, "NotFoundError")
    assert_error(await client.post(f"{ACTIONS}/{set_id}/events/999999/undo"), 404, "NotFoundError")
    assert_error(await client.post(f"{ACTIONS}/{set_id}/events/x/undo"), 404, "NotFoundError")
    admin = Principal(PrincipalKind.ADMIN_TOKEN, -1, "admin", frozenset({"ADMIN"}))
    with pytest.raises(ConflictError, match="remote Unleash"):
        async with db.transaction() as conn:
            await undo_event(
                conn,
                project="default",
                action_set_id=set_id,
                event_id=event_id,
                principal=admin,
                embedded=False,
            )
    assert await production_on(client, scenario.feature) is True
