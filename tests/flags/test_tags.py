"""Tag types, tags and flag tags."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import assert_error, unique
from tests.service_accounts.helpers import Caller


async def _flag(client: httpx.AsyncClient) -> str:
    name = unique("tagged")
    assert (await client.post("/api/admin/projects/default/features", json={"name": name})).status_code == 201
    return name


async def _events(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await client.get("/api/admin/events")).json()["events"]
    return events


async def test_tag_types(client: httpx.AsyncClient, viewer: Caller, editor: Caller) -> None:
    listed = (await client.get("/api/admin/tag-types")).json()
    assert listed == {
        "version": 1,
        "tagTypes": [
            {
                "name": "simple",
                "description": "Used to simplify filtering of features",
                "icon": "#",
                "color": "#FFFFFF",
            }
        ],
    }
    payload = {"name": "team", "description": "owning team"}
    assert_error(await viewer.http.post("/api/admin/tag-types", json=payload), 403, "PermissionError")
    created = await editor.http.post("/api/admin/tag-types", json=payload)
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "team", "description": "owning team", "icon": None, "color": None}
    assert_error(await client.post("/api/admin/tag-types", json=payload), 409, "NameExistsError")
    assert_error(await client.post("/api/admin/tag-types", json={"name": "a b"}), 400, "BadDataError")
    assert_error(await client.post("/api/admin/tag-types", json={"name": "x"}), 400, "BadDataError")
    assert (await client.get("/api/admin/tag-types/team")).json()["description"] == "owning team"
    assert_error(await client.get("/api/admin/tag-types/nope"), 404)
    event = (await _events(client))[0]
    assert event["type"] == "tag-type-created" and event["createdBy"] == editor.username


async def test_tag_a_flag(client: httpx.AsyncClient) -> None:
    name = await _flag(client)
    url = f"/api/admin/features/{name}/tags"
    assert (await client.get(url)).json() == {"version": 1, "tags": []}
    first = await client.post(url, json={"type": "simple", "value": "payments"})
    assert first.status_code == 201 and first.json() == {"type": "simple", "value": "payments"}
    again = await client.post(url, json={"type": "simple", "value": "payments"})
    assert again.status_code == 201  # Unleash answers 201 again, and logs another feature-tagged
    assert (await client.get(url)).json()["tags"] == [
        {"type": "simple", "value": "payments", "color": "#FFFFFF"}
    ]
    types = [e["type"] for e in reversed(await _events(client))]
    assert types[-3:] == ["tag-created", "feature-tagged", "feature-tagged"]
    tagged = (await _events(client))[0]
    assert tagged["featureName"] == name and tagged["project"] == "default"
    assert tagged["data"] == {"type": "simple", "value": "payments"}
    assert (await client.get("/api/admin/tags")).json() == {
        "version": 1,
        "tags": [{"type": "simple", "value": "payments", "color": None}],
    }
    assert [t["value"] for t in (await client.get("/api/admin/tags/simple")).json()["tags"]] == ["payments"]

    removed = await client.delete(f"{url}/simple/payments")
    assert removed.status_code == 200
    untagged = (await _events(client))[0]
    assert untagged["type"] == "feature-untagged"
    assert untagged["preData"] == {"type": "simple", "value": "payments"} and untagged["data"] is None
    assert (await client.get(url)).json()["tags"] == []
    # removing again is a no-op without an event
    assert (await client.delete(f"{url}/simple/payments")).status_code == 200
    assert (await _events(client))[0]["id"] == untagged["id"]


async def test_tag_errors(client: httpx.AsyncClient, viewer: Caller, anon: httpx.AsyncClient) -> None:
    name = await _flag(client)
    url = f"/api/admin/features/{name}/tags"
    assert_error(await anon.post(url, json={"type": "simple", "value": "x1"}), 401)
    body = assert_error(
        await viewer.http.post(url, json={"type": "simple", "value": "x1"}), 403, "PermissionError"
    )
    assert body["permissions"] == ["UPDATE_FEATURE"]
    assert_error(await viewer.http.delete(f"{url}/simple/x1"), 403)
    assert_error(await client.post(url, json={"type": "nope", "value": "x1"}), 404, "NotFoundError")
    assert_error(await client.post(url, json={"type": "simple", "value": "x"}), 400, "BadDataError")
    assert_error(await client.post(url, json={"type": "simple", "value": "y" * 51}), 400, "BadDataError")
    assert_error(await client.post(url, json={"type": "simple"}), 400)
    assert_error(
        await client.post("/api/admin/features/nope/tags", json={"type": "simple", "value": "ab"}), 404
    )
    assert_error(await client.get("/api/admin/features/nope/tags"), 404)
    assert_error(await client.get("/api/admin/tags/nope"), 404)
    # `type` defaults to simple, as in Unleash's tagSchema
    assert (await client.post(url, json={"value": "defaulted"})).json() == {
        "type": "simple",
        "value": "defaulted",
    }
