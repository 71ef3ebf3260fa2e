"""Flags: create, read, list, archive, and on/off with Unleash's semantics and audit events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchman.audit.log import record_event
from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal, PrincipalKind
from switchman.db.engine import Database
from switchman.errors import PermissionDeniedError
from switchman.flags.toggles import set_feature_enabled
from tests.conftest import ADMIN_TOKEN, assert_error, unique
from tests.factories import make_flag, make_project
from tests.service_accounts.helpers import Caller

P = "/api/admin/projects"


async def events_of(client: httpx.AsyncClient, feature: str) -> list[dict[str, Any]]:
    body = (await client.get(f"/api/admin/events/{feature}")).json()
    assert body["toggleName"] == feature
    events: list[dict[str, Any]] = body["events"]
    return events


def toggle(feature: str, env: str, state: str, project: str = "default") -> str:
    return f"{P}/{project}/features/{feature}/environments/{env}/{state}"


async def test_create_feature_wire_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{P}/default/features",
        json={"name": "checkout-v2", "description": "new checkout", "type": "release"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert {
        k: body[k] for k in ("name", "description", "type", "project", "stale", "impressionData", "archived")
    } == {
        "name": "checkout-v2",
        "description": "new checkout",
        "type": "release",
        "project": "default",
        "stale": False,
        "impressionData": False,
        "archived": False,
    }
    assert body["createdAt"].endswith("Z")
    feature = (await client.get(f"{P}/default/features/checkout-v2")).json()
    assert [(e["name"], e["enabled"], e["type"], e["strategies"]) for e in feature["environments"]] == [
        ("development", False, "development", []),
        ("production", False, "production", []),
    ]
    assert feature["createdBy"] == {"id": -42, "name": "Unleash Admin Token User"}
    default_type = (await client.post(f"{P}/default/features", json={"name": unique("t")})).json()["type"]
    assert default_type == "release"


async def test_feature_names_and_types_are_validated(client: httpx.AsyncClient) -> None:
    for bad in ("bad name!", "a/b", ".", "..", "", "x" * 101, "ümlaut"):
        body = assert_error(
            await client.post(f"{P}/default/features", json={"name": bad}), 400, "BadDataError"
        )
        assert body["details"][0]["path"] == "/name", bad
    for good in ("a", "A.b_c-d~e", "x" * 100):
        assert (await client.post(f"{P}/default/features", json={"name": good})).status_code == 201, good
    body = assert_error(
        await client.post(f"{P}/default/features", json={"name": unique(), "type": "nonsense"}),
        400,
        "BadDataError",
    )
    assert body["details"][0]["path"] == "/type"
    for kind in ("experiment", "operational", "kill-switch", "permission"):
        assert (
            await client.post(f"{P}/default/features", json={"name": unique(), "type": kind})
        ).status_code == 201
    assert_error(await client.post(f"{P}/default/features", json={"name": unique(), "extra": 1}), 400)


async def test_names_are_unique_across_projects(client: httpx.AsyncClient) -> None:
    other = await make_project(client)
    name = await make_flag(client)
    body = assert_error(
        await client.post(f"{P}/{other}/features", json={"name": name}), 409, "NameExistsError"
    )
    assert body["message"] == "A flag with that name already exists"
    assert_error(await client.post(f"{P}/nope/features", json={"name": unique()}), 404, "NotFoundError")


async def test_not_found_messages(client: httpx.AsyncClient) -> None:
    other = await make_project(client)
    name = await make_flag(client)
    body = assert_error(await client.get(f"{P}/default/features/does-not-exist"), 404, "NotFoundError")
    assert body["message"] == 'There\'s no feature named "does-not-exist" in project "default".'
    body = assert_error(await client.get(f"{P}/{other}/features/{name}"), 404, "NotFoundError")
    assert body["message"] == (
        f'There\'s no feature named "{name}" in project "{other}", '
        f'but there\'s a feature with that name in project "default"'
    )
    body = assert_error(await client.post(toggle(name, "nope", "on")), 404, "NotFoundError")
    assert body["message"] == f"Could not find environment nope for feature: {name}"
    assert_error(await client.post(toggle("does-not-exist", "production", "on")), 404)
    assert_error(await client.post(toggle(name, "production", "on", project=other)), 404)
    assert_error(await client.get(f"{P}/nope/features"), 404)


async def test_on_off_idempotent_events_only_on_change(client: httpx.AsyncClient) -> None:
    name = await make_flag(client)
    first = await client.post(toggle(name, "production", "on"))
    assert first.status_code == 200 and first.content == b""
    assert (await client.post(toggle(name, "production", "on"))).status_code == 200
    state = (await client.get(f"{P}/default/features/{name}/environments/production")).json()
    assert state["name"] == name and state["environment"] == "production" and state["enabled"] is True
    [strategy] = state["strategies"]
    assert strategy["name"] == "flexibleRollout"
    assert strategy["parameters"] == {"rollout": "100", "stickiness": "default", "groupId": name}
    assert strategy["constraints"] == [] and strategy["disabled"] is False

    assert (await client.post(toggle(name, "production", "off"))).status_code == 200
    assert (await client.post(toggle(name, "production", "off"))).status_code == 200
    assert (
        await client.post(toggle(name, "production", "on"))
    ).status_code == 200  # strategy exists: no new one
    types = [e["type"] for e in reversed(await events_of(client, name))]
    assert types == [
        "feature-created",
        "feature-strategy-add",
        "feature-environment-enabled",
        "feature-environment-disabled",
        "feature-environment-enabled",
    ]
    assert (
        len((await client.get(f"{P}/default/features/{name}/environments/production")).json()["strategies"])
        == 1
    )
    development = (await client.get(f"{P}/default/features/{name}/environments/development")).json()
    assert development["enabled"] is False and development["strategies"] == []


async def test_toggle_accepts_any_content_type_and_no_body(
    anon: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    name = await make_flag(client)
    response = await anon.post(
        toggle(name, "development", "on"),
        headers={"Authorization": ADMIN_TOKEN, "Content-Type": "text/plain"},
    )
    assert response.status_code == 200


async def test_event_fields_carry_the_actor(client: httpx.AsyncClient, editor: Caller) -> None:
    name = await make_flag(editor.http)
    assert (
        await client.post("/api/admin/features/" + name + "/tags", json={"type": "simple", "value": "ops"})
    ).status_code == 201
    assert (await editor.http.post(toggle(name, "development", "on"))).status_code == 200
    enabled = next(e for e in await events_of(client, name) if e["type"] == "feature-environment-enabled")
    assert enabled["createdBy"] == editor.username and enabled["createdByUserId"] == editor.id
    assert enabled["featureName"] == name and enabled["project"] == "default"
    assert enabled["environment"] == "development"
    assert enabled["data"] is None and enabled["preData"] is None
    assert enabled["tags"] == [{"type": "simple", "value": "ops"}]
    created = next(e for e in await events_of(client, name) if e["type"] == "feature-created")
    assert created["createdBy"] == editor.username and created["data"]["name"] == name
    listing = (await client.get("/api/admin/events")).json()
    assert listing["version"] == 1 and listing["totalEvents"] >= 4
    ids = [e["id"] for e in listing["events"]]
    assert ids == sorted(ids, reverse=True)
    assert set(listing["events"][0]) == {
        "id", "type", "createdBy", "createdByUserId", "createdAt", "data", "preData", "tags",
        "featureName", "project", "environment",
    }  # fmt: skip


async def test_events_by_project_and_limit(client: httpx.AsyncClient) -> None:
    other = await make_project(client)
    await make_flag(client, project=other)
    await make_flag(client)
    in_other = (await client.get("/api/admin/events", params={"project": other})).json()
    assert {e["project"] for e in in_other["events"]} == {other}
    assert [e["type"] for e in in_other["events"]] == ["feature-created", "project-created"]
    assert in_other["totalEvents"] == 2


async def test_listing_is_capped_at_the_newest_100(client: httpx.AsyncClient, db: Database) -> None:
    actor = Principal(
        kind=PrincipalKind.SERVICE_ACCOUNT, user_id=5, username="robot", permissions=frozenset()
    )
    async with db.transaction() as conn:
        ids = [
            await record_event(
                conn,
                type="feature-created",
                actor=actor,
                feature_name=f"f{i}",
                project="default",
                visible_to_clients=True,
            )
            for i in range(105)
        ]
    listing = (await client.get("/api/admin/events")).json()
    assert [e["id"] for e in listing["events"]] == list(reversed(ids))[:100]
    assert listing["totalEvents"] == 105
    newest = listing["events"][0]
    assert (
        newest["createdBy"] == "robot" and newest["createdByUserId"] == 5 and newest["featureName"] == "f104"
    )
    assert newest["tags"] == []


async def test_viewer_gets_403_editor_may_toggle(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, viewer: Caller, editor: Caller
) -> None:
    name = await make_flag(client)
    assert_error(await anon.post(toggle(name, "production", "on")), 401, "AuthenticationRequired")
    assert_error(
        await anon.post(toggle(name, "production", "on"), headers={"Authorization": "user:" + "0" * 56}),
        401,
        "UnauthorizedError",
    )
    body = assert_error(await viewer.http.post(toggle(name, "production", "on")), 403, "PermissionError")
    assert body["permissions"] == ["UPDATE_FEATURE_ENVIRONMENT"]
    assert "UPDATE_FEATURE_ENVIRONMENT" in body["message"]
    # permission is checked before existence, as Unleash does
    assert_error(await viewer.http.post(toggle("does-not-exist", "production", "on")), 403)
    assert_error(
        await viewer.http.post(f"{P}/default/features", json={"name": unique()}), 403, "PermissionError"
    )
    assert_error(await viewer.http.delete(f"{P}/default/features/{name}"), 403, "PermissionError")
    # reads are open to any authenticated caller
    assert (await viewer.http.get(f"{P}/default/features/{name}")).status_code == 200
    assert (await viewer.http.get("/api/admin/events")).status_code == 200
    assert (await editor.http.post(toggle(name, "production", "on"))).status_code == 200
    assert (await client.get(f"{P}/default/features/{name}")).json()["environments"][1]["enabled"] is True


async def test_archive(client: httpx.AsyncClient, editor: Caller) -> None:
    name = await make_flag(client, type="kill-switch")
    tagged = await client.post(f"/api/admin/features/{name}/tags", json={"type": "simple", "value": "gone"})
    assert tagged.status_code == 201
    archived = await editor.http.delete(f"{P}/default/features/{name}")
    assert archived.status_code == 202 and archived.content == b""
    assert name not in [f["name"] for f in (await client.get(f"{P}/default/features")).json()["features"]]
    assert name not in [
        f["name"]
        for f in (await client.get(f"{P}/default/features", params={"tag": "simple:gone"})).json()["features"]
    ]
    assert_error(await client.get(f"{P}/default/features/{name}"), 404)
    body = assert_error(await client.post(toggle(name, "production", "on")), 404, "NotFoundError")
    assert "archived" in body["message"]
    assert_error(await client.delete(f"{P}/default/features/{name}"), 404)
    assert_error(await client.post(f"{P}/default/features", json={"name": name}), 409, "NameExistsError")
    event = (await events_of(client, name))[0]
    assert event["type"] == "feature-archived" and event["createdByUserId"] == editor.id


async def test_list_with_tag_filter(client: httpx.AsyncClient) -> None:
    tagged = await make_flag(client)
    other = await make_flag(client)
    plain = await make_flag(client)
    await client.post(f"/api/admin/features/{tagged}/tags", json={"type": "simple", "value": "payments"})
    await client.post(f"/api/admin/features/{other}/tags", json={"type": "simple", "value": "search"})
    await client.post(toggle(tagged, "production", "on"))
    everything = (await client.get(f"{P}/default/features")).json()
    assert everything["version"] == 2
    assert [f["name"] for f in everything["features"]] == [tagged, other, plain]
    only = (await client.get(f"{P}/default/features", params={"tag": "simple:payments"})).json()["features"]
    assert [f["name"] for f in only] == [tagged]
    assert only[0]["tags"] == [{"type": "simple", "value": "payments"}]
    production = only[0]["environments"][1]
    assert production["name"] == "production" and production["enabled"] is True
    assert production["hasStrategies"] is True and production["hasEnabledStrategies"] is True
    either = (
        await client.get(
            f"{P}/default/features", params=[("tag", "simple:payments"), ("tag", "simple:search")]
        )
    ).json()["features"]
    assert [f["name"] for f in either] == [tagged, other]
    assert (await client.get(f"{P}/default/features", params={"tag": "simple:none"})).json()["features"] == []
    assert_error(await client.get(f"{P}/default/features", params={"tag": "no-colon"}), 400, "BadDataError")
    overview = (await client.get(f"{P}/default")).json()
    assert overview["featureCount"] == 3 and len(overview["features"]) == 3
    default = next(p for p in (await client.get(P)).json()["projects"] if p["id"] == "default")
    assert default["featureCount"] == 3


async def test_default_strategy_needs_create_strategy_permission(
    client: httpx.AsyncClient, db: Database
) -> None:
    """An actor with UPDATE_FEATURE_ENVIRONMENT but not CREATE_FEATURE_STRATEGY may not trigger the default
    strategy; once a strategy exists it may turn the flag on."""
    name = await make_flag(client)
    limited = Principal(
        kind=PrincipalKind.SERVICE_ACCOUNT,
        user_id=77,
        username="limited",
        permissions=frozenset({UPDATE_FEATURE_ENVIRONMENT}),
    )
    with pytest.raises(PermissionDeniedError) as refused:
        async with db.transaction() as conn:
            await set_feature_enabled(
                conn,
                actor=limited,
                project="default",
                feature_name=name,
                environment="production",
                enabled=True,
            )
    assert refused.value.extra["permissions"] == ["CREATE_FEATURE_STRATEGY"]
    await client.post(toggle(name, "production", "on"))
    await client.post(toggle(name, "production", "off"))
    async with db.transaction() as conn:
        changed = await set_feature_enabled(
            conn, actor=limited, project="default", feature_name=name, environment="production", enabled=True
        )
    assert changed is True


async def test_bulk_toggle(client: httpx.AsyncClient, viewer: Caller) -> None:
    a, b = await make_flag(client), await make_flag(client)
    url = f"{P}/default/bulk_features/environments/development"
    assert_error(await viewer.http.post(f"{url}/on", json={"features": [a]}), 403, "PermissionError")
    assert (await client.post(f"{url}/on", json={"features": [a]})).status_code == 200
    assert (await client.post(f"{url}/on", json={"features": [a, b]})).status_code == 200
    enabled_events = [
        e
        for e in (await client.get("/api/admin/events")).json()["events"]
        if e["type"] == "feature-environment-enabled"
    ]
    assert sorted(e["featureName"] for e in enabled_events) == sorted([a, b])
    # all or nothing: one unknown flag aborts the whole request
    assert_error(await client.post(f"{url}/off", json={"features": [a, "does-not-exist"]}), 404)
    assert (await client.get(f"{P}/default/features/{a}/environments/development")).json()["enabled"] is True
    assert (await client.post(f"{url}/off", json={"features": [a, b]})).status_code == 200
    assert (await client.get(f"{P}/default/features/{b}/environments/development")).json()["enabled"] is False
    assert_error(await client.post(f"{url}/off", json={"nope": []}), 400)
