"""Projects and environments through the admin API."""

from __future__ import annotations

import httpx

from tests.conftest import assert_error, unique
from tests.service_accounts.helpers import Caller


async def test_seeded_project_and_environments(client: httpx.AsyncClient) -> None:
    projects = (await client.get("/api/admin/projects")).json()
    assert projects["version"] == 1
    default = next(p for p in projects["projects"] if p["id"] == "default")
    assert default["name"] == "Default" and default["mode"] == "open" and default["featureCount"] == 0
    envs = (await client.get("/api/admin/environments")).json()
    assert envs["version"] == 1
    assert [
        (e["name"], e["type"], e["sortOrder"], e["enabled"], e["protected"]) for e in envs["environments"]
    ] == [
        ("development", "development", 2, True, False),
        ("production", "production", 3, True, False),
    ]
    assert all(e["requiredApprovals"] is None for e in envs["environments"])
    in_default = (await client.get("/api/admin/environments/project/default")).json()["environments"]
    assert [e["name"] for e in in_default] == ["development", "production"]
    assert (await client.get("/api/admin/environments/production")).json()["sortOrder"] == 3
    assert_error(await client.get("/api/admin/environments/nope"), 404, "NotFoundError")


async def test_create_project_gets_enabled_environments(client: httpx.AsyncClient) -> None:
    pid = unique("proj")
    created = await client.post(
        "/api/admin/projects", json={"id": pid, "name": "Payments", "description": "d"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["environments"] == ["development", "production"]
    assert created.headers["location"] == f"projects/{pid}"
    overview = (await client.get(f"/api/admin/projects/{pid}")).json()
    assert overview["id"] == pid and overview["name"] == "Payments" and overview["description"] == "d"
    assert overview["environments"] == [{"environment": "development"}, {"environment": "production"}]
    assert overview["features"] == [] and overview["featureCount"] == 0
    assert pid in [p["id"] for p in (await client.get("/api/admin/projects")).json()["projects"]]
    assert_error(
        await client.post("/api/admin/projects", json={"id": pid, "name": "again"}), 409, "NameExistsError"
    )


async def test_project_validation_and_404(client: httpx.AsyncClient) -> None:
    body = assert_error(
        await client.post("/api/admin/projects", json={"id": "bad id", "name": "x"}), 400, "BadDataError"
    )
    assert body["details"][0]["path"] == "/id"
    assert_error(await client.post("/api/admin/projects", json={"id": "..", "name": "x"}), 400)
    assert_error(await client.post("/api/admin/projects", json={"id": "a" * 101, "name": "x"}), 400)
    assert_error(await client.post("/api/admin/projects", json={"name": "no id"}), 400)
    assert_error(
        await client.post(
            "/api/admin/projects", json={"id": unique(), "name": "x", "environments": ["nope"]}
        ),
        400,
    )
    assert_error(await client.get("/api/admin/projects/nope"), 404, "NotFoundError")
    assert_error(await client.get("/api/admin/environments/project/nope"), 404, "NotFoundError")


async def test_create_environment_is_admin_only(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, editor: Caller, viewer: Caller
) -> None:
    payload = {"name": "staging", "type": "test"}
    assert_error(await anon.post("/api/admin/environments", json=payload), 401, "AuthenticationRequired")
    assert_error(await editor.http.post("/api/admin/environments", json=payload), 403, "PermissionError")
    assert_error(await viewer.http.post("/api/admin/environments", json=payload), 403, "PermissionError")
    created = await client.post("/api/admin/environments", json=payload)
    assert created.status_code == 201, created.text
    assert created.json()["sortOrder"] == 4 and created.json()["enabled"] is True
    assert_error(await client.post("/api/admin/environments", json=payload), 409, "NameExistsError")
    assert_error(await client.post("/api/admin/environments", json={"name": "a/b", "type": "test"}), 400)
    # a sortOrder beyond the 32-bit column (found by the contract fuzzing on PostgreSQL) is a 400, not a 500
    too_big = {"name": "big", "type": "test", "sortOrder": 2**31}
    assert_error(await client.post("/api/admin/environments", json=too_big), 400, "BadDataError")
    assert "staging" in [
        e["name"] for e in (await client.get("/api/admin/environments")).json()["environments"]
    ]
    # an existing project does not get it by itself; a new project does
    assert "staging" not in [
        e["name"]
        for e in (await client.get("/api/admin/environments/project/default")).json()["environments"]
    ]
    pid = unique("p")
    created_project = await client.post("/api/admin/projects", json={"id": pid, "name": "p"})
    assert created_project.json()["environments"] == ["development", "production", "staging"]


async def test_add_environment_to_project_reaches_existing_flags(
    client: httpx.AsyncClient, viewer: Caller
) -> None:
    await client.post("/api/admin/environments", json={"name": "qa", "type": "test"})
    await client.post("/api/admin/projects/default/features", json={"name": "pre-existing"})
    url = "/api/admin/projects/default/environments"
    assert_error(await viewer.http.post(url, json={"environment": "qa"}), 403, "PermissionError")
    assert_error(await client.post(url, json={"environment": "nope"}), 404)
    assert (await client.post(url, json={"environment": "qa"})).status_code == 200
    assert_error(await client.post(url, json={"environment": "qa"}), 409)
    feature = (await client.get("/api/admin/projects/default/features/pre-existing")).json()
    assert [e["name"] for e in feature["environments"]] == ["development", "production", "qa"]
    on = await client.post("/api/admin/projects/default/features/pre-existing/environments/qa/on")
    assert on.status_code == 200


async def test_editor_creates_projects_viewer_cannot(editor: Caller, viewer: Caller) -> None:
    pid = unique("ed")
    assert (await editor.http.post("/api/admin/projects", json={"id": pid, "name": "E"})).status_code == 201
    body = assert_error(
        await viewer.http.post("/api/admin/projects", json={"id": unique(), "name": "V"}),
        403,
        "PermissionError",
    )
    assert body["permissions"] == ["CREATE_PROJECT"]
    # reading needs only authentication
    assert (await viewer.http.get(f"/api/admin/projects/{pid}")).status_code == 200
    # a Viewer's invalid body is refused for the permission first, as Unleash's middleware order does
    assert_error(await viewer.http.post("/api/admin/projects", json={"nonsense": True}), 403)
