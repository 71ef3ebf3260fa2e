"""No one in where they don't belong: every route refuses every wrong credential, the Unleash way.

The admin routes are enumerated from the app's route table (`surface.operations`), never listed by hand.
Expected answers (what Unleash OSS 8.2.0 answers; tests/flags_remote/test_real_unleash.py asks the real server):
no header → 401 `AuthenticationRequired`; an unknown token → 401 `UnauthorizedError`; a client or
frontend API token on the admin API → 403 "expected a different token type". A signal endpoint's token
is no API token at all (401), and it opens only its own endpoint. Refused requests store nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from switchman.auth import tokens
from switchman.db.engine import Database
from tests.conftest import ADMIN_TOKEN
from tests.security.surface import INGEST_OPERATION, dump, is_unleash_error, operations, populate

PUBLIC = {"getHealth"}


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _api_token(client: httpx.AsyncClient, kind: str) -> str:
    body: dict[str, Any] = {"tokenName": f"sec-{kind}", "type": kind}
    if kind != "admin":
        body["environment"] = "development"
    response = await client.post("/api/admin/api-tokens", json=body)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


async def test_every_admin_route_refuses_every_wrong_credential(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database
) -> None:
    world = await populate(client)
    credentials: dict[str, tuple[dict[str, str], int, str]] = {
        "none": ({}, 401, "AuthenticationRequired"),
        "empty": ({"Authorization": ""}, 401, "AuthenticationRequired"),
        "bare bearer": ({"Authorization": "Bearer"}, 401, "AuthenticationRequired"),
        "unknown admin-shaped": ({"Authorization": "*:*.wrong-token"}, 401, "UnauthorizedError"),
        "garbage": ({"Authorization": "garbage"}, 401, "UnauthorizedError"),
        "admin token + 1 char": ({"Authorization": ADMIN_TOKEN + "0"}, 401, "UnauthorizedError"),
        "admin token - 1 char": ({"Authorization": ADMIN_TOKEN[:-1]}, 401, "UnauthorizedError"),
        "unknown PAT-shaped": ({"Authorization": "user:" + "0" * 56}, 401, "UnauthorizedError"),
        "signal endpoint token": ({"Authorization": world.endpoint_secret}, 401, "UnauthorizedError"),
        "client token": ({"Authorization": await _api_token(client, "client")}, 403, "NoAccessError"),
        "frontend token": ({"Authorization": await _api_token(client, "frontend")}, 403, "NoAccessError"),
    }
    everything = [op for op in operations(app) if op.operation_id not in PUBLIC | {INGEST_OPERATION}]
    ops = [op for op in everything if op.is_admin]
    # every other route is the SDKs' client API (next test), or this test does not know it yet
    others = [op.label for op in everything if not op.is_admin and not op.path.startswith("/api/client/")]
    assert not others, others
    before = await dump(db)
    problems: list[str] = []
    for op in ops:
        url = op.url(**world.path_values(op))
        for label, (headers, status, name) in credentials.items():
            response = await anon.request(
                op.method, url, headers={"Content-Type": "application/json", **headers}, content=b"{}"
            )
            if response.status_code != status or not is_unleash_error(response):
                problems.append(f"{op.label} with {label}: {response.status_code} {response.text[:200]}")
                continue
            body = response.json()
            if body["name"] != name:
                problems.append(f"{op.label} with {label}: {body['name']}, expected {name}")
            if (
                status == 401
                and name == "AuthenticationRequired"
                and body.get("path") != "/auth/simple/login"
            ):
                problems.append(f"{op.label} with {label}: no login hint {body}")
            if status == 403 and "different token type" not in body["message"]:
                problems.append(f"{op.label} with {label}: {body['message']}")
            presented = headers.get("Authorization", "")
            if len(presented) > 8 and presented in response.text:
                problems.append(f"{op.label} with {label}: the presented credential is echoed")
    assert not problems, f"{len(problems)} wrong answers:\n" + "\n".join(problems[:50])
    assert await dump(db) == before, "a refused request changed the database"
    assert len(ops) * len(credentials) >= 600


async def test_a_signal_token_opens_its_own_endpoint_only(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database
) -> None:
    endpoints = []
    for n in range(3):
        endpoint = (await client.post("/api/admin/signal-endpoints", json={"name": f"sec-matrix-{n}"})).json()
        token = (
            await client.post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", json={"name": "t"})
        ).json()
        endpoints.append((endpoint["name"], token["token"]))
    strangers = {
        "admin": ADMIN_TOKEN,
        "client": await _api_token(client, "client"),
        "pat-shaped": "user:" + "0" * 56,
    }
    accepted = 0
    for name, _ in endpoints:
        for owner, secret in endpoints:
            response = await anon.post(
                f"/api/signal-endpoint/{name}", json={"n": 1}, headers={"Authorization": f"Bearer {secret}"}
            )
            expected = 200 if owner == name else 401
            assert response.status_code == expected, (name, owner, response.text)
            accepted += expected == 200
            if expected == 401:
                assert is_unleash_error(response) and response.json()["name"] == "UnauthorizedError"
        for label, secret in strangers.items():
            response = await anon.post(
                f"/api/signal-endpoint/{name}", json={}, headers={"Authorization": secret}
            )
            assert response.status_code == 401, (label, response.text)
    listed = (await client.get("/api/admin/signals")).json()
    assert len(listed["signals"]) == accepted == len(endpoints)


async def test_every_client_api_route_refuses_every_wrong_credential(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database
) -> None:
    """The SDKs' routes (`/api/client/*`, when present) answer Unleash's bare `{message}` errors: no or an
    unknown token 401 (403 for admin- or PAT-shaped ones), a token of another type 403; never a 2xx."""
    ops = [op for op in operations(app) if op.path.startswith("/api/client/")]
    if not ops:  # no client API in this build: nothing answers on its paths, whatever the credential
        for headers in ({}, {"Authorization": ADMIN_TOKEN}):
            assert (await anon.get("/api/client/features", headers=headers)).status_code == 404
        return
    world = await populate(client)
    credentials = {
        "none": {},
        "garbage": {"Authorization": "garbage"},
        "unknown admin-shaped": {"Authorization": "*:*.wrong-token"},
        "signal endpoint token": {"Authorization": world.endpoint_secret},
        "admin token": {"Authorization": ADMIN_TOKEN},
        "frontend token": {"Authorization": await _api_token(client, "frontend")},
    }
    before = await dump(db)
    problems = []
    for op in ops:
        url = op.url(**world.path_values(op))
        for label, headers in credentials.items():
            response = await anon.request(
                op.method, url, headers={"Content-Type": "application/json", **headers}, content=b"{}"
            )
            expected = {401} if label == "none" else {401, 403}
            if response.status_code not in expected or not isinstance(response.json().get("message"), str):
                problems.append(f"{op.label} with {label}: {response.status_code} {response.text[:200]}")
    assert not problems, "\n".join(problems)
    assert await dump(db) == before


# --- constant-time token checks ------------------------------------------------------------------------


def test_token_checks_compare_fixed_length_digests_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the presented secret (empty, short, a near miss, huge), the comparison made is
    `hmac.compare_digest` of two 64-character SHA-256 hex digests, never of the secrets themselves."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    secret = tokens.new_signal_token_secret()
    stored = tokens.hash_secret(secret)
    presented = ["", "s", secret[:-1], secret[:-1] + "x", secret, secret * 100, "ü" * 50]
    results = [tokens.digests_match(stored, p) for p in presented]
    assert results == [p == secret for p in presented]
    assert len(calls) == len(presented)
    for a, b in calls:
        assert a == stored and len(a) == len(b) == 64
        assert all(c in "0123456789abcdef" for c in b)
    assert stored == hashlib.sha256(secret.encode()).hexdigest()


def test_a_near_miss_gets_no_closer_to_the_stored_digest() -> None:
    """Statistical, and deterministic: the value looked up and compared is a SHA-256 digest, so a guess
    sharing k leading characters with the real secret shares no more leading digest characters than a
    random guess does. Over 2,000 fixed guesses the common digest prefix is independent of k (|r| small)
    and averages the 1/15 character expected by chance: timing cannot leak how much of a secret matched."""
    secret = "signal_" + "k" * 43
    stored = tokens.hash_secret(secret)
    shared: list[int] = []
    prefixes: list[int] = []
    for i in range(2000):
        k = i % len(secret)  # 0 … 49 characters right
        guess = f"{secret[:k]}x{i:06d}"  # k characters right, then wrong ('x' is not 'k'); all distinct
        digest = tokens.hash_secret(guess)
        prefixes.append(k)
        shared.append(next((n for n, (a, b) in enumerate(zip(digest, stored, strict=True)) if a != b), 64))
    assert statistics.mean(shared) < 0.15  # chance: 1/15 ≈ 0.067
    assert abs(statistics.correlation(prefixes, shared)) < 0.1
