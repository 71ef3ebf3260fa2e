"""Tokens on the client API (Unleash 8.2.0's answers) and client tokens on the admin API; init tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from switchman.api_tokens.service import ensure_client_tokens
from switchman.app import create_app
from switchman.config import ConfigurationError, Settings, load_settings
from switchman.db import tables as t
from switchman.db.engine import Database
from tests.client_api.helpers import client_token, features
from tests.conftest import ADMIN_TOKEN, assert_error, make_settings

NO_TOKEN = {
    "message": "This endpoint requires an API token. Please add an authorization header to your request "
    "with a valid token"
}
WRONG_TYPE = {"message": "invalid token: expected a different token type for this endpoint"}
CLIENT_PATHS = ("/api/client/features", "/api/client/features/some-flag")


async def _pat(client: httpx.AsyncClient) -> str:
    account = await client.post(
        "/api/admin/service-account", json={"username": "sdk-bot", "name": "b", "rootRole": 1}
    )
    assert account.status_code == 201, account.text
    token = await client.post(
        f"/api/admin/service-account/{account.json()['id']}/token",
        json={"description": "pat", "expiresAt": "2999-01-01T00:00:00Z"},
    )
    assert token.status_code == 201, token.text
    secret: str = token.json()["secret"]
    return secret


async def test_missing_and_unknown_tokens_are_401_with_a_bare_message(anon: httpx.AsyncClient) -> None:
    for path in CLIENT_PATHS:
        for headers in (
            {},
            {"Authorization": ""},
            {"Authorization": "default:development.nope"},
            {"Authorization": "garbage"},
        ):
            response = await anon.get(path, headers=headers)
            assert response.status_code == 401 and response.json() == NO_TOKEN, (path, headers)
    for path in ("/api/client/register", "/api/client/metrics"):
        response = await anon.post(path, json={"appName": "a"})
        assert response.status_code == 401 and response.json() == NO_TOKEN


async def test_tokens_of_other_types_are_403(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    frontend = await client_token(client, type="frontend", projects=["default"])
    pat = await _pat(client)
    for secret in (ADMIN_TOKEN, frontend, pat, "*:*.unknown-admin-looking", "user:unknown-pat-looking"):
        for path in CLIENT_PATHS:
            response = await anon.get(path, headers={"Authorization": secret})
            assert response.status_code == 403 and response.json() == WRONG_TYPE, (secret[:8], path)


async def test_client_and_backend_tokens_work_bare_or_bearer_and_are_refused_on_the_admin_api(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for kind in ("client", "backend"):
        secret = await client_token(client, type=kind, projects=["default"])
        await features(anon, secret)
        await features(anon, f"Bearer {secret}")
        for path in ("/api/admin/projects", "/api/admin/api-tokens", "/api/admin/events"):
            body = assert_error(await anon.get(path, headers={"Authorization": secret}), 403)
            assert body["message"] == WRONG_TYPE["message"]


async def test_expired_and_deleted_tokens_stop_working(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    created = await client.post(
        "/api/admin/api-tokens",
        json={
            "tokenName": "old",
            "type": "client",
            "environment": "development",
            "expiresAt": "2001-01-01T00:00:00Z",
        },
    )
    expired = created.json()["secret"]
    assert (await anon.get("/api/client/features", headers={"Authorization": expired})).json() == NO_TOKEN
    secret = await client_token(client, projects=["default"])
    await features(anon, secret)
    assert (await client.delete(f"/api/admin/api-tokens/{secret}")).status_code == 200
    assert (await anon.get("/api/client/features", headers={"Authorization": secret})).status_code == 401


async def test_init_client_tokens_are_created_once_and_work(db_url: str, db: Database) -> None:
    tokens = ["default:development.sdk-dev-secret-1", "*:production.sdk-prod-secret-2"]
    settings = make_settings(db_url, init_client_api_tokens=tokens)
    for _ in range(2):  # a restart creates nothing new
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://t"
            ) as anon:
                dev = await features(anon, tokens[0])
                prod = await features(anon, tokens[1])
                assert dev["query"] == {
                    "project": ["default"],
                    "environment": "development",
                    "inlineSegmentConstraints": True,
                }
                assert prod["query"] == {"environment": "production", "inlineSegmentConstraints": True}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application),
                base_url="http://t",
                headers={"Authorization": ADMIN_TOKEN},
            ) as admin:
                listed = [
                    tok
                    for tok in (await admin.get("/api/admin/api-tokens")).json()["tokens"]
                    if tok["type"] == "client"
                ]
    assert sorted((tok["secret"], tok["environment"], tok["projects"]) for tok in listed) == [
        ("*:production.****", "production", ["*"]),
        ("default:development.****", "development", ["default"]),
    ]


async def test_init_client_tokens_are_safe_when_replicas_start_together(db: Database) -> None:
    tokens = [f"default:development.race-secret-{i:02d}" for i in range(5)]

    async def seed() -> int:
        async with db.transaction() as conn:
            return await ensure_client_tokens(conn, tokens)

    created = await asyncio.gather(*(seed() for _ in range(4)))
    assert sum(created) == 5
    async with db.read() as conn:
        count = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(t.api_token).where(t.api_token.c.type == "client")
            )
        ).scalar()
    assert count == 5


@pytest.mark.parametrize(
    "value",
    [
        "nodots",
        "default:development.",
        "default:development.short",
        "development.long-enough-secret",
        ":development.long-enough-secret",
        "default:.long-enough-secret",
        "default:*.long-enough-secret",
        "*:*.long-enough-secret",
        "[]:development.long-enough-secret",
    ],
)
def test_bad_init_client_token_format_stops_start_up(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHMAN_INIT_CLIENT_API_TOKENS", f"default:development.fine-secret-1,{value}")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert "SWITCHMAN_INIT_CLIENT_API_TOKENS" in str(caught.value)
    secret = value.partition(".")[2]
    assert not secret or secret not in str(caught.value)  # never echoes the secret


def test_init_client_tokens_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SWITCHMAN_INIT_CLIENT_API_TOKENS", " default:development.aaaaaaaa , *:production.bbbbbbbb "
    )
    settings: Settings = load_settings(_env_file=None)
    assert settings.init_client_api_tokens == ["default:development.aaaaaaaa", "*:production.bbbbbbbb"]
    assert "aaaaaaaa" not in repr(settings)


@pytest.mark.parametrize(
    "value", ["nope:development.long-enough-secret", "default:staging.long-enough-secret"]
)
async def test_init_client_token_for_unknown_project_or_environment_stops_start_up(
    db_url: str, db: Database, value: str
) -> None:
    application = create_app(make_settings(db_url, init_client_api_tokens=[value]))
    with pytest.raises(ConfigurationError, match="does not exist"):
        async with application.router.lifespan_context(application):
            pass  # pragma: no cover


async def test_api_token_list_shows_seen_at_after_register(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    secret = await client_token(client, projects=["default"])
    body: dict[str, Any] = {
        "appName": "app",
        "interval": 15000,
        "started": "2026-01-01T00:00:00Z",
        "strategies": [],
    }
    assert (
        await anon.post("/api/client/register", json=body, headers={"Authorization": secret})
    ).status_code == 202
    listed = (await client.get("/api/admin/api-tokens")).json()["tokens"]
    mine = [tok for tok in listed if tok["secret"] == secret.partition(".")[0] + ".****" and tok["seenAt"]]
    assert mine
