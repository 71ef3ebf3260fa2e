"""Notification channels through the API (ADR 0027): CRUD, validation, sealing, on both databases."""

from __future__ import annotations

import base64

import httpx
import pytest

from switchman.db.engine import Database
from tests.conftest import assert_error, make_settings
from tests.factories import all_stored_text, running_app
from tests.notifications.conftest import CHANNELS, add_channel
from tests.worker.conftest import Scenario, toggle

URL = "https://hooks.example.test/in/abc123"


async def test_a_webhook_channel_shows_its_secret_once_and_stores_it_sealed(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await add_channel(client, name="pager", url=URL)
    secret = created["signingSecret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["url"] == "https://hooks.example.test/…"
    assert created["kind"] == "webhook" and created["enabled"] is True
    assert created["actionSetIds"] is None
    assert created["events"] == ["success", "failure", "restored", "reverted", "undone"]

    fetched = (await client.get(f"{CHANNELS}/{created['id']}")).json()
    assert "signingSecret" not in fetched
    assert fetched == {key: value for key, value in created.items() if key != "signingSecret"}
    listed = (await client.get(CHANNELS)).json()["notificationChannels"]
    assert [channel["id"] for channel in listed] == [created["id"]]

    stored = await all_stored_text(db)
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert "abc123" not in stored  # the URL's path is sealed too (and kept out of the audit log)


async def test_a_slack_channel_has_no_signing_secret(client: httpx.AsyncClient) -> None:
    created = await add_channel(
        client,
        name="slack",
        kind="slack",
        url="https://hooks.slack.test/services/T0/B0/XyZ",
        events=["failure"],
    )
    assert created["signingSecret"] is None
    assert created["url"] == "https://hooks.slack.test/…"
    assert created["events"] == ["failure"]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("url", "ftp://hooks.example.test/x", "/url"),
        ("url", "https:///no-host", "/url"),
        ("url", "https://hooks.example.test:99999/x", "/url"),
        ("url", "https://hooks.example.test/a b", "/url"),
        ("actionSetIds", [424242], "/actionSetIds/0"),
    ],
)
async def test_invalid_channels_are_refused_with_the_offending_field(
    client: httpx.AsyncClient, field: str, value: object, path: str
) -> None:
    body = {"name": "x", "kind": "webhook", "url": URL, field: value}
    body_ = assert_error(await client.post(CHANNELS, json=body), 400, "BadDataError")
    assert [detail.get("path") for detail in body_["details"]] == [path]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "kind": "email", "url": URL},
        {"name": "x", "kind": "webhook", "url": URL, "events": ["exploded"]},
        {"name": "x", "kind": "webhook", "url": URL, "events": []},
        {"name": "", "kind": "webhook", "url": URL},
        {"name": "x", "kind": "webhook", "url": URL, "secret": "mine"},
        {"name": "x", "kind": "webhook"},
    ],
)
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert_error(await client.post(CHANNELS, json=body), 400)


async def test_names_are_unique_per_project_and_ids_are_checked(client: httpx.AsyncClient) -> None:
    await add_channel(client, name="ops")
    assert_error(await client.post(CHANNELS, json={"name": "ops", "kind": "slack", "url": URL}), 409)
    assert_error(await client.get(f"{CHANNELS}/999"), 404, "NotFoundError")
    assert_error(await client.get(f"{CHANNELS}/abc"), 404, "NotFoundError")
    assert_error(await client.get(f"{CHANNELS}/999/deliveries"), 404, "NotFoundError")
    assert_error(await client.get("/api/admin/projects/nope/notification-channels"), 404)
    assert_error(
        await client.post("/api/admin/projects/nope/notification-channels", json={"name": "a", "kind": "slack",
                                                                                   "url": URL}),
        404,
    )  # fmt: skip


async def test_replace_keeps_the_url_and_secret_unless_given_and_the_kind_is_fixed(
    client: httpx.AsyncClient, scenario: Scenario
) -> None:
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    created = await add_channel(client, name="ops")
    path = f"{CHANNELS}/{created['id']}"
    replaced = await client.put(
        path, json={"name": "ops-2", "kind": "webhook", "actionSetIds": [set_id], "events": ["failure", "success"],
                    "enabled": False},
    )  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    after = replaced.json()
    assert after["name"] == "ops-2" and after["url"] == created["url"]
    assert after["actionSetIds"] == [set_id]
    assert after["events"] == ["success", "failure"]  # declared order
    assert after["enabled"] is False and "signingSecret" not in after
    moved = await client.put(
        path, json={"name": "ops-2", "kind": "webhook", "url": "http://other.test:8080/x"}
    )
    assert moved.json()["url"] == "http://other.test:8080/…"
    assert_error(await client.put(path, json={"name": "ops-2", "kind": "slack"}), 400, "BadDataError")
    await add_channel(client, name="taken")
    assert_error(await client.put(path, json={"name": "taken", "kind": "webhook"}), 409)

    deleted = await client.delete(path)
    assert deleted.status_code == 200
    assert_error(await client.get(path), 404)
    assert_error(await client.delete(path), 404)


async def test_channels_need_an_admin(anon: httpx.AsyncClient) -> None:
    assert_error(await anon.get(CHANNELS), 401)
    assert_error(await anon.post(CHANNELS, json={"name": "x", "kind": "slack", "url": URL}), 401)


async def test_without_a_secret_key_a_channel_is_refused_clearly(db_url: str, db: Database) -> None:
    async with running_app(make_settings(db_url)) as (_app, client):
        for kind in ("webhook", "slack"):
            body = assert_error(
                await client.post(CHANNELS, json={"name": kind, "kind": kind, "url": URL}),
                400,
                "BadDataError",
            )
            assert "SWITCHMAN_SECRET_KEY" in body["message"]
        assert (await client.get(CHANNELS)).json() == {"notificationChannels": []}
