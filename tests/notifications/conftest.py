"""Fixtures for notification tests: an app with a secret key, the worker scenario, a recording receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from switchman.config import Settings
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.secret_box import new_key
from tests.conftest import make_settings
from tests.worker.conftest import scenario, worker  # noqa: F401 — fixtures shared with the worker tests

KEY = new_key()
CHANNELS = "/api/admin/projects/default/notification-channels"


@pytest.fixture
def settings(db_url: str, db: Database) -> Settings:
    return make_settings(db_url, secret_key=KEY, notification_max_attempts=3)


@dataclass
class Receiver:
    """The far end of the process edge: records every request and answers with `answers` in turn (the last
    one repeats); an answer may be a coroutine function, awaited first (to hang or fail)."""

    answers: list[int | Callable[[], Awaitable[int]]] = field(default_factory=lambda: [200])
    requests: list[httpx.Request] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first request

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.arrived.set()
        answer = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        status = answer if isinstance(answer, int) else await answer()
        return httpx.Response(status, json={})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


async def add_channel(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "name": fields.pop("name", "ops"),
        "kind": "webhook",
        "url": "https://hooks.example.test/in/abc123",
    }
    body.update(fields)
    created = await client.post(CHANNELS, json=body)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


async def outbox(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list(
            (await conn.execute(sa.select(t.notification_outbox).order_by(t.notification_outbox.c.id))).all()
        )


async def never() -> int:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")
