"""Signal endpoint tokens: secret shown once, hashed storage, rename, delete, limits, unknown endpoints."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from switchman.auth.tokens import hash_secret
from switchman.db import tables as t
from switchman.db.engine import Database
from tests.conftest import assert_error
from tests.factories import make_endpoint, make_endpoint_token
from tests.signal_endpoints.helpers import BASE, app_client


async def test_create_returns_the_secret_once_with_location(client: httpx.AsyncClient, db: Database) -> None:
    endpoint = await make_endpoint(client)
    response = await client.post(f"{BASE}/{endpoint['id']}/tokens", json={"name": "grafana", "x": 1})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"signal-endpoints/{endpoint['id']}/tokens/{body['id']}"
    assert body["name"] == "grafana"
    assert body["signalEndpointId"] == endpoint["id"]
    assert body["createdByUserId"] == -42
    secret = body["token"]
    # `signal_` + 43 base64url characters: 256 random bits.
    assert secret.startswith("signal_") and len(secret) == len("signal_") + 43
    listed = (await client.get(f"{BASE}/{endpoint['id']}/tokens")).json()["signalEndpointTokens"]
    assert listed == [{key: value for key, value in body.items() if key != "token"}]
    async with db.read() as conn:
        stored = (await conn.execute(sa.select(t.signal_endpoint_token.c.token_hash))).scalar_one()
    assert stored == hash_secret(secret)
    assert secret not in stored


async def test_every_token_is_different(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    secrets = {(await make_endpoint_token(client, endpoint["id"], "same name"))["token"] for _ in range(5)}
    assert len(secrets) == 5
    listed = (await client.get(f"{BASE}/{endpoint['id']}/tokens")).json()["signalEndpointTokens"]
    assert [token["name"] for token in listed] == ["same name"] * 5  # names need not be unique
    assert [token["id"] for token in listed] == sorted(token["id"] for token in listed)


async def test_tokens_of_an_unknown_endpoint_list_empty_but_cannot_be_created(
    client: httpx.AsyncClient,
) -> None:
    for endpoint_id in ("424242", "abc"):
        listed = await client.get(f"{BASE}/{endpoint_id}/tokens")
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"signalEndpointTokens": []}
        assert_error(
            await client.post(f"{BASE}/{endpoint_id}/tokens", json={"name": "x"}), 404, "NotFoundError"
        )


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": 7}, {"name": "n" * 256}])
async def test_create_and_rename_validate_the_name(client: httpx.AsyncClient, body: object) -> None:
    endpoint = await make_endpoint(client)
    token = await make_endpoint_token(client, endpoint["id"])
    assert_error(await client.post(f"{BASE}/{endpoint['id']}/tokens", json=body), 400, "BadDataError")
    assert_error(
        await client.put(f"{BASE}/{endpoint['id']}/tokens/{token['id']}", json=body), 400, "BadDataError"
    )


async def test_rename_keeps_the_secret_and_does_not_return_it(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    token = await make_endpoint_token(client, endpoint["id"], "old")
    response = await client.put(f"{BASE}/{endpoint['id']}/tokens/{token['id']}", json={"name": "new"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": token["id"],
        "name": "new",
        "signalEndpointId": endpoint["id"],
        "createdAt": token["createdAt"],
        "createdByUserId": -42,
    }
    call = await client.post(
        f"/api/signal-endpoint/{endpoint['name']}", json={}, headers={"Authorization": token["token"]}
    )
    assert call.status_code == 200, call.text


async def test_token_routes_are_404_for_a_token_of_another_endpoint(client: httpx.AsyncClient) -> None:
    mine = await make_endpoint(client)
    other = await make_endpoint(client)
    token = await make_endpoint_token(client, other["id"])
    path = f"{BASE}/{mine['id']}/tokens/{token['id']}"
    assert_error(await client.put(path, json={"name": "x"}), 404, "NotFoundError")
    assert_error(await client.delete(path), 404, "NotFoundError")
    assert_error(
        await client.put(f"{BASE}/{mine['id']}/tokens/999", json={"name": "x"}), 404, "NotFoundError"
    )
    assert_error(await client.delete(f"{BASE}/{mine['id']}/tokens/nope"), 404, "NotFoundError")
    # the other endpoint's token is untouched
    listed = (await client.get(f"{BASE}/{other['id']}/tokens")).json()["signalEndpointTokens"]
    assert [item["name"] for item in listed] == ["ci"]


async def test_delete_answers_200_empty_and_revokes_at_once(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    token = await make_endpoint_token(client, endpoint["id"])
    path = f"/api/signal-endpoint/{endpoint['name']}"
    assert (await client.post(path, json={}, headers={"Authorization": token["token"]})).status_code == 200
    response = await client.delete(f"{BASE}/{endpoint['id']}/tokens/{token['id']}")
    assert response.status_code == 200
    assert response.content == b""
    assert_error(
        await client.post(path, json={}, headers={"Authorization": token["token"]}), 401, "UnauthorizedError"
    )
    assert_error(await client.delete(f"{BASE}/{endpoint['id']}/tokens/{token['id']}"), 404, "NotFoundError")
    assert (await client.get(f"{BASE}/{endpoint['id']}/tokens")).json() == {"signalEndpointTokens": []}


async def test_token_limit_per_endpoint_is_400_exceeds_limit(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_tokens_per_endpoint_limit=2) as (_app, client):
        endpoint = await make_endpoint(client)
        other = await make_endpoint(client)
        await make_endpoint_token(client, endpoint["id"])
        await make_endpoint_token(client, endpoint["id"])
        error = assert_error(
            await client.post(f"{BASE}/{endpoint['id']}/tokens", json={"name": "third"}),
            400,
            "ExceedsLimitError",
        )
        assert "2" in error["message"]
        await make_endpoint_token(client, other["id"])  # the limit is per endpoint
