"""Signal to flag, end to end through the public API and a real worker, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from switchman.engine.actions import ToggleCommand
from switchman.flags.backend import FlagActionError
from switchman.flags.embedded import EmbeddedFlagBackend
from switchman.runtime import Runtime
from switchman.service_accounts.service import get_actor
from switchman.worker.loop import SignalWorker
from tests.conftest import make_settings
from tests.factories import list_events, running_app
from tests.worker.conftest import Scenario, drain, toggle


async def _flag_enabled(client: httpx.AsyncClient, feature: str, environment: str = "production") -> bool:
    body = (await client.get(f"/api/admin/projects/default/features/{feature}")).json()
    return next(env["enabled"] for env in body["environments"] if env["name"] == environment)


async def test_matching_signal_turns_flag_on_once_and_non_matching_does_nothing(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)],
        filters={
            "alert.status": {"operator": "IN", "values": ["firing"]},
            "alert.errorRate": {"operator": "NUM_GT", "value": "5"},
        },
    )
    assert not await _flag_enabled(client, scenario.feature)

    non_matching = await scenario.send(client, {"alert": {"status": "resolved", "errorRate": 9}})
    matching = await scenario.send(client, {"alert": {"status": "firing", "errorRate": 7.5}})
    assert await drain(worker) == 2
    assert await drain(worker) == 0  # nothing is processed twice

    assert await _flag_enabled(client, scenario.feature)
    events = await list_events(client, set_id)
    assert len(events) == 1
    event = events[0]
    assert event["signalId"] == matching != non_matching
    assert event["state"] == "success"
    assert event["signal"]["payload"] == {"alert": {"status": "firing", "errorRate": 7.5}}
    assert [a["state"] for a in event["actionSet"]["actions"]] == ["success"]

    audit = (await client.get("/api/admin/events")).json()["events"]
    enabled = [
        e
        for e in audit
        if e["type"] == "feature-environment-enabled" and e["featureName"] == scenario.feature
    ]
    assert len(enabled) == 1
    assert enabled[0]["createdByUserId"] == scenario.admin_actor_id
    assert enabled[0]["environment"] == "production"


async def test_viewer_actor_fails_first_action_and_later_actions_stay_not_started(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(
        client,
        [
            toggle("TOGGLE_FEATURE_ON", scenario.feature, 1),
            toggle("TOGGLE_FEATURE_OFF", scenario.other_feature, 2),
        ],
        actor_id=scenario.viewer_actor_id,
    )
    await scenario.send(client, {})
    await drain(worker)

    (event,) = await list_events(client, set_id)
    assert event["state"] == "failed"
    first, second = event["actionSet"]["actions"]
    assert first["state"] == "failed"
    assert "UPDATE_FEATURE_ENVIRONMENT" in first["details"]
    assert second["state"] == "not started"
    assert second.get("details") is None
    assert not await _flag_enabled(client, scenario.feature)


async def test_failure_on_missing_flag_stops_the_run(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(
        client,
        [
            toggle("TOGGLE_FEATURE_ON", scenario.feature, 1),
            toggle("TOGGLE_FEATURE_ON", "no-such-flag", 2),
            toggle("TOGGLE_FEATURE_ON", scenario.other_feature, 3),
        ],
    )
    await scenario.send(client, {"x": 1})
    await drain(worker)
    (event,) = await list_events(client, set_id)
    assert event["state"] == "failed"
    assert [a["state"] for a in event["actionSet"]["actions"]] == ["success", "failed", "not started"]
    assert "no-such-flag" in event["actionSet"]["actions"][1]["details"]
    assert await _flag_enabled(client, scenario.feature)
    assert not await _flag_enabled(client, scenario.other_feature)


async def test_disabled_action_set_is_skipped_and_not_replayed(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    assert (await client.post(f"/api/admin/projects/default/actions/{set_id}/off")).status_code == 200
    await scenario.send(client, {})
    await drain(worker)
    assert (await client.post(f"/api/admin/projects/default/actions/{set_id}/on")).status_code == 200
    await drain(worker)
    assert await list_events(client, set_id) == []
    assert not await _flag_enabled(client, scenario.feature)


async def test_paging_returns_disjoint_newest_first_pages(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    signal_ids = [await scenario.send(client, {"n": n}) for n in range(7)]
    await drain(worker)
    first = await list_events(client, set_id, limit=3)
    second = await list_events(client, set_id, limit=3, offset=3)
    third = await list_events(client, set_id, limit=3, offset=6)
    pages = [e["signalId"] for e in first + second + third]
    assert pages == sorted(signal_ids, reverse=True)
    assert [e["id"] for e in first + second + third] == sorted(
        (e["id"] for e in first + second + third), reverse=True
    )
    assert await list_events(client, set_id, limit=3, offset=9) == []


async def test_in_process_worker_reacts_without_polling(db_url: str, scenario: Scenario) -> None:
    """With the worker inside `serve`, an acknowledged signal becomes a final event promptly."""
    settings = make_settings(db_url, run_worker=True, worker_poll_interval_seconds=30)
    async with running_app(settings) as (_app, client):
        set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
        await scenario.send(client, {"go": True})
        # The poll interval is 30 s: only the wake-up can make this finish within the 10 s bound.
        for _ in range(200):
            events = await list_events(client, set_id)
            if events and events[0]["state"] != "started":
                break
            await asyncio.sleep(0.05)
        assert events and events[0]["state"] == "success"


def _by_tag(action: str, tag: str, sort_order: int) -> dict[str, Any]:
    return {
        "action": action,
        "sortOrder": sort_order,
        "executionParams": {"project": "default", "environment": "production", "tag": tag},
    }


async def test_by_tag_actions_in_one_batch_match_the_backend_one_by_one(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, app: FastAPI
) -> None:
    """By-tag actions through the worker's batch: each tagged flag toggled, later actions see the
    result, and a refused by-tag action records the message the backend gives for a single call."""
    for name in (scenario.feature, scenario.other_feature):
        tagged = await client.post(
            f"/api/admin/features/{name}/tags", json={"type": "simple", "value": "bulk"}
        )
        assert tagged.status_code == 201, tagged.text
    admin_set = await scenario.add_set(
        client,
        [
            _by_tag("TOGGLE_FEATURES_ON_BY_TAG", "simple:bulk", 1),
            toggle("TOGGLE_FEATURE_OFF", scenario.other_feature, 2),
        ],
    )
    viewer_set = await scenario.add_set(
        client,
        [
            _by_tag("TOGGLE_FEATURES_OFF_BY_TAG", "simple:bulk", 1),
            toggle("TOGGLE_FEATURE_OFF", scenario.feature, 2),
        ],
        actor_id=scenario.viewer_actor_id,
    )
    await scenario.send(client, {"n": 1})
    await scenario.send(client, {"n": 2})
    assert await worker.drain_once() == 2  # one batch

    assert await _flag_enabled(client, scenario.feature)
    assert not await _flag_enabled(client, scenario.other_feature)
    for event in await list_events(client, admin_set):
        assert event["state"] == "success"
        assert [a["state"] for a in event["actionSet"]["actions"]] == ["success", "success"]

    ctx: Runtime = app.state.runtime
    async with ctx.db.read() as conn:
        viewer = await get_actor(conn, scenario.viewer_actor_id)
    assert viewer is not None
    try:
        await EmbeddedFlagBackend(ctx.db).toggle(
            viewer,
            ToggleCommand.by_tag(
                project="default", environment="production", enabled=False, tag=("simple", "bulk")
            ),
        )
    except FlagActionError as exc:
        expected = str(exc)
    else:
        raise AssertionError("a viewer must not toggle flags")
    for event in await list_events(client, viewer_set):
        assert event["state"] == "failed"
        first, second = event["actionSet"]["actions"]
        assert (first["state"], first["details"]) == ("failed", expected)
        assert (second["state"], second.get("details")) == ("not started", None)


async def test_a_by_tag_action_with_no_tagged_flag_succeeds_and_the_signal_is_done(
    client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    # The batch then has a project to read and no flag at all: a shape the flag store's read must handle.
    set_id = await scenario.add_set(
        client,
        [
            {
                "action": "TOGGLE_FEATURES_OFF_BY_TAG",
                "sortOrder": 1,
                "executionParams": {
                    "project": "default",
                    "environment": "production",
                    "tag": "simple:nobody",
                },
            }
        ],
    )
    await scenario.send(client, {})
    assert await drain(worker) == 1
    assert await drain(worker) == 0
    (event,) = await list_events(client, set_id)
    assert event["state"] == "success"
    assert [a["state"] for a in event["actionSet"]["actions"]] == ["success"]
