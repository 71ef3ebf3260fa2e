"""Secrets are shown once: never in a log line (captured at DEBUG), a later response, or a stored value.

One scenario covers every kind of secret switchman mints (admin and client API tokens, service account
PATs, signal endpoint tokens) and the bootstrap admin token, each used successfully, refused (wrong
endpoint, revoked), presented bare and as `Bearer`, and with the request log on. Afterwards the logs,
every response after the creating one, and every text column of every table are searched for each
secret and for its random part alone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from switchman.db.engine import Database
from switchman.logs import redact_path
from tests.conftest import ADMIN_TOKEN
from tests.factories import all_stored_text


@pytest.fixture
async def raw(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _random_part(secret: str) -> str:
    """The part of a secret that is secret: after `*:*.`/`project:env.`, `user:` or `signal_`."""
    for sep in (".", "user:", "signal_"):
        if sep in secret:
            return secret.split(sep, 1)[1]
    return secret


async def test_secrets_appear_once_and_nowhere_else(
    raw: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = {"Authorization": ADMIN_TOKEN}
    later: list[httpx.Response] = []  # every response after the one that showed a secret

    async def call(method: str, url: str, **kwargs: object) -> httpx.Response:
        response = await raw.request(method, url, **kwargs)  # type: ignore[arg-type]
        later.append(response)
        return response

    secrets: list[str] = [ADMIN_TOKEN]
    for kind, extra in (("admin", {}), ("client", {"environment": "development"})):
        created = await raw.post(
            "/api/admin/api-tokens", json={"tokenName": kind, "type": kind, **extra}, headers=admin
        )
        assert created.status_code == 201, created.text
        secrets.append(created.json()["secret"])
    account = (
        await call(
            "POST",
            "/api/admin/service-account",
            json={"username": "sec-hyg", "name": "H", "rootRole": 1},
            headers=admin,
        )
    ).json()
    pat = await raw.post(
        f"/api/admin/service-account/{account['id']}/token",
        json={"description": "hyg", "expiresAt": "2099-01-01T00:00:00.000Z"},
        headers=admin,
    )
    assert pat.status_code == 201, pat.text
    secrets.append(pat.json()["secret"])
    endpoints = []
    for n in range(2):
        endpoint = (
            await call("POST", "/api/admin/signal-endpoints", json={"name": f"sec-hyg-{n}"}, headers=admin)
        ).json()
        token = await raw.post(
            f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", json={"name": "t"}, headers=admin
        )
        assert token.status_code == 201, token.text
        secrets.append(token.json()["token"])
        endpoints.append(endpoint)

    # use each: accepted, bare and Bearer; refused on the wrong endpoint or route; then revoked
    admin_secret, client_secret, pat_secret, signal_a, signal_b = secrets[1:]
    for header in (admin_secret, f"Bearer {pat_secret}", f"bearer {ADMIN_TOKEN}"):
        assert (
            await call("GET", "/api/admin/api-tokens", headers={"Authorization": header})
        ).status_code == 200
    assert (
        await call("GET", "/api/admin/projects", headers={"Authorization": client_secret})
    ).status_code == 403
    for endpoint, secret, status in (
        (endpoints[0], signal_a, 200),
        (endpoints[1], signal_a, 401),
        (endpoints[1], f"Bearer {signal_b}", 200),
    ):
        response = await call(
            "POST",
            f"/api/signal-endpoint/{endpoint['name']}",
            json={"alert": "x"},
            headers={"Authorization": secret},
        )
        assert response.status_code == status, response.text
    assert (
        await call(
            "POST", "/api/signal-endpoint/sec-hyg-0", content=b"{", headers={"Authorization": signal_a}
        )
    ).status_code == 400
    assert (await call("DELETE", f"/api/admin/api-tokens/{admin_secret}", headers=admin)).status_code == 200
    assert (
        await call("GET", "/api/admin/projects", headers={"Authorization": admin_secret})
    ).status_code == 401
    for url in (
        "/api/admin/api-tokens",
        "/api/admin/service-account",
        f"/api/admin/service-account/{account['id']}/token",
        "/api/admin/signal-endpoints",
        f"/api/admin/signal-endpoints/{endpoints[0]['id']}/tokens",
        "/api/admin/signals",
        "/api/admin/events",
    ):
        assert (await call("GET", url, headers=admin)).status_code == 200, url

    # the server's records (the test's own HTTP client logs the URLs it calls, secrets included)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logs = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in server)
    captured = capsys.readouterr()
    stored = await all_stored_text(db)
    answers = "\n".join(r.text for r in later)
    assert (
        "sec-hyg-0" in stored and "/api/admin/api-tokens/*:*.****" in logs
    )  # the searches look at the right things
    for secret in secrets:
        for needle in {secret, _random_part(secret)}:
            assert needle not in logs, "a secret was logged"
            assert needle not in captured.out + captured.err, "a secret was printed"
            assert needle not in stored, "a secret was stored in clear"
            assert needle not in answers, "a secret was shown again"


def test_the_request_log_masks_the_secret_in_a_token_path() -> None:
    assert redact_path("/api/admin/api-tokens/*:*.abc123") == "/api/admin/api-tokens/*:*.****"
    assert (
        redact_path("/api/admin/api-tokens/default:development.abc")
        == "/api/admin/api-tokens/default:development.****"
    )
    assert redact_path("/api/admin/api-tokens/no-dot-secret") == "/api/admin/api-tokens/.****"
    assert redact_path("/api/admin/projects/default") == "/api/admin/projects/default"
