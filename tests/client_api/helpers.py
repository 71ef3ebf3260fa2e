"""Helpers for client API tests: client tokens made through the admin API, flags and toggles."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import unique

P = "/api/admin/projects"


async def client_token(
    client: httpx.AsyncClient,
    *,
    environment: str = "development",
    projects: list[str] | None = None,
    type: str = "client",
) -> str:
    body: dict[str, Any] = {"tokenName": unique("sdk"), "type": type, "environment": environment}
    if projects is not None:
        body["projects"] = projects
    response = await client.post("/api/admin/api-tokens", json=body)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


async def set_enabled(
    client: httpx.AsyncClient, flag: str, on: bool, environment: str = "development", project: str = "default"
) -> None:
    verb = "on" if on else "off"
    response = await client.post(f"{P}/{project}/features/{flag}/environments/{environment}/{verb}")
    assert response.status_code == 200, response.text


async def features(anon: httpx.AsyncClient, token: str, **params: Any) -> dict[str, Any]:
    response = await anon.get("/api/client/features", headers={"Authorization": token}, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["etag"] == body["meta"]["etag"]
    return body


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {feature["name"]: feature for feature in body["features"]}
