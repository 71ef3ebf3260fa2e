"""Console test helpers: a cookie-keeping client on the app, signed in through the sign-in form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import ADMIN_TOKEN
from tests.factories import make_service_account
from tests.worker.conftest import scenario, worker  # noqa: F401 (fixtures shared with the worker tests)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:2000]
    return found.group(1)


async def sign_in(browser: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await browser.get("/ui/sign-in")
    return await browser.post("/ui/sign-in", data={"csrf_token": csrf_of(form.text), "token": token})


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client without an Authorization header, like a browser."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


@pytest.fixture
async def admin_browser(browser: httpx.AsyncClient) -> httpx.AsyncClient:
    signed = await sign_in(browser, ADMIN_TOKEN)
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/"
    return browser


async def personal_token(client: httpx.AsyncClient, *, role: int) -> tuple[int, str, int]:
    """A service account of `role` and a personal access token: (account id, secret, token id)."""
    account = await make_service_account(client, role=role)
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = await client.post(
        f"/api/admin/service-account/{account['id']}/token",
        json={"description": "console", "expiresAt": expires},
    )
    assert created.status_code == 201, created.text
    return int(account["id"]), str(created.json()["secret"]), int(created.json()["id"])
