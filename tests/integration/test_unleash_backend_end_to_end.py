"""Signals to switchman turn flags on/off in a real Unleash OSS: success, by tag, not found, Unleash down."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import unique
from tests.integration.conftest import Endpoint, action, create_action_set, final_event, send_signal
from tests.unleash_oss import (
    ADMIN_TOKEN_USER_ID,
    UnleashServer,
    admin_call,
    create_flag,
    create_flag_on,
    remote_enabled,
)

pytestmark = pytest.mark.integration


async def test_signal_turns_a_real_unleash_flag_off_in_production(
    client: httpx.AsyncClient, endpoint: Endpoint, unleash_server: UnleashServer
) -> None:
    name = unique("checkout")
    with unleash_server.admin() as unleash:
        create_flag_on(unleash, name, "production", "development")
    set_id = await create_action_set(client, endpoint, [action("TOGGLE_FEATURE_OFF", featureName=name)])

    signal_id = await send_signal(client, endpoint)
    event = await final_event(client, set_id, signal_id)

    assert event["state"] == "success", event
    assert [(a["action"], a["state"]) for a in event["actionSet"]["actions"]] == [
        ("TOGGLE_FEATURE_OFF", "success")
    ]
    with unleash_server.admin() as unleash:
        assert not remote_enabled(unleash, name, "production")
        assert remote_enabled(unleash, name, "development")
        last = unleash.get(f"/api/admin/events/{name}").json()["events"][0]  # newest first
    assert (last["type"], last["environment"]) == ("feature-environment-disabled", "production")
    assert last["createdByUserId"] == ADMIN_TOKEN_USER_ID  # Unleash names switchman's token (ADR 0007)


async def test_by_tag_action_changes_exactly_the_tagged_flags(
    client: httpx.AsyncClient, endpoint: Endpoint, unleash_server: UnleashServer
) -> None:
    tag = ("simple", unique("kill"))
    tagged = sorted([unique("pay-a"), unique("pay-b")])
    other_tag, untagged = unique("search"), unique("plain")
    with unleash_server.admin() as unleash:
        for name in tagged:
            create_flag(unleash, name, tag)
        create_flag(unleash, other_tag, ("simple", unique("other")))
        create_flag(unleash, untagged)
        for name in (*tagged, other_tag, untagged):
            admin_call(
                unleash, "POST", f"/api/admin/projects/default/features/{name}/environments/production/on"
            )
    set_id = await create_action_set(
        client, endpoint, [action("TOGGLE_FEATURES_OFF_BY_TAG", tag=f"{tag[0]}:{tag[1]}")]
    )

    event = await final_event(client, set_id, await send_signal(client, endpoint))

    assert event["state"] == "success", event
    with unleash_server.admin() as unleash:
        assert [remote_enabled(unleash, name, "production") for name in tagged] == [False, False]
        assert remote_enabled(unleash, other_tag, "production")
        assert remote_enabled(unleash, untagged, "production")


async def test_missing_feature_gives_a_failed_event_with_unleash_message(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    missing = unique("no-such-flag")
    set_id = await create_action_set(client, endpoint, [action("TOGGLE_FEATURE_OFF", featureName=missing)])

    event = await final_event(client, set_id, await send_signal(client, endpoint))

    assert event["state"] == "failed", event
    (step,) = event["actionSet"]["actions"]
    assert step["state"] == "failed"
    assert step["details"] == f'There\'s no feature named "{missing}" in project "default".'


async def test_missing_environment_gives_a_failed_event_with_unleash_message(
    client: httpx.AsyncClient, endpoint: Endpoint, unleash_server: UnleashServer
) -> None:
    name = unique("checkout")
    with unleash_server.admin() as unleash:
        create_flag(unleash, name)
    set_id = await create_action_set(
        client, endpoint, [action("TOGGLE_FEATURE_ON", environment="staging", featureName=name)]
    )

    event = await final_event(client, set_id, await send_signal(client, endpoint))

    assert event["state"] == "failed", event
    assert (
        event["actionSet"]["actions"][0]["details"]
        == f"Could not find environment staging for feature: {name}"
    )


async def test_stopped_unleash_fails_after_the_retries_and_the_worker_keeps_serving(
    client: httpx.AsyncClient, endpoint: Endpoint, unleash_server: UnleashServer
) -> None:
    name = unique("checkout")
    with unleash_server.admin() as unleash:
        create_flag_on(unleash, name, "production")
    set_id = await create_action_set(client, endpoint, [action("TOGGLE_FEATURE_OFF", featureName=name)])

    unleash_server.stop()
    try:
        first = await final_event(client, set_id, await send_signal(client, endpoint))
        # The worker was not hung by the first failure: the next signal is run and fails the same way.
        second = await final_event(client, set_id, await send_signal(client, endpoint))
    finally:
        unleash_server.start()
    for event in (first, second):
        assert event["state"] == "failed", event
        details = event["actionSet"]["actions"][0]["details"]
        assert details.startswith(f"Could not reach the Unleash server at {unleash_server.url}: "), details
        assert details.endswith("(3 attempts)"), details  # 1 + SWITCHMAN_UNLEASH_RETRIES=2

    # Unleash is back: the next signal succeeds and the flag is off there.
    third = await final_event(client, set_id, await send_signal(client, endpoint))
    assert third["state"] == "success", third
    with unleash_server.admin() as unleash:
        assert not remote_enabled(unleash, name, "production")


async def test_actions_config_offers_the_unleash_project_options(
    client: httpx.AsyncClient, unleash_server: UnleashServer
) -> None:
    name, tag = unique("remote-only"), ("simple", unique("cfg"))
    with unleash_server.admin() as unleash:
        create_flag(unleash, name, tag)

    response = await client.get("/api/admin/projects/default/actions/config")

    assert response.status_code == 200, response.text
    parameters = {p["name"]: p for p in response.json()["TOGGLE_FEATURE_OFF"]["parameters"]}
    assert parameters["environment"]["options"] == ["development", "production"]
    assert name in parameters["featureName"]["options"]  # a flag only Unleash has
    by_tag = {p["name"]: p for p in response.json()["TOGGLE_FEATURES_OFF_BY_TAG"]["parameters"]}
    assert f"{tag[0]}:{tag[1]}" in by_tag["tag"]["options"]
