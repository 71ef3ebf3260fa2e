"""Service accounts with real tokens, for tests that need a Viewer or an Editor caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_service_account

ADMIN_ROLE, EDITOR_ROLE, VIEWER_ROLE = 1, 2, 3
FUTURE = "2099-01-01T00:00:00Z"


@dataclass
class Caller:
    """A service account, one of its tokens, and an httpx client that sends it."""

    account: dict[str, Any]
    secret: str
    http: httpx.AsyncClient

    @property
    def id(self) -> int:
        return int(self.account["id"])

    @property
    def username(self) -> str:
        return str(self.account["username"])


async def create_pat(client: httpx.AsyncClient, account_id: int, description: str = "test") -> dict[str, Any]:
    response = await client.post(
        f"/api/admin/service-account/{account_id}/token",
        json={"description": description, "expiresAt": FUTURE},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _caller(app: FastAPI, client: httpx.AsyncClient, role: int) -> AsyncIterator[Caller]:
    account = await make_service_account(client, role=role)
    secret = (await create_pat(client, account["id"]))["secret"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": secret},
    ) as http:
        yield Caller(account=account, secret=secret, http=http)


@pytest.fixture
async def viewer(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[Caller]:
    """A Viewer service account calling with its own token."""
    async for caller in _caller(app, client, VIEWER_ROLE):
        yield caller


@pytest.fixture
async def editor(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[Caller]:
    """An Editor service account calling with its own token."""
    async for caller in _caller(app, client, EDITOR_ROLE):
        yield caller
