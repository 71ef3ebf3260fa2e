"""Signal endpoints: CRUD, on/off, validation, names, limits, permissions and audit events."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from tests.conftest import assert_error, unique
from tests.factories import make_endpoint, make_endpoint_token
from tests.signal_endpoints.helpers import BASE, app_client, create_viewer_pat


async def test_create_answers_201_with_location_url_and_defaults(client: httpx.AsyncClient) -> None:
    name = unique("alerts")
    response = await client.post(BASE, json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"signal-endpoints/{body['id']}"
    assert body["id"] >= 1
    assert body["name"] == name
    assert body["enabled"] is True
    assert body["description"] is None
    assert body["createdByUserId"] == -42
    assert body["createdAt"].endswith("Z")
    assert body["url"] == f"http://switchman.test/api/signal-endpoint/{name}"
    assert body["tokens"] == []


async def test_create_keeps_enabled_false_and_description_and_ignores_unknown_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        BASE, json={"name": unique("x"), "enabled": False, "description": "from Grafana", "color": "red"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["enabled"] is False
    assert response.json()["description"] == "from Grafana"
    assert "color" not in response.json()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "Upper"},
        {"name": "with space"},
        {"name": "dot.name"},
        {"name": "ü-mlaut"},
        {"name": "x" * 256},
        {"name": 42},
        {"name": "ok", "enabled": "yes"},
        {"name": "ok", "description": "d" * 10_001},
    ],
)
async def test_create_rejects_invalid_bodies_with_bad_data(client: httpx.AsyncClient, body: Any) -> None:
    error = assert_error(await client.post(BASE, json=body), 400, "BadDataError")
    assert all("path" in detail for detail in error["details"]), error


async def test_names_may_use_digits_dashes_underscores_up_to_255(client: httpx.AsyncClient) -> None:
    for name in ("a", "0-9_x", "n" * 255):
        assert (await client.post(BASE, json={"name": name})).status_code == 201


async def test_duplicate_name_is_409_on_create_and_on_update(client: httpx.AsyncClient) -> None:
    first = await make_endpoint(client)
    second = await make_endpoint(client)
    assert_error(await client.post(BASE, json={"name": first["name"]}), 409, "NameExistsError")
    assert_error(
        await client.put(f"{BASE}/{second['id']}", json={"name": first["name"]}), 409, "NameExistsError"
    )
    # keeping one's own name is not a conflict
    own = await client.put(f"{BASE}/{first['id']}", json={"name": first["name"], "description": "same"})
    assert own.status_code == 200, own.text


async def test_endpoint_limit_is_400_exceeds_limit(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_endpoints_limit=2) as (_app, client):
        await make_endpoint(client)
        await make_endpoint(client)
        error = assert_error(await client.post(BASE, json={"name": unique()}), 400, "ExceedsLimitError")
        assert "2" in error["message"]
        assert len((await client.get(BASE)).json()["signalEndpoints"]) == 2


# Unleash's signalEndpointsSchema / signalEndpointSchema / signalEndpointTokenSchema (additionalProperties
# false; `url` and `tokens` optional, `token` only in the create answer), as Unleash's OpenAPI declares them.
_TOKEN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "signalEndpointId", "createdAt", "createdByUserId"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "token": {"type": "string"},
        "name": {"type": "string"},
        "signalEndpointId": {"type": "integer"},
        "createdAt": {"type": "string", "format": "date-time"},
        "createdByUserId": {"type": "integer"},
    },
}
SIGNAL_ENDPOINTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["signalEndpoints"],
    "properties": {
        "signalEndpoints": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "enabled", "name", "createdAt", "createdByUserId"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "enabled": {"type": "boolean"},
                    "name": {"type": "string"},
                    "description": {"type": ["string", "null"]},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "createdByUserId": {"type": "integer"},
                    "url": {"type": "string"},
                    "tokens": {"type": "array", "items": _TOKEN_SCHEMA},
                },
            },
        }
    },
}


async def test_list_has_tokens_without_secrets_and_each_url(client: httpx.AsyncClient) -> None:
    first = await make_endpoint(client, description="one")
    second = await make_endpoint(client)
    token = await make_endpoint_token(client, first["id"], "grafana")
    listed = (await client.get(BASE)).json()["signalEndpoints"]
    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    assert listed[0]["tokens"] == [
        {
            "id": token["id"],
            "name": "grafana",
            "signalEndpointId": first["id"],
            "createdAt": token["createdAt"],
            "createdByUserId": -42,
        }
    ]
    assert listed[1]["tokens"] == []
    # the call URL, as in the create answer (optional in Unleash's signalEndpointSchema, so still valid)
    assert [item["url"] for item in listed] == [first["url"], second["url"]]
    assert first["url"].endswith(f"/api/signal-endpoint/{first['name']}")
    jsonschema.validate((await client.get(BASE)).json(), SIGNAL_ENDPOINTS_SCHEMA)
    assert token["token"] not in (await client.get(BASE)).text


async def test_deleting_an_endpoint_that_enabled_action_sets_use_is_409_naming_them(
    client: httpx.AsyncClient, db: Database
) -> None:
    endpoint = await make_endpoint(client)
    actor = await client.post(
        "/api/admin/service-account", json={"username": unique("bot"), "name": "Bot", "rootRole": 2}
    )
    body = {
        "name": unique("kill"),
        "actorId": actor.json()["id"],
        "match": {"source": "signal-endpoint", "sourceId": endpoint["id"], "payload": {}},
        "actions": [
            {
                "action": "TOGGLE_FEATURE_OFF",
                "sortOrder": 1,
                "executionParams": {"project": "default", "environment": "production", "featureName": "f"},
            }
        ],
    }
    created = await client.post("/api/admin/projects/default/actions", json=body)
    assert created.status_code == 201, created.text
    set_id = created.json()["id"]

    refused = assert_error(await client.delete(f"{BASE}/{endpoint['id']}"), 409, "ConflictError")
    assert refused["message"] == (
        f'Signal endpoint "{endpoint["name"]}" is the source of 1 enabled action set: "{body["name"]}" '
        f'(id {set_id}, project "default"). Disable them, point them at another endpoint or delete them first.'
    )
    assert refused["details"] == [
        {
            "message": f'enabled action set "{body["name"]}" (id {set_id}, project "default") listens to this endpoint'
        }
    ]
    assert (await client.get(f"{BASE}")).json()["signalEndpoints"][0]["id"] == endpoint[
        "id"
    ]  # nothing deleted

    # a disabled set does not block the delete; it stays, and its warnings say its source is gone
    assert (await client.post(f"/api/admin/projects/default/actions/{set_id}/off")).status_code == 200
    assert (await client.delete(f"{BASE}/{endpoint['id']}")).status_code == 200
    warnings = (await client.get(f"/api/admin/projects/default/actions/{set_id}/warnings")).json()["warnings"]
    assert warnings[0]["code"] == "source-missing"
    assert warnings[0]["path"] == "/match/sourceId"


async def test_update_replaces_fields_keeps_enabled_when_absent_and_returns_url(
    client: httpx.AsyncClient,
) -> None:
    endpoint = await make_endpoint(client, enabled=False, description="old")
    token = await make_endpoint_token(client, endpoint["id"])
    new_name = unique("renamed")
    response = await client.put(f"{BASE}/{endpoint['id']}", json={"name": new_name})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == new_name
    assert body["description"] is None  # full update: an absent description clears it
    assert body["enabled"] is False  # absent `enabled` keeps the current value
    assert body["url"] == f"http://switchman.test/api/signal-endpoint/{new_name}"
    assert [item["id"] for item in body["tokens"]] == [token["id"]]
    assert "token" not in body["tokens"][0]
    enabled = await client.put(f"{BASE}/{endpoint['id']}", json={"name": new_name, "enabled": True})
    assert enabled.json()["enabled"] is True


@pytest.mark.parametrize("endpoint_id", ["999999", "abc", "0", "-1", "99999999999"])
async def test_unknown_or_impossible_ids_are_404(client: httpx.AsyncClient, endpoint_id: str) -> None:
    assert_error(await client.put(f"{BASE}/{endpoint_id}", json={"name": "x"}), 404, "NotFoundError")
    assert_error(await client.delete(f"{BASE}/{endpoint_id}"), 404, "NotFoundError")
    assert_error(await client.post(f"{BASE}/{endpoint_id}/on"), 404, "NotFoundError")
    assert_error(await client.post(f"{BASE}/{endpoint_id}/off"), 404, "NotFoundError")


async def test_update_validates_the_body(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    assert_error(await client.put(f"{BASE}/{endpoint['id']}", json={"name": "Bad Name"}), 400, "BadDataError")
    assert_error(await client.put(f"{BASE}/{endpoint['id']}", json={}), 400, "BadDataError")


async def test_on_off_toggle_idempotently_and_return_the_endpoint(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    for _ in range(2):
        off = await client.post(f"{BASE}/{endpoint['id']}/off")
        assert off.status_code == 200, off.text
        assert off.json()["enabled"] is False
        assert off.json()["url"].endswith(f"/api/signal-endpoint/{endpoint['name']}")
    on = await client.post(f"{BASE}/{endpoint['id']}/on", headers={"Content-Type": "text/plain"})
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True


async def test_delete_answers_200_empty_removes_tokens_and_keeps_signals(
    client: httpx.AsyncClient, db: Database
) -> None:
    endpoint = await make_endpoint(client)
    token = await make_endpoint_token(client, endpoint["id"])
    assert (
        await client.post(
            f"/api/signal-endpoint/{endpoint['name']}",
            json={"a": 1},
            headers={"Authorization": token["token"]},
        )
    ).status_code == 200
    response = await client.delete(f"{BASE}/{endpoint['id']}")
    assert response.status_code == 200
    assert response.content == b""
    assert_error(await client.delete(f"{BASE}/{endpoint['id']}"), 404, "NotFoundError")
    async with db.read() as conn:
        tokens_left = (
            await conn.execute(sa.select(sa.func.count()).select_from(t.signal_endpoint_token))
        ).scalar()
        signals_left = (await conn.execute(sa.select(sa.func.count()).select_from(t.signal))).scalar()
    assert tokens_left == 0
    assert signals_left == 1
    assert (await client.get(BASE)).json()["signalEndpoints"] == []


async def test_changes_record_audit_events_without_secrets(client: httpx.AsyncClient, db: Database) -> None:
    endpoint = await make_endpoint(client, description="d")
    token = await make_endpoint_token(client, endpoint["id"], "first")
    await client.put(f"{BASE}/{endpoint['id']}/tokens/{token['id']}", json={"name": "second"})
    await client.post(f"{BASE}/{endpoint['id']}/off")
    await client.post(f"{BASE}/{endpoint['id']}/off")  # no change, no event
    await client.put(f"{BASE}/{endpoint['id']}", json={"name": endpoint["name"], "description": "e"})
    await client.delete(f"{BASE}/{endpoint['id']}/tokens/{token['id']}")
    await client.delete(f"{BASE}/{endpoint['id']}")
    async with db.read() as conn:
        events = (await conn.execute(sa.select(t.event).order_by(t.event.c.id))).all()
    assert [event.type for event in events] == [
        "signal-endpoint-created",
        "signal-endpoint-token-created",
        "signal-endpoint-token-updated",
        "signal-endpoint-updated",
        "signal-endpoint-updated",
        "signal-endpoint-token-deleted",
        "signal-endpoint-deleted",
    ]
    assert all(event.created_by_user_id == -42 for event in events)
    assert events[0].data["name"] == endpoint["name"]
    assert events[2].pre_data["name"] == "first" and events[2].data["name"] == "second"
    assert events[3].pre_data["enabled"] is True and events[3].data["enabled"] is False
    assert events[6].pre_data["id"] == endpoint["id"] and events[6].data is None
    dumped = repr([tuple(event) for event in events])
    assert token["token"] not in dumped
    assert "token_hash" not in dumped and "tokenHash" not in dumped


ADMIN_ROUTES = [
    ("GET", BASE, None),
    ("POST", BASE, {"name": "x"}),
    ("PUT", f"{BASE}/1", {"name": "x"}),
    ("DELETE", f"{BASE}/1", None),
    ("POST", f"{BASE}/1/on", None),
    ("POST", f"{BASE}/1/off", None),
    ("GET", f"{BASE}/1/tokens", None),
    ("POST", f"{BASE}/1/tokens", {"name": "x"}),
    ("PUT", f"{BASE}/1/tokens/1", {"name": "x"}),
    ("DELETE", f"{BASE}/1/tokens/1", None),
    ("GET", f"{BASE}/1/signals", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_need_a_credential(
    anon: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await anon.request(method, path, json=body)
    assert_error(response, 401, "AuthenticationRequired")
    bad = await anon.request(method, path, json=body, headers={"Authorization": "*:*.nope"})
    assert_error(bad, 401, "UnauthorizedError")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_need_admin(
    anon: httpx.AsyncClient, db: Database, method: str, path: str, body: Any
) -> None:
    viewer = await create_viewer_pat(db)
    response = await anon.request(method, path, json=body, headers={"Authorization": f"Bearer {viewer}"})
    error = assert_error(response, 403, "PermissionError")
    assert error["permissions"] == ["ADMIN"]


async def test_non_json_admin_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(BASE, content=b"name=x", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "ContentTypeError")


async def test_openapi_documents_the_operations(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = {
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {
        "get-signal-endpoints",
        "create-signal-endpoint",
        "update-signal-endpoint",
        "delete-signal-endpoint",
        "enable-signal-endpoint",
        "disable-signal-endpoint",
        "get-signal-endpoint-tokens",
        "create-signal-endpoint-token",
        "update-signal-endpoint-token",
        "delete-signal-endpoint-token",
        "get-signal-endpoint-signals",
        "call-signal-endpoint",
        "get-signals",
    } <= operations
    call = spec["paths"]["/api/signal-endpoint/{name}"]["post"]
    assert set(call["responses"]) >= {"200", "400", "401", "404", "413", "429"}
    for path in (f"{BASE}/{{signalEndpointId}}/signals", "/api/admin/signals"):
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, schema


async def test_get_endpoint_treats_out_of_range_ids_as_missing(db: Database) -> None:
    from switchman.signal_endpoints import repository

    async with db.read() as conn:
        for endpoint_id in (0, -5, 2**31, 2**63):
            assert await repository.get_endpoint(conn, endpoint_id) is None
