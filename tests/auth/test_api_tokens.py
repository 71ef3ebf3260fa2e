"""Admin API tokens: auth header forms, 401 vs 403, create/list/delete, hashed storage."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from tests.conftest import ADMIN_TOKEN, assert_error

from switchman.db import tables as t
from switchman.db.engine import Database


async def test_missing_token_is_401_authentication_required(anon: httpx.AsyncClient) -> None:
    body = assert_error(await anon.get("/api/admin/api-tokens"), 401, "AuthenticationRequired")
    assert body["path"] == "/auth/simple/login"


async def test_unknown_token_is_401_unauthorized(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/api/admin/api-tokens", headers={"Authorization": "*:*.not-a-real-token"})
    assert_error(response, 401, "UnauthorizedError")


async def test_bearer_prefix_any_case_is_accepted(anon: httpx.AsyncClient) -> None:
    for header in (f"Bearer {ADMIN_TOKEN}", f"bearer   {ADMIN_TOKEN}", f"BEARER {ADMIN_TOKEN}", ADMIN_TOKEN):
        response = await anon.get("/api/admin/api-tokens", headers={"Authorization": header})
        assert response.status_code == 200, header


async def test_create_returns_secret_once_and_list_masks_it(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/admin/api-tokens", json={"tokenName": "ci-admin", "type": "admin"})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("*:*.") and len(secret) > 40
    listed = (await client.get("/api/admin/api-tokens")).json()["tokens"]
    assert all(token["secret"] != secret for token in listed)
    assert any(token["tokenName"] == "ci-admin" and token["secret"] == "*:*.****" for token in listed)
    # the new secret works
    assert (await client.get("/api/admin/api-tokens", headers={"Authorization": secret})).status_code == 200


async def test_client_token_on_admin_api_is_403(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/admin/api-tokens", json={"tokenName": "sdk", "type": "client", "environment": "production"}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("*:production.")
    response = await client.get("/api/admin/api-tokens", headers={"Authorization": secret})
    body = assert_error(response, 403)
    assert "different token type" in body["message"]


async def test_create_rejects_unknown_type_and_environment(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/admin/api-tokens", json={"tokenName": "x", "type": "root"}), 400)
    assert_error(
        await client.post(
            "/api/admin/api-tokens", json={"tokenName": "x", "type": "client", "environment": "nope"}
        ),
        400,
    )
    assert_error(await client.post("/api/admin/api-tokens", json={"type": "admin"}), 400, "BadDataError")


async def test_delete_by_secret_revokes_immediately(client: httpx.AsyncClient) -> None:
    secret = (await client.post("/api/admin/api-tokens", json={"tokenName": "tmp", "type": "admin"})).json()[
        "secret"
    ]
    assert (await client.delete(f"/api/admin/api-tokens/{secret}")).status_code == 200
    assert_error(await client.get("/api/admin/api-tokens", headers={"Authorization": secret}), 401)
    assert_error(await client.delete(f"/api/admin/api-tokens/{secret}"), 404, "NotFoundError")


async def test_no_plaintext_secret_in_database(client: httpx.AsyncClient, db: Database) -> None:
    secret = (await client.post("/api/admin/api-tokens", json={"tokenName": "h", "type": "admin"})).json()[
        "secret"
    ]
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(t.api_token))).all()
    dumped = repr([tuple(row) for row in rows])
    assert secret not in dumped
    assert secret.partition(".")[2] not in dumped
    assert ADMIN_TOKEN.partition(".")[2] not in dumped


async def test_non_json_admin_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/api-tokens", content=b"tokenName=x", headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415, "ContentTypeError")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/api-tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "BadDataError")


async def test_oversized_admin_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/api-tokens",
        content=b'{"tokenName":"' + b"a" * 200_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413)


async def test_unknown_route_404_and_wrong_method_405(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/admin/nothing-here"), 404, "NotFoundError")
    assert_error(await client.put("/api/admin/api-tokens", json={}), 405)


async def test_health_is_good(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"health": "GOOD"}


async def _admin_token(client: httpx.AsyncClient) -> str:
    created = await client.post("/api/admin/api-tokens", json={"tokenName": "cached", "type": "admin"})
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


async def test_a_token_revoked_by_another_replica_is_refused_once_the_cache_ttl_passed(
    db_url: str, db: Database
) -> None:
    """The verified-credential cache (ADR 0011): another process's revocation counts after at most its TTL;
    with the TTL at 0 (no cache) that is at once. A revocation through this process is immediate."""
    from fastapi import FastAPI
    from tests.conftest import make_settings

    from switchman.app import create_app

    async def replica(ttl: float) -> FastAPI:
        return create_app(make_settings(db_url, auth_cache_seconds=ttl))

    for ttl in (0.0, 3600.0):
        app = await replica(ttl)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            http.headers["Authorization"] = ADMIN_TOKEN
            secret = await _admin_token(http)
            assert (
                await http.get("/api/admin/api-tokens", headers={"Authorization": secret})
            ).status_code == 200
            async with db.transaction() as conn:  # "another replica" deletes the token
                await conn.execute(sa.delete(t.api_token).where(t.api_token.c.token_name == "cached"))
            again = await http.get("/api/admin/api-tokens", headers={"Authorization": secret})
            if ttl == 0:
                assert_error(again, 401, "UnauthorizedError")
            else:  # still trusted within the TTL; forgetting (what the bound guarantees) refuses it
                assert again.status_code == 200
                app.state.runtime.principal_cache.forget()
                assert_error(await http.get("/api/admin/api-tokens", headers={"Authorization": secret}), 401)


async def test_revoking_through_this_process_is_immediate_despite_the_cache(
    client: httpx.AsyncClient,
) -> None:
    secret = await _admin_token(client)
    for _ in range(2):  # the second call is answered from the cache
        assert (
            await client.get("/api/admin/api-tokens", headers={"Authorization": secret})
        ).status_code == 200
    assert (await client.delete(f"/api/admin/api-tokens/{secret}")).status_code == 200
    assert_error(await client.get("/api/admin/api-tokens", headers={"Authorization": secret}), 401)
