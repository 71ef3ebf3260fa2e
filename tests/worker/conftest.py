"""Fixtures for worker tests: a whole scenario built through the public API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from switchman.config import Settings
from switchman.flags.factory import create_flag_backend
from switchman.flags.unleash import UnleashFlagBackend
from switchman.runtime import Runtime
from switchman.worker.loop import SignalWorker
from tests.conftest import unique
from tests.factories import endpoint_with_token, make_flag, make_service_account, send_signal


@dataclass
class Scenario:
    feature: str
    other_feature: str
    endpoint_id: int
    endpoint_name: str
    token: str
    admin_actor_id: int
    viewer_actor_id: int

    async def add_set(
        self,
        client: httpx.AsyncClient,
        actions: list[dict[str, Any]],
        *,
        actor_id: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> int:
        """An action set of project `default` listening to the scenario's endpoint, run as `actor_id`
        (the Admin account by default); its id."""
        return await create_action_set(
            client,
            self,
            actor_id=self.admin_actor_id if actor_id is None else actor_id,
            actions=actions,
            filters=filters,
        )

    async def send(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> int:
        """A signal sent to the scenario's endpoint with its token; its id."""
        return await send_signal(client, self.endpoint_name, self.token, payload)


@pytest.fixture
async def scenario(client: httpx.AsyncClient) -> Scenario:
    return await build_scenario(client)


async def build_scenario(client: httpx.AsyncClient) -> Scenario:
    """Two flags, an endpoint with a token, an Admin and a Viewer service account, through the API."""
    feature = await make_flag(client, name=unique("checkout"))
    other = await make_flag(client, name=unique("legacy"))
    endpoint, token = await endpoint_with_token(client, name=unique("apm"))
    return Scenario(
        feature=feature,
        other_feature=other,
        endpoint_id=int(endpoint["id"]),
        endpoint_name=endpoint["name"],
        token=token,
        admin_actor_id=int((await make_service_account(client, role=1))["id"]),
        viewer_actor_id=int((await make_service_account(client, role=3))["id"]),
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


REMOTE_TOKEN = "*:*.remote-secret"


def scripted_unleash(calls: list[str]) -> httpx.MockTransport:
    """A remote Unleash at the process edge: each call recorded as `METHOD path` and answered 200, except
    a call about flag `missing`, answered 404 as Unleash answers an unknown flag."""

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if "/features/missing/" in request.url.path:
            message = 'There\'s no feature named "missing" in project "default".'
            return httpx.Response(404, json={"name": "NotFoundError", "message": message})
        return httpx.Response(200)

    return httpx.MockTransport(handle)


@contextlib.asynccontextmanager
async def remote_worker(
    app: FastAPI, calls: list[str], settings: Settings | None = None
) -> AsyncIterator[SignalWorker]:
    """A worker on the app's database driving the scripted Unleash (the step-by-step strategy); its
    backend is closed afterwards."""
    backend = UnleashFlagBackend(
        "http://unleash.test", REMOTE_TOKEN, timeout=5, transport=scripted_unleash(calls)
    )
    ctx: Runtime = app.state.runtime
    try:
        yield SignalWorker(settings=settings or ctx.settings, db=ctx.db, wakeup=ctx.wakeup, backend=backend)
    finally:
        await backend.close()
