"""Service accounts: CRUD, tokens (PAT rules), permissions overview, deletion refusal, actor lookup."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import PrincipalKind
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.service_accounts.service import get_actor, service_account_exists
from switchman.timeutil import utcnow
from tests.conftest import assert_error, unique
from tests.factories import make_service_account
from tests.service_accounts.helpers import ADMIN_ROLE, EDITOR_ROLE, FUTURE, VIEWER_ROLE, Caller, create_pat

BASE = "/api/admin/service-account"


async def test_create_list_update_delete(client: httpx.AsyncClient) -> None:
    username = unique("bot")
    created = await client.post(BASE, json={"username": username, "name": "Bot", "rootRole": EDITOR_ROLE})
    assert created.status_code == 201, created.text
    account = created.json()
    assert created.headers["location"] == f"service-account/{account['id']}"
    assert account["username"] == username and account["name"] == "Bot" and account["rootRole"] == EDITOR_ROLE
    assert account["tokens"] == [] and account["createdAt"].endswith("Z")

    listed = (await client.get(BASE)).json()
    assert [a["username"] for a in listed["serviceAccounts"]] == [username]
    assert listed["rootRoles"] == [
        {
            "id": EDITOR_ROLE,
            "type": "root",
            "name": "Editor",
            "description": listed["rootRoles"][0]["description"],
            "project": None,
        }
    ]

    # Unleash's UI sends username on update too: accepted, ignored.
    updated = await client.put(
        f"{BASE}/{account['id']}", json={"username": "renamed", "name": "Bot 2", "rootRole": VIEWER_ROLE}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Bot 2"
    assert updated.json()["rootRole"] == VIEWER_ROLE
    assert updated.json()["username"] == username

    deleted = await client.delete(f"{BASE}/{account['id']}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert (await client.get(BASE)).json()["serviceAccounts"] == []
    assert_error(await client.delete(f"{BASE}/{account['id']}"), 404, "NotFoundError")
    assert_error(await client.put(f"{BASE}/{account['id']}", json={"name": "x"}), 404, "NotFoundError")


async def test_create_validation(client: httpx.AsyncClient) -> None:
    username = unique("dup")
    await make_service_account(client, role=VIEWER_ROLE, username=username)
    assert_error(
        await client.post(BASE, json={"username": username, "name": "again", "rootRole": 3}),
        409,
        "NameExistsError",
    )
    body = assert_error(await client.post(BASE, json={"username": unique(), "name": "n", "rootRole": 7}), 400)
    assert body["details"][0]["path"] == "/rootRole"
    assert_error(await client.post(BASE, json={"username": unique(), "name": "n"}), 400, "BadDataError")
    assert_error(
        await client.post(BASE, json={"username": "  ", "name": "n", "rootRole": 3}), 400, "BadDataError"
    )
    assert_error(await client.put(f"{BASE}/999999", json={"rootRole": 9}), 404)
    account = await make_service_account(client, role=VIEWER_ROLE)
    assert_error(await client.put(f"{BASE}/{account['id']}", json={"rootRole": 9}), 400, "BadDataError")


async def test_admin_only_401_and_403(anon: httpx.AsyncClient, editor: Caller) -> None:
    assert_error(await anon.get(BASE), 401, "AuthenticationRequired")
    body = assert_error(await editor.http.get(BASE), 403, "PermissionError")
    assert body["permissions"] == ["ADMIN"]
    assert_error(
        await editor.http.post(BASE, json={"username": unique(), "name": "n", "rootRole": 1}),
        403,
        "PermissionError",
    )
    assert_error(await editor.http.delete(f"{BASE}/{editor.id}"), 403)


async def test_tokens_lifecycle_and_rules(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database
) -> None:
    account = await make_service_account(client, role=ADMIN_ROLE)
    url = f"{BASE}/{account['id']}/token"
    created = await client.post(url, json={"description": "ci", "expiresAt": FUTURE})
    assert created.status_code == 201, created.text
    pat = created.json()
    assert created.headers["location"] == f"service-account/{account['id']}/token/{pat['id']}"
    assert pat["secret"].startswith("user:") and len(pat["secret"]) == 5 + 56
    assert pat["userId"] == account["id"] and pat["description"] == "ci"

    # the token authenticates as the account
    assert (await anon.get(BASE, headers={"Authorization": f"Bearer {pat['secret']}"})).status_code == 200

    listed = (await client.get(url)).json()["pats"]
    assert [p["id"] for p in listed] == [pat["id"]] and "secret" not in listed[0]
    in_account = (await client.get(BASE)).json()["serviceAccounts"][0]["tokens"]
    assert [p["id"] for p in in_account] == [pat["id"]] and "secret" not in in_account[0]

    assert_error(
        await client.post(url, json={"description": "ci", "expiresAt": FUTURE}), 409, "NameExistsError"
    )
    assert_error(await client.post(url, json={"description": "  ", "expiresAt": FUTURE}), 400, "BadDataError")
    assert_error(
        await client.post(url, json={"description": "old", "expiresAt": "2001-01-01T00:00:00Z"}),
        400,
        "BadDataError",
    )
    assert_error(await client.post(url, json={"description": "x"}), 400)
    assert_error(
        await client.post(f"{BASE}/999999/token", json={"description": "x", "expiresAt": FUTURE}), 404
    )
    assert_error(await client.get(f"{BASE}/999999/token"), 404)

    async with db.read() as conn:
        stored = repr([tuple(r) for r in (await conn.execute(sa.select(t.personal_access_token))).all()])
    assert pat["secret"] not in stored and pat["secret"][5:] not in stored

    deleted = await client.delete(f"{url}/{pat['id']}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert_error(await anon.get(BASE, headers={"Authorization": pat["secret"]}), 401, "UnauthorizedError")
    assert_error(await client.delete(f"{url}/{pat['id']}"), 404, "NotFoundError")


async def test_at_most_ten_tokens(client: httpx.AsyncClient) -> None:
    account = await make_service_account(client, role=VIEWER_ROLE)
    for i in range(10):
        await create_pat(client, account["id"], description=f"t{i}")
    response = await client.post(
        f"{BASE}/{account['id']}/token", json={"description": "eleventh", "expiresAt": FUTURE}
    )
    assert_error(response, 403, "OperationDeniedError")


async def test_expired_token_is_401(client: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database) -> None:
    account = await make_service_account(client, role=ADMIN_ROLE)
    pat = await create_pat(client, account["id"])
    async with db.transaction() as conn:
        await conn.execute(t.personal_access_token.update().values(expires_at=utcnow()))
    assert_error(await anon.get(BASE, headers={"Authorization": pat["secret"]}), 401, "UnauthorizedError")


async def test_deleting_account_deletes_its_tokens(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    account = await make_service_account(client, role=ADMIN_ROLE)
    pat = await create_pat(client, account["id"])
    assert (await client.delete(f"{BASE}/{account['id']}")).status_code == 200
    assert_error(await anon.get(BASE, headers={"Authorization": pat["secret"]}), 401)


async def test_delete_refused_while_actor_of_action_sets(client: httpx.AsyncClient, db: Database) -> None:
    account = await make_service_account(client, role=EDITOR_ROLE)
    async with db.transaction() as conn:
        await conn.execute(
            t.action_set.insert().values(
                project_id="default",
                name="page-on-error",
                actor_id=account["id"],
                match_source="signal-endpoint",
                match_source_id=1,
                match_payload={},
                created_at=utcnow(),
                created_by_user_id=-42,
            )
        )
    body = assert_error(await client.delete(f"{BASE}/{account['id']}"), 409, "ConflictError")
    assert "page-on-error" in body["message"] and account["username"] in body["message"]
    assert [a["id"] for a in (await client.get(BASE)).json()["serviceAccounts"]] == [account["id"]]
    async with db.transaction() as conn:
        await conn.execute(t.action_set.delete())
    assert (await client.delete(f"{BASE}/{account['id']}")).status_code == 200


async def test_permissions_overview(client: httpx.AsyncClient) -> None:
    viewer = await make_service_account(client, role=VIEWER_ROLE)
    editor = await make_service_account(client, role=EDITOR_ROLE)
    admin = await make_service_account(client, role=ADMIN_ROLE)
    query = {"project": "default", "environment": "production"}

    def has_toggle(body: dict[str, object]) -> bool:
        wanted = {"permission": UPDATE_FEATURE_ENVIRONMENT, "project": "default", "environment": "production"}
        return any(entry == wanted for entry in body["permissions"])  # type: ignore[attr-defined]

    seen = (await client.get(f"{BASE}/{viewer['id']}/permissions", params=query)).json()
    assert seen["permissions"] == [] and not has_toggle(seen)
    assert seen["rootRole"]["name"] == "Viewer" and seen["serviceAccount"]["id"] == viewer["id"]
    edited = (await client.get(f"{BASE}/{editor['id']}/permissions", params=query)).json()
    assert has_toggle(edited)
    assert all(entry["permission"] != "ADMIN" for entry in edited["permissions"])
    administered = (await client.get(f"{BASE}/{admin['id']}/permissions", params=query)).json()
    assert has_toggle(administered)
    assert {"permission": "ADMIN", "project": None, "environment": None} in administered["permissions"]
    assert_error(await client.get(f"{BASE}/999999/permissions"), 404)


async def test_events_record_the_admin_actor(client: httpx.AsyncClient) -> None:
    account = await make_service_account(client, role=VIEWER_ROLE)
    await client.put(f"{BASE}/{account['id']}", json={"rootRole": EDITOR_ROLE})
    await client.delete(f"{BASE}/{account['id']}")
    found = (await client.get("/api/admin/events")).json()["events"]
    types = [e["type"] for e in found if e["type"].startswith("service-account")]
    assert types == ["service-account-deleted", "service-account-updated", "service-account-created"]
    updated = next(e for e in found if e["type"] == "service-account-updated")
    assert updated["preData"]["rootRole"] == VIEWER_ROLE and updated["data"]["rootRole"] == EDITOR_ROLE
    assert updated["createdBy"] == "admin" and updated["createdByUserId"] == -42


async def test_get_actor_and_exists(client: httpx.AsyncClient, db: Database) -> None:
    account = await make_service_account(client, role=EDITOR_ROLE)
    async with db.transaction() as conn:
        actor = await get_actor(conn, account["id"])
        assert await service_account_exists(conn, account["id"])
        assert not await service_account_exists(conn, 999999)
        assert await get_actor(conn, 999999) is None
    assert actor is not None
    assert actor.kind is PrincipalKind.SERVICE_ACCOUNT
    assert actor.user_id == account["id"] and actor.username == account["username"]
    assert actor.can(UPDATE_FEATURE_ENVIRONMENT) and not actor.is_admin
