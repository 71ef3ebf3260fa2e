"""Configuration as code runs against real apps: the test database's, and a second one on an empty
database of its own (a SQLite file, or a throw-away PostgreSQL database) for round trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchman.config import Settings, to_async_url
from switchman.db.engine import Database
from switchman.db.migrate import migrate
from switchman.secret_box import new_key
from tests.conftest import empty_database, make_settings, unique
from tests.factories import PROJECTS, SIGNAL_ENDPOINTS, make_flag, make_service_account, running_app

KEY = new_key()
SLACK_URL = "https://hooks.slack.test/services/T000/B000/very-secret"
WEBHOOK_URL = "https://receiver.example.test/switchman?sig=another-secret"


@pytest.fixture
def settings(db_url: str, db: Database) -> Settings:
    # Notification channels seal their URLs: a key is needed.
    return make_settings(db_url, secret_key=KEY)


@pytest.fixture
async def other(db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of a second app on a second, empty (migrated) database of the same kind."""
    kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    with empty_database(kind, tmp_path, prefix="switchman_cac") as url:
        await migrate(to_async_url(url))
        async with running_app(make_settings(url, secret_key=KEY)) as (_app, client):
            yield client


async def prerequisites(client: httpx.AsyncClient, *, flags: list[str], accounts: list[str]) -> None:
    """What a document names but never defines: flags (in `default`) and service accounts."""
    for flag in flags:
        await make_flag(client, name=flag)
    for username in accounts:
        await make_service_account(client, role=2, username=username)


async def build_configuration(client: httpx.AsyncClient) -> dict[str, Any]:
    """A configuration using every kind of resource the document describes, made through the admin API.
    Returns the names used."""
    flag, account = unique("flag"), unique("sa")
    await prerequisites(client, flags=[flag], accounts=[account])
    alerts = await _ok(client.post(SIGNAL_ENDPOINTS, json={"name": unique("alerts"), "description": "Prom"}))
    await _ok(
        client.put(
            f"{SIGNAL_ENDPOINTS}/{alerts['id']}/format", json={"format": "alertmanager", "splitAlerts": True}
        )
    )
    quiet = await _ok(client.post(SIGNAL_ENDPOINTS, json={"name": unique("quiet"), "enabled": False}))
    await _ok(client.put(f"{SIGNAL_ENDPOINTS}/{quiet['id']}/query-token", json={"accepted": True}))
    base = f"{PROJECTS}/default"
    kill = await _ok(
        client.post(
            f"{base}/actions",
            json={
                "name": "kill switch",
                "description": "turn the flag off when checkout burns",
                "actorId": (await _account_id(client, account)),
                "match": {
                    "source": "signal-endpoint",
                    "sourceId": alerts["id"],
                    "payload": {"@switchman.status": {"operator": "IN", "values": ["firing"]}},
                },
                "actions": [
                    {
                        "action": "TOGGLE_FEATURE_OFF",
                        "sortOrder": 10,
                        "executionParams": {
                            "project": "default",
                            "environment": "production",
                            "featureName": flag,
                        },
                    },
                    {
                        "action": "TOGGLE_FEATURE_OFF",
                        "sortOrder": 20,
                        "executionParams": {
                            "project": "default",
                            "environment": "development",
                            "featureName": flag,
                        },
                    },
                ],
            },
        )
    )
    await _ok(
        client.put(
            f"{base}/actions/{kill['id']}/policy",
            json={"cooldownSeconds": 60, "perAlert": True, "restoreOnResolve": True},
        )
    )
    await _ok(
        client.post(
            f"{base}/actions",
            json={
                "name": "recover",
                "enabled": False,
                "actorId": (await _account_id(client, account)),
                "match": {"source": "signal-endpoint", "sourceId": quiet["id"], "payload": {}},
                "actions": [
                    {
                        "action": "TOGGLE_FEATURE_ON",
                        "sortOrder": 1,
                        "executionParams": {
                            "project": "default",
                            "environment": "production",
                            "featureName": flag,
                        },
                    }
                ],
            },
        )
    )
    await _ok(client.put(f"{base}/action-budget", json={"maxChangesPerHour": 12}))
    await _ok(
        client.post(
            f"{base}/notification-channels",
            json={
                "name": "ops slack",
                "kind": "slack",
                "url": SLACK_URL,
                "actionSetIds": [kill["id"]],
                "events": ["failure", "success"],
            },
        )
    )
    await _ok(
        client.post(
            f"{base}/notification-channels", json={"name": "audit", "kind": "webhook", "url": WEBHOOK_URL}
        )
    )
    return {"flag": flag, "account": account, "alerts": alerts["name"], "quiet": quiet["name"]}


async def _account_id(client: httpx.AsyncClient, username: str) -> int:
    accounts = (await client.get("/api/admin/service-account")).json()["serviceAccounts"]
    return int(next(a["id"] for a in accounts if a["username"] == username))


async def _ok(call: Any) -> dict[str, Any]:
    response: httpx.Response = await call
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body
