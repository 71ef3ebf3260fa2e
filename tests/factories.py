"""The objects tests need, made through the public API (or read back from the real store), written once.

Feature helpers (`tests/<feature>/helpers.py`) add what only their feature's tests use; anything two
features' tests need lives here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from switchman.app import create_app
from switchman.auth.principal import Principal
from switchman.config import Settings
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.service_accounts.service import get_actor
from tests.action_sets.founding import assert_valid
from tests.conftest import ADMIN_TOKEN, unique

PROJECTS = "/api/admin/projects"
SIGNAL_ENDPOINTS = "/api/admin/signal-endpoints"


@asynccontextmanager
async def http_client(
    app: FastAPI, authorization: str | None = ADMIN_TOKEN
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of `app`, sending `authorization` (the bootstrap admin token by default)."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    ) as client:
        yield client


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app built from `settings`, its lifespan run (runtime, worker if asked), and an admin client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), http_client(app) as client:
        yield app, client


async def make_project(client: httpx.AsyncClient) -> str:
    project = unique("proj")
    response = await client.post(PROJECTS, json={"id": project, "name": project})
    assert response.status_code == 201, response.text
    return project


async def make_flag(client: httpx.AsyncClient, project: str = "default", **extra: Any) -> str:
    name = extra.pop("name", None) or unique("flag")
    response = await client.post(f"{PROJECTS}/{project}/features", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return name


async def make_service_account(
    client: httpx.AsyncClient, *, role: int, username: str | None = None
) -> dict[str, Any]:
    name = username or unique(f"sa-{role}")
    response = await client.post(
        "/api/admin/service-account", json={"username": name, "name": f"Account {name}", "rootRole": role}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def actor_with_role(client: httpx.AsyncClient, db: Database, role: int) -> Principal:
    """The Principal of a new service account with `role`, as the worker would act as it."""
    account = await make_service_account(client, role=role)
    async with db.read() as conn:
        actor = await get_actor(conn, account["id"])
    assert actor is not None
    return actor


async def make_endpoint(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(SIGNAL_ENDPOINTS, json={"name": unique("ep"), **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def make_endpoint_token(
    client: httpx.AsyncClient, endpoint_id: int, name: str = "ci"
) -> dict[str, Any]:
    response = await client.post(f"{SIGNAL_ENDPOINTS}/{endpoint_id}/tokens", json={"name": name})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def endpoint_with_token(client: httpx.AsyncClient, **fields: Any) -> tuple[dict[str, Any], str]:
    """A new signal endpoint and the secret of a new token of it."""
    endpoint = await make_endpoint(client, **fields)
    token = await make_endpoint_token(client, endpoint["id"])
    return endpoint, token["token"]


async def send_signal(
    client: httpx.AsyncClient, endpoint_name: str, token: str, payload: dict[str, Any]
) -> int:
    """POST a signal as a sender does; its id once stored."""
    response = await client.post(
        f"/api/signal-endpoint/{endpoint_name}", json=payload, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["signals"][0]["id"])


async def all_stored_text(db: Database) -> str:
    """Every value of every column of every table, as text (for secret scans)."""
    chunks: list[str] = []
    async with db.read() as conn:
        for table in t.metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                chunks.extend(repr(value) for value in row)
    return "\n".join(chunks)


async def list_events(
    client: httpx.AsyncClient, set_id: int, *, project: str = "default", **params: Any
) -> list[dict[str, Any]]:
    """`GET …/actions/{id}/events` (200, JSON), checked against the founding document's schema."""
    response = await client.get(f"{PROJECTS}/{project}/actions/{set_id}/events", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_valid(body)
    listed: list[dict[str, Any]] = body["actionSetEvents"]
    return listed


def spawn_worker(db_url: str, cwd: Path, **settings: str) -> subprocess.Popen[bytes]:
    """A `switchman worker` process on `db_url` (migrations already run), with `SWITCHMAN_<NAME>` settings
    given as `name=value` and none inherited from this environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
    env.update(
        SWITCHMAN_DATABASE_URL=db_url, SWITCHMAN_MIGRATE_ON_START="false", SWITCHMAN_LOG_LEVEL="WARNING"
    )
    env.update({f"SWITCHMAN_{name.upper()}": value for name, value in settings.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "switchman", "worker"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
