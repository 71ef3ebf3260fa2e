"""Objects the action set tests need, written straight into the tables (no dependency on other features'
APIs): service accounts with real PATs, signal endpoints, signals, features and tags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import event_store
from switchman.action_sets.event_store import EventRecord
from switchman.action_sets.repository import ActionSetRecord, get_action_set_by_id
from switchman.auth import tokens
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.timeutil import iso, utcnow
from tests.conftest import unique
from tests.factories import http_client

ADMIN_ROLE, EDITOR_ROLE, VIEWER_ROLE = 1, 2, 3
PROJECT = "default"


async def insert_service_account(db: Database, *, role: int = EDITOR_ROLE) -> int:
    async with db.transaction() as conn:
        result = await conn.execute(
            t.service_account.insert()
            .values(username=unique("sa"), name="Actor", root_role=role, created_at=utcnow())
            .returning(t.service_account.c.id)
        )
        return int(result.scalar_one())


async def insert_pat(db: Database, account_id: int) -> str:
    secret = tokens.new_pat_secret()
    async with db.transaction() as conn:
        await conn.execute(
            t.personal_access_token.insert().values(
                user_id=account_id,
                secret_hash=tokens.hash_secret(secret),
                description=unique("pat"),
                expires_at=utcnow() + timedelta(days=1),
                created_at=utcnow(),
            )
        )
    return secret


async def insert_signal_endpoint(db: Database) -> int:
    async with db.transaction() as conn:
        result = await conn.execute(
            t.signal_endpoint.insert()
            .values(name=unique("ep"), enabled=True, created_at=utcnow(), created_by_user_id=-42)
            .returning(t.signal_endpoint.c.id)
        )
        return int(result.scalar_one())


async def insert_signal(
    db: Database, *, source_id: int, payload: dict[str, Any], token_id: int | None = 1
) -> dict[str, Any]:
    """Store a signal; return its `signalSchema` wire dict."""
    created_at = datetime(2026, 5, 4, 9, 11, 58, 1000, tzinfo=UTC)
    async with db.transaction() as conn:
        result = await conn.execute(
            t.signal.insert()
            .values(
                source="signal-endpoint",
                source_id=source_id,
                created_by_source_token_id=token_id,
                payload=orjson.dumps(payload).decode(),
                created_at=created_at,
            )
            .returning(t.signal.c.id)
        )
        signal_id = int(result.scalar_one())
    return {
        "id": signal_id,
        "source": "signal-endpoint",
        "sourceId": source_id,
        "createdBySourceTokenId": token_id,
        "createdAt": iso(created_at),
        "payload": payload,
    }


async def insert_project(db: Database, project: str | None = None) -> str:
    name = project or unique("proj")
    async with db.transaction() as conn:
        await conn.execute(t.project.insert().values(id=name, name=name, created_at=utcnow()))
        await conn.execute(
            t.project_environment.insert().values(project_id=name, environment_name="production")
        )
    return name


async def insert_feature(
    db: Database,
    *,
    name: str,
    project: str = PROJECT,
    tags: tuple[tuple[str, str], ...] = (),
    archived: bool = False,
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            t.feature.insert().values(
                name=name, project_id=project, created_at=utcnow(), archived_at=utcnow() if archived else None
            )
        )
        for tag_type, value in tags:
            known_type = await conn.execute(t.tag_type.select().where(t.tag_type.c.name == tag_type))
            if known_type.first() is None:
                await conn.execute(t.tag_type.insert().values(name=tag_type, created_at=utcnow()))
            existing = await conn.execute(
                t.tag.select().where(t.tag.c.type == tag_type, t.tag.c.value == value)
            )
            if existing.first() is None:
                await conn.execute(t.tag.insert().values(type=tag_type, value=value, created_at=utcnow()))
            await conn.execute(
                t.feature_tag.insert().values(feature_name=name, tag_type=tag_type, tag_value=value)
            )


@dataclass
class World:
    """An actor service account and a signal endpoint to build valid action sets on."""

    actor_id: int
    endpoint_id: int

    def body(self, **overrides: Any) -> dict[str, Any]:
        """A valid `createActionsSchema` body for project `default`."""
        body: dict[str, Any] = {
            "name": unique("set"),
            "description": "turn checkout-v2 off when the APM reports >5% errors",
            "enabled": True,
            "actorId": self.actor_id,
            "match": {
                "source": "signal-endpoint",
                "sourceId": self.endpoint_id,
                "payload": {
                    "alert.status": {"operator": "IN", "values": ["firing"]},
                    "alert.errorRate": {"operator": "NUM_GT", "value": "5"},
                },
            },
            "actions": [
                {
                    "action": "TOGGLE_FEATURE_OFF",
                    "sortOrder": 1,
                    "executionParams": {
                        "project": PROJECT,
                        "environment": "production",
                        "featureName": "checkout-v2",
                    },
                }
            ],
        }
        body.update(overrides)
        return body


@pytest.fixture
async def world(db: Database) -> World:
    return World(actor_id=await insert_service_account(db), endpoint_id=await insert_signal_endpoint(db))


@pytest.fixture
async def editor(app: FastAPI, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as an Editor service account (authenticated, but not ADMIN)."""
    secret = await insert_pat(db, await insert_service_account(db, role=EDITOR_ROLE))
    async with http_client(app, secret) as http:
        yield http


async def create_set(
    client: httpx.AsyncClient, body: dict[str, Any], project: str = PROJECT
) -> dict[str, Any]:
    response = await client.post(f"/api/admin/projects/{project}/actions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def record_event(
    db: Database,
    *,
    action_set_id: int,
    signal: dict[str, Any],
    outcome: str = "success",
) -> int | None:
    """Record one finished run of the action set for `signal` through the events store, as the worker does.

    `outcome` "success" marks every action success; "failed" fails the first action (later ones stay
    `not started`); "started" leaves the event running with the first action started.
    """
    from switchman.engine.executor import ActionState

    async with db.transaction() as conn:
        record = await get_action_set_by_id(conn, action_set_id)
        assert record is not None
        event = await event_store.start_event(conn, action_set=record, signal=signal, now=utcnow())
        if event is None:
            return None
        steps = record.steps()
        if outcome == "success":
            for step in steps:
                step.state = ActionState.SUCCESS
        elif outcome == "failed":
            steps[0].state = ActionState.FAILED
            steps[0].details = "Feature checkout-v2 does not exist"
        else:
            steps[0].state = ActionState.STARTED
        await event_store.save_event(conn, event, state=outcome, steps=steps)
        return event.id


async def started_event(
    conn: AsyncConnection, action_set_id: int, signal: dict[str, Any]
) -> tuple[ActionSetRecord, EventRecord]:
    """Start the (signal, action set) event in the caller's transaction; the set's record and the event."""
    record = await get_action_set_by_id(conn, action_set_id)
    assert record is not None
    event = await event_store.start_event(conn, action_set=record, signal=signal, now=utcnow())
    assert event is not None
    return record, event
