"""Ids are never handed out twice, also on SQLite after the newest row is deleted (migration 0002)."""

from __future__ import annotations

import httpx
from tests.conftest import unique


async def test_a_new_signal_endpoint_never_inherits_a_deleted_ones_id(client: httpx.AsyncClient) -> None:
    first = (await client.post("/api/admin/signal-endpoints", json={"name": unique("ep")})).json()["id"]
    assert (await client.delete(f"/api/admin/signal-endpoints/{first}")).status_code == 200
    second = (await client.post("/api/admin/signal-endpoints", json={"name": unique("ep")})).json()["id"]
    assert second > first


async def test_a_new_service_account_never_inherits_a_deleted_ones_id(client: httpx.AsyncClient) -> None:
    body = {"name": "bot", "rootRole": 2}
    first = (await client.post("/api/admin/service-account", json={**body, "username": unique("sa")})).json()[
        "id"
    ]
    assert (await client.delete(f"/api/admin/service-account/{first}")).status_code == 200
    second = (
        await client.post("/api/admin/service-account", json={**body, "username": unique("sa")})
    ).json()["id"]
    assert second > first
