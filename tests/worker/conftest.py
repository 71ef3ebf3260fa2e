"""Fixtures for worker tests: a whole scenario built through the public API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from switchman.flags.factory import create_flag_backend
from switchman.runtime import Runtime
from switchman.worker.loop import SignalWorker
from tests.conftest import unique


@dataclass
class Scenario:
    feature: str
    other_feature: str
    endpoint_id: int
    endpoint_name: str
    token: str
    admin_actor_id: int
    viewer_actor_id: int


async def create_service_account(client: httpx.AsyncClient, role: int) -> int:
    response = await client.post(
        "/api/admin/service-account", json={"username": unique("sa"), "name": "Automation", "rootRole": role}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture
async def scenario(client: httpx.AsyncClient) -> Scenario:
    feature, other = unique("checkout"), unique("legacy")
    for name in (feature, other):
        created = await client.post("/api/admin/projects/default/features", json={"name": name})
        assert created.status_code == 201, created.text
    endpoint_name = unique("apm")
    endpoint = await client.post("/api/admin/signal-endpoints", json={"name": endpoint_name})
    assert endpoint.status_code == 201, endpoint.text
    endpoint_id = int(endpoint.json()["id"])
    token = await client.post(f"/api/admin/signal-endpoints/{endpoint_id}/tokens", json={"name": "alerts"})
    assert token.status_code == 201, token.text
    return Scenario(
        feature=feature,
        other_feature=other,
        endpoint_id=endpoint_id,
        endpoint_name=endpoint_name,
        token=token.json()["token"],
        admin_actor_id=await create_service_account(client, 1),
        viewer_actor_id=await create_service_account(client, 3),
    )


def action_set_body(
    scenario: Scenario,
    *,
    actor_id: int,
    actions: list[dict[str, Any]],
    filters: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name or unique("set"),
        "actorId": actor_id,
        "match": {"source": "signal-endpoint", "sourceId": scenario.endpoint_id, "payload": filters or {}},
        "actions": actions,
    }


async def create_action_set(
    client: httpx.AsyncClient,
    scenario: Scenario,
    *,
    actor_id: int,
    actions: list[dict[str, Any]],
    filters: dict[str, Any] | None = None,
) -> int:
    """Create an action set in project `default` through the API; returns its id."""
    created = await client.post(
        "/api/admin/projects/default/actions",
        json=action_set_body(scenario, actor_id=actor_id, actions=actions, filters=filters),
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def toggle(action: str, feature: str, sort_order: int, environment: str = "production") -> dict[str, Any]:
    return {
        "action": action,
        "sortOrder": sort_order,
        "executionParams": {"project": "default", "environment": environment, "featureName": feature},
    }


@pytest.fixture
async def worker(app: FastAPI) -> Any:
    ctx: Runtime = app.state.runtime
    backend = create_flag_backend(ctx.settings, ctx.db)
    yield SignalWorker(settings=ctx.settings, db=ctx.db, wakeup=ctx.wakeup, backend=backend)
    await backend.close()


async def drain(worker: SignalWorker) -> int:
    total = 0
    while handled := await worker.drain_once():
        total += handled
    return total
