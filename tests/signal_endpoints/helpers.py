"""Helpers for the signal endpoint tests: apps with custom settings, endpoints, tokens, a Viewer PAT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from switchman.auth import tokens
from switchman.auth.permissions import VIEWER_ROLE_ID
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.timeutil import utcnow
from tests.conftest import make_settings, unique
from tests.factories import running_app

BASE = "/api/admin/signal-endpoints"


def caller(app: FastAPI) -> httpx.AsyncClient:
    """A client without credentials (for the ingestion route)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def create_viewer_pat(db: Database) -> str:
    """A service account with the Viewer root role and a PAT for it; returns the PAT secret."""
    secret = tokens.new_pat_secret()
    now = utcnow()
    async with db.transaction() as conn:
        account_id = (
            await conn.execute(
                t.service_account.insert()
                .values(
                    username=unique("viewer"), name="Viewer bot", root_role=VIEWER_ROLE_ID, created_at=now
                )
                .returning(t.service_account.c.id)
            )
        ).scalar_one()
        await conn.execute(
            t.personal_access_token.insert().values(
                user_id=account_id,
                secret_hash=tokens.hash_secret(secret),
                description="viewer",
                expires_at=now + timedelta(days=1),
                created_at=now,
            )
        )
    return secret


async def insert_signal(
    db: Database,
    *,
    source_id: int,
    token_id: int | None = None,
    payload: str = "{}",
    created_at: datetime | None = None,
    processed_at: datetime | None = None,
) -> int:
    """A signal row written directly (to control timestamps and processing state)."""
    async with db.transaction() as conn:
        return int(
            (
                await conn.execute(
                    t.signal.insert()
                    .values(
                        source="signal-endpoint",
                        source_id=source_id,
                        created_by_source_token_id=token_id,
                        payload=payload,
                        created_at=created_at or utcnow(),
                        processed_at=processed_at,
                    )
                    .returning(t.signal.c.id)
                )
            ).scalar_one()
        )


async def signal_rows(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(t.signal).order_by(t.signal.c.id))).all())


@asynccontextmanager
async def app_client(db_url: str, **overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app built with `make_settings(db_url, **overrides)` (lifespan run) and an admin client."""
    async with running_app(make_settings(db_url, **overrides)) as (app, client):
        yield app, client
