"""End to end through switchman with a real Unleash OSS as the flag backend (marker `integration`).

A real switchman app (lifespan run, in-process worker) on SQLite and on PostgreSQL, configured with
`SWITCHMAN_FLAG_BACKEND=unleash` against the session's Unleash OSS server (tests/unleash_oss.py). Signals are
POSTed to a signal endpoint through the app's HTTP interface; results are read from switchman's events
listing and from Unleash's own admin API. The suite runs in `make test` (not deselected) and FAILS when
npm or the Unleash install is missing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from switchman.config import Settings
from switchman.db.engine import Database
from tests.conftest import make_settings, unique
from tests.factories import endpoint_with_token, make_service_account
from tests.unleash_oss import ADMIN_TOKEN

# Generous: waiting for a final event is not a timing assertion, only a bound on a broken run.
EVENT_WAIT_SECONDS = 60.0


@pytest.fixture
def settings(db_url: str, db: Database, unleash_url: str) -> Settings:
    """The app drives the real Unleash; short per-call timeouts keep the stopped-server case quick."""
    return make_settings(
        db_url,
        flag_backend="unleash",
        unleash_url=unleash_url,
        unleash_api_token=ADMIN_TOKEN,
        run_worker=True,
        worker_poll_interval_seconds=0.2,
        unleash_timeout_seconds=3.0,
        unleash_retries=2,
        action_timeout_seconds=10.0,
    )


@dataclass
class Endpoint:
    id: int
    name: str
    token: str
    actor_id: int


@pytest.fixture
async def endpoint(client: httpx.AsyncClient) -> Endpoint:
    """A signal endpoint with a token, and an Editor service account for the action sets."""
    created, token = await endpoint_with_token(client, name=unique("apm"))
    account = await make_service_account(client, role=2)
    return Endpoint(int(created["id"]), created["name"], token, int(account["id"]))


async def create_action_set(
    client: httpx.AsyncClient, endpoint: Endpoint, actions: list[dict[str, Any]]
) -> int:
    created = await client.post(
        "/api/admin/projects/default/actions",
        json={
            "name": unique("set"),
            "actorId": endpoint.actor_id,
            "match": {
                "source": "signal-endpoint",
                "sourceId": endpoint.id,
                "payload": {"alert.status": {"operator": "IN", "values": ["firing"]}},
            },
            "actions": actions,
        },
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def action(kind: str, sort_order: int = 1, environment: str = "production", **params: str) -> dict[str, Any]:
    return {
        "action": kind,
        "sortOrder": sort_order,
        "executionParams": {"project": "default", "environment": environment, **params},
    }


async def send_signal(client: httpx.AsyncClient, endpoint: Endpoint) -> int:
    """POST a firing alert to the signal endpoint; returns the signal id (200 = committed)."""
    response = await client.post(
        f"/api/signal-endpoint/{endpoint.name}",
        json={"alert": {"status": "firing", "name": "error-rate"}},
        headers={"Authorization": f"Bearer {endpoint.token}"},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["signals"][0]["id"])


async def final_event(client: httpx.AsyncClient, set_id: int, signal_id: int) -> dict[str, Any]:
    """The action set's event for `signal_id` once it is no longer `started` (from the events listing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EVENT_WAIT_SECONDS
    while True:
        response = await client.get(f"/api/admin/projects/default/actions/{set_id}/events")
        assert response.status_code == 200, response.text
        for event in response.json()["actionSetEvents"]:
            if event["signalId"] == signal_id and event["state"] != "started":
                return dict(event)
        assert loop.time() < deadline, f"no final event for signal {signal_id}: {response.text}"
        await asyncio.sleep(0.05)
