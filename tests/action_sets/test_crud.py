"""Action set CRUD, on/off, auth, 404s and audit events, through the real app on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from tests.action_sets.helpers import PROJECT, World, create_set, insert_project
from tests.conftest import assert_error

BASE = f"/api/admin/projects/{PROJECT}/actions"


async def test_create_returns_201_location_and_actions_schema(
    client: httpx.AsyncClient, world: World
) -> None:
    body = world.body()
    response = await client.post(BASE, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"actions/{created['id']}"
    assert created["project"] == PROJECT
    assert created["name"] == body["name"]
    assert created["description"] == body["description"]
    assert created["actorId"] == world.actor_id
    assert created["enabled"] is True
    assert created["createdByUserId"] == -42  # the admin API token's synthetic user
    assert created["createdAt"].endswith("Z")
    assert created["match"] == body["match"]
    [action] = created["actions"]
    assert action["id"] >= 1
    assert action["action"] == "TOGGLE_FEATURE_OFF"
    assert action["sortOrder"] == 1
    assert action["executionParams"] == body["actions"][0]["executionParams"]
    assert action["createdByUserId"] == -42
    assert set(created) == {
        "id",
        "project",
        "createdAt",
        "createdByUserId",
        "name",
        "description",
        "actorId",
        "enabled",
        "actions",
        "match",
    }


async def test_enabled_defaults_to_true_and_description_to_null(
    client: httpx.AsyncClient, world: World
) -> None:
    body = world.body()
    del body["enabled"], body["description"]
    created = await create_set(client, body)
    assert created["enabled"] is True
    assert created["description"] is None


async def test_filters_are_stored_normalised(client: httpx.AsyncClient, world: World) -> None:
    body = world.body()
    body["match"]["payload"] = {
        "count": {"operator": "NUM_GTE", "value": 5, "values": [], "inverted": False},
        "env": {"operator": "IN", "values": ["prod", 12], "caseInsensitive": True},
    }
    created = await create_set(client, body)
    assert created["match"]["payload"] == {
        "count": {"operator": "NUM_GTE", "value": "5"},
        "env": {"operator": "IN", "values": ["prod", "12"], "caseInsensitive": True},
    }


async def test_list_is_ascending_with_actions_in_sort_order(client: httpx.AsyncClient, world: World) -> None:
    params = {"project": PROJECT, "environment": "production", "featureName": "f"}
    first = await create_set(
        client,
        world.body(
            actions=[
                {"action": "TOGGLE_FEATURE_ON", "sortOrder": 3, "executionParams": params},
                {"action": "TOGGLE_FEATURE_OFF", "sortOrder": 1, "executionParams": params},
                {"action": "TOGGLE_FEATURE_ON", "sortOrder": 2, "executionParams": params},
            ]
        ),
    )
    second = await create_set(client, world.body())
    response = await client.get(BASE)
    assert response.status_code == 200
    listed = response.json()["actions"]
    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    assert [a["sortOrder"] for a in listed[0]["actions"]] == [1, 2, 3]
    assert listed[0] == first


async def test_list_of_a_project_without_action_sets_is_empty(
    client: httpx.AsyncClient, db: Database
) -> None:
    project = await insert_project(db)
    response = await client.get(f"/api/admin/projects/{project}/actions")
    assert response.status_code == 200
    assert response.json() == {"actions": []}


async def test_update_replaces_everything_and_recreates_actions(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await create_set(client, world.body())
    old_action_ids = {a["id"] for a in created["actions"]}
    params = {"project": PROJECT, "environment": "development", "tag": "simple:checkout"}
    new_body = world.body(
        name="renamed",
        description=None,
        enabled=False,
        actions=[{"action": "TOGGLE_FEATURES_ON_BY_TAG", "sortOrder": 1, "executionParams": params}],
    )
    new_body["match"]["payload"] = {}
    response = await client.put(f"{BASE}/{created['id']}", json=new_body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == created["id"]
    assert updated["createdAt"] == created["createdAt"]
    assert (updated["name"], updated["description"], updated["enabled"]) == ("renamed", None, False)
    assert updated["match"]["payload"] == {}
    [action] = updated["actions"]
    assert action["action"] == "TOGGLE_FEATURES_ON_BY_TAG"
    assert action["id"] not in old_action_ids
    assert action["id"] > max(old_action_ids)
    assert (await client.get(BASE)).json()["actions"] == [updated]


async def test_update_without_enabled_keeps_current_value(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body(enabled=False))
    body = world.body(name=created["name"])
    del body["enabled"]
    updated = (await client.put(f"{BASE}/{created['id']}", json=body)).json()
    assert updated["enabled"] is False


async def test_on_and_off_toggle_enabled_without_body(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body())
    off = await client.post(f"{BASE}/{created['id']}/off")
    assert off.status_code == 200, off.text
    assert off.json() == {**created, "enabled": False}
    assert (await client.post(f"{BASE}/{created['id']}/off")).json()["enabled"] is False  # idempotent
    # any content type is accepted on these bodyless routes
    on = await client.post(f"{BASE}/{created['id']}/on", headers={"Content-Type": "text/plain"})
    assert on.status_code == 200, on.text
    assert on.json() == created


async def test_delete_returns_200_empty_then_404(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body())
    response = await client.delete(f"{BASE}/{created['id']}")
    assert response.status_code == 200
    assert response.content == b""
    assert (await client.get(BASE)).json() == {"actions": []}
    assert_error(await client.delete(f"{BASE}/{created['id']}"), 404, "NotFoundError")
    assert_error(await client.post(f"{BASE}/{created['id']}/on"), 404, "NotFoundError")
    assert_error(await client.get(f"{BASE}/{created['id']}/events"), 404, "NotFoundError")


async def test_delete_cascades_to_actions(client: httpx.AsyncClient, world: World, db: Database) -> None:
    created = await create_set(client, world.body())
    await client.delete(f"{BASE}/{created['id']}")
    async with db.read() as conn:
        remaining = await conn.scalar(
            sa.select(sa.func.count()).select_from(t.action).where(t.action.c.action_set_id == created["id"])
        )
    assert remaining == 0


async def test_ids_are_never_reused_after_deleting_the_newest(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await create_set(client, world.body())
    await client.delete(f"{BASE}/{first['id']}")
    second = await create_set(client, world.body())
    assert second["id"] > first["id"]
    assert second["actions"][0]["id"] > first["actions"][0]["id"]


async def test_audit_events_for_every_change(client: httpx.AsyncClient, world: World, db: Database) -> None:
    created = await create_set(client, world.body())
    set_id = created["id"]
    await client.put(f"{BASE}/{set_id}", json=world.body(name="second-name"))
    await client.post(f"{BASE}/{set_id}/off")
    await client.delete(f"{BASE}/{set_id}")
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(t.event).where(t.event.c.type.like("actions-%")).order_by(t.event.c.id)
            )
        ).all()
    assert [row.type for row in rows] == [
        "actions-created",
        "actions-updated",
        "actions-updated",
        "actions-deleted",
    ]
    assert all(row.project == PROJECT and row.created_by_user_id == -42 for row in rows)
    assert rows[0].data["id"] == set_id and rows[0].pre_data is None
    assert rows[1].pre_data["name"] == created["name"] and rows[1].data["name"] == "second-name"
    assert rows[2].pre_data["enabled"] is True and rows[2].data["enabled"] is False
    assert rows[3].pre_data["id"] == set_id and rows[3].data is None


# --- 404s ------------------------------------------------------------------------------------------


def _routes(set_id: Any, project: str = PROJECT) -> list[tuple[str, str]]:
    base = f"/api/admin/projects/{project}/actions"
    return [
        ("PUT", f"{base}/{set_id}"),
        ("DELETE", f"{base}/{set_id}"),
        ("POST", f"{base}/{set_id}/on"),
        ("POST", f"{base}/{set_id}/off"),
        ("GET", f"{base}/{set_id}/events"),
        ("POST", f"{base}/{set_id}/explain"),
    ]


def _json_for(method: str, path: str, world: World) -> dict[str, Any] | None:
    if method == "PUT":
        return world.body()
    if path.endswith("/explain"):
        return {"payload": {}}
    return None


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", "99999999999", "config", "%20"])
async def test_non_integer_or_impossible_ids_are_404(
    client: httpx.AsyncClient, world: World, bad_id: str
) -> None:
    for method, path in _routes(bad_id):
        response = await client.request(method, path, json=_json_for(method, path, world))
        assert_error(response, 404, "NotFoundError")


async def test_unknown_action_set_is_404(client: httpx.AsyncClient, world: World) -> None:
    for method, path in _routes(424242):
        assert_error(
            await client.request(method, path, json=_json_for(method, path, world)), 404, "NotFoundError"
        )


async def test_action_set_of_another_project_is_404(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    other = await insert_project(db)
    for method, path in _routes(created["id"], project=other):
        assert_error(
            await client.request(method, path, json=_json_for(method, path, world)), 404, "NotFoundError"
        )
    # still intact in its own project
    assert (await client.get(BASE)).json()["actions"] == [created]


@pytest.mark.parametrize("project", ["nope", "a%00b", "x" * 300])
async def test_unknown_project_is_404_on_every_route(
    client: httpx.AsyncClient, world: World, project: str
) -> None:
    base = f"/api/admin/projects/{project}/actions"
    assert_error(await client.get(base), 404, "NotFoundError")
    assert_error(await client.post(base, json=world.body()), 404, "NotFoundError")
    assert_error(await client.get(f"{base}/config"), 404, "NotFoundError")
    for method, path in _routes(1, project=project):
        assert_error(
            await client.request(method, path, json=_json_for(method, path, world)), 404, "NotFoundError"
        )


# --- auth --------------------------------------------------------------------------------------------


def _all_routes() -> list[tuple[str, str]]:
    return [("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/config"), *_routes(1)]


async def test_every_route_needs_a_token(anon: httpx.AsyncClient, world: World) -> None:
    for method, path in _all_routes():
        assert_error(
            await anon.request(method, path, json=_json_for(method, path, world)),
            401,
            "AuthenticationRequired",
        )


async def test_every_route_needs_admin_even_reads(editor: httpx.AsyncClient, world: World) -> None:
    for method, path in _all_routes():
        body = assert_error(
            await editor.request(method, path, json=_json_for(method, path, world)), 403, "PermissionError"
        )
        assert body["permissions"] == ["ADMIN"]


async def test_a_service_account_with_admin_role_may_use_the_api(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    from tests.action_sets.helpers import ADMIN_ROLE, insert_pat, insert_service_account

    account = await insert_service_account(db, role=ADMIN_ROLE)
    secret = await insert_pat(db, account)
    response = await client.post(BASE, json=world.body(), headers={"Authorization": secret})
    assert response.status_code == 201, response.text
    assert response.json()["createdByUserId"] == account
