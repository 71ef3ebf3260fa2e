"""Signed calls (ADR 0020): the schemes as senders sign, the sealed secret, and ingestion end to end."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from switchman.db.engine import Database
from switchman.secret_box import SecretBox, SecretBoxError, new_key, parse_key
from switchman.signal_endpoints.verification import Scheme, SecretError, Verifier, secret_key
from tests.conftest import assert_error, make_settings
from tests.factories import all_stored_text, endpoint_with_token
from tests.signal_endpoints.helpers import BASE, app_client, signal_rows

BODY = b'{"action":"completed","workflow_run":{"conclusion":"failure"}}'
GITHUB_SECRET = "It's a Secret to Everybody"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def github_signature(secret: str, body: bytes) -> bytes:
    return b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


def standard_signature(secret: str, message_id: bytes, timestamp: bytes, body: bytes) -> bytes:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, message_id + b"." + timestamp + b"." + body, hashlib.sha256).digest()
    return b"v1," + base64.b64encode(digest)


# --- the schemes --------------------------------------------------------------------------------------


def test_github_example_from_its_documentation() -> None:
    # GitHub's documented test vector: secret "It's a Secret to Everybody", payload "Hello, World!".
    verifier = Verifier(Scheme.GITHUB, secret_key(Scheme.GITHUB, GITHUB_SECRET))
    documented = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verifier.failure(b"Hello, World!", {b"x-hub-signature-256": documented}, now=0) is None
    assert verifier.failure(b"Hello, World?", {b"x-hub-signature-256": documented}, now=0) is not None
    assert verifier.failure(b"Hello, World!", {}, now=0) == "The X-Hub-Signature-256 header is missing."


def test_standard_webhooks_with_rotation_and_a_replay_window() -> None:
    verifier = Verifier(
        Scheme.STANDARD_WEBHOOKS, secret_key(Scheme.STANDARD_WEBHOOKS, WHSEC), tolerance_seconds=300
    )
    now = 1_796_000_000
    message_id, stamp = b"msg_2Lh9KRb2Yq7b", str(now).encode()
    good = standard_signature(WHSEC, message_id, stamp, BODY)
    old_secret = "whsec_" + base64.b64encode(b"another key, 32 bytes long......").decode()
    rotating = standard_signature(old_secret, message_id, stamp, BODY) + b" " + good
    headers = {b"webhook-id": message_id, b"webhook-timestamp": stamp, b"webhook-signature": rotating}
    assert verifier.failure(BODY, headers, now=now + 10) is None
    assert (
        verifier.failure(BODY + b" ", headers, now=now)
        == "No v1 signature in webhook-signature matches the body."
    )
    assert "more than 300 s" in (verifier.failure(BODY, headers, now=now + 301) or "")
    assert "more than 300 s" in (verifier.failure(BODY, headers, now=now - 301) or "")
    assert verifier.failure(BODY, {**headers, b"webhook-timestamp": b"soon"}, now=now) is not None
    assert verifier.failure(BODY, {b"webhook-id": message_id}, now=now) is not None
    # the id is signed: another message id with the same body and signature does not verify
    assert verifier.failure(BODY, {**headers, b"webhook-id": b"msg_other"}, now=now) is not None


@pytest.mark.parametrize(
    "presented",
    [
        lambda d: d.hex().encode(),
        lambda d: d.hex().upper().encode(),
        lambda d: b"sha256=" + d.hex().encode(),
        lambda d: base64.b64encode(d),
    ],
)
def test_hmac_sha256_in_a_named_header_hex_or_base64(presented: Any) -> None:
    verifier = Verifier(Scheme.HMAC_SHA256, b"grafana-secret", header="X-Grafana-Signature")
    digest = hmac.new(b"grafana-secret", BODY, hashlib.sha256).digest()
    assert verifier.failure(BODY, {b"x-grafana-signature": presented(digest)}, now=0) is None
    assert verifier.failure(BODY + b"x", {b"x-grafana-signature": presented(digest)}, now=0) is not None
    assert verifier.failure(BODY, {b"x-signature": presented(digest)}, now=0) == (
        "The X-Grafana-Signature header is missing."
    )


def _hex(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, hashlib.sha256).hexdigest().encode()


def test_pagerduty_signatures_during_a_rotation() -> None:
    verifier = Verifier(Scheme.PAGERDUTY, b"pd-secret")
    current = b"v1=" + _hex(b"pd-secret", BODY)
    previous = b"v1=" + _hex(b"old-secret", BODY)
    assert verifier.failure(BODY, {b"x-pagerduty-signature": previous + b"," + current}, now=0) is None
    assert verifier.failure(BODY, {b"x-pagerduty-signature": previous}, now=0) is not None
    assert verifier.failure(BODY, {}, now=0) == "The X-PagerDuty-Signature header is missing."


def test_sentry_hook_signature() -> None:
    verifier = Verifier(Scheme.SENTRY, b"client-secret")
    assert verifier.failure(BODY, {b"sentry-hook-signature": _hex(b"client-secret", BODY)}, now=0) is None
    assert verifier.failure(BODY + b" ", {b"sentry-hook-signature": _hex(b"client-secret", BODY)}, now=0)


def test_stripe_signature_with_its_timestamp() -> None:
    verifier = Verifier(Scheme.STRIPE, b"whsec_stripe", tolerance_seconds=300)
    now = 1_796_000_000
    t = str(now).encode()
    header = b"t=" + t + b",v1=" + _hex(b"whsec_stripe", t + b"." + BODY) + b",v0=ignored"
    assert verifier.failure(BODY, {b"stripe-signature": header}, now=now + 5) is None
    assert "more than 300 s" in (verifier.failure(BODY, {b"stripe-signature": header}, now=now + 400) or "")
    assert verifier.failure(BODY, {b"stripe-signature": b"v1=" + _hex(b"whsec_stripe", BODY)}, now=now)
    assert verifier.failure(b"{}", {b"stripe-signature": header}, now=now) is not None


def test_grafana_hmac_with_a_timestamp_header() -> None:
    verifier = Verifier(
        Scheme.HMAC_SHA256,
        b"grafana",
        header="X-Grafana-Alerting-Signature",
        timestamp_header="X-Grafana-Alerting-Signature-Timestamp",
    )
    now = 1_796_000_000
    stamp = str(now).encode()
    headers = {
        b"x-grafana-alerting-signature": _hex(b"grafana", stamp + b":" + BODY),
        b"x-grafana-alerting-signature-timestamp": stamp,
    }
    assert verifier.failure(BODY, headers, now=now) is None
    assert verifier.failure(BODY, headers, now=now + 3600) is not None  # a replay, an hour later
    unsigned_stamp = {**headers, b"x-grafana-alerting-signature": _hex(b"grafana", BODY)}
    assert verifier.failure(BODY, unsigned_stamp, now=now) is not None
    assert verifier.failure(BODY, {b"x-grafana-alerting-signature": _hex(b"grafana", BODY)}, now=now) == (
        "The X-Grafana-Alerting-Signature-Timestamp header is missing or not a Unix time."
    )


@pytest.mark.parametrize("secret", ["", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()])
def test_unusable_standard_webhooks_secrets(secret: str) -> None:
    with pytest.raises(SecretError):
        secret_key(Scheme.STANDARD_WEBHOOKS, secret)


# --- the sealed secret --------------------------------------------------------------------------------


def test_secret_box_seals_opens_and_rotates() -> None:
    old, new = parse_key(new_key()), parse_key(new_key())
    sealed_old = SecretBox([old]).seal(b"s3cret")
    assert b"s3cret" not in sealed_old.encode()
    rotated = SecretBox([new, old])
    assert rotated.open(sealed_old) == b"s3cret"
    assert not rotated.sealed_with_current(sealed_old)
    assert rotated.sealed_with_current(rotated.seal(b"x"))
    with pytest.raises(SecretBoxError, match="no configured key"):
        SecretBox([new]).open(sealed_old)
    version, kid, encoded = sealed_old.split(".")
    raw = bytearray(base64.urlsafe_b64decode(encoded))
    raw[-1] ^= 1
    with pytest.raises(SecretBoxError, match="does not open"):
        SecretBox([old]).open(f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}")


@pytest.mark.parametrize("key", ["short", "!!!not base64!!!", base64.urlsafe_b64encode(b"x" * 31).decode()])
def test_a_malformed_secret_key_stops_the_start(key: str) -> None:
    with pytest.raises(ValidationError, match="SWITCHMAN_SECRET_KEY"):
        make_settings("sqlite:///unused.db", secret_key=key)
    with pytest.raises(ValidationError, match="SWITCHMAN_SECRET_KEY"):
        make_settings("sqlite:///unused.db", secret_key=new_key(), previous_secret_keys=f"{new_key()},{key}")


# --- through the API and ingestion ----------------------------------------------------------------------


async def test_without_a_secret_key_no_signing_secret_can_be_set(client: httpx.AsyncClient) -> None:
    endpoint, _ = await endpoint_with_token(client)
    response = await client.put(
        f"{BASE}/{endpoint['id']}/verification", json={"scheme": "github", "secret": GITHUB_SECRET}
    )
    error = assert_error(response, 409, "ConflictError")
    assert "SWITCHMAN_SECRET_KEY" in error["message"]


async def test_a_signed_endpoint_end_to_end(db_url: str, db: Database) -> None:
    async with app_client(db_url, secret_key=new_key()) as (_app, client):
        endpoint, token = await endpoint_with_token(client)
        path = f"{BASE}/{endpoint['id']}/verification"
        assert_error(await client.get(path), 404, "NotFoundError")
        created = await client.put(path, json={"scheme": "github", "secret": GITHUB_SECRET})
        assert created.status_code == 200, created.text
        shown = created.json()
        assert shown["scheme"] == "github" and shown["failures"] == 0
        assert "secret" not in shown
        assert GITHUB_SECRET not in await all_stored_text(db)  # sealed at rest, also in audit events
        call = f"/api/signal-endpoint/{endpoint['name']}"

        signed = await client.post(
            call,
            content=BODY,
            headers={"X-Hub-Signature-256": github_signature(GITHUB_SECRET, BODY).decode()},
        )
        assert signed.status_code == 200, signed.text  # no token: the signature authenticates the call
        assert signed.json()["signals"][0]["createdBySourceTokenId"] is None
        with_token = await client.post(
            call,
            content=BODY,
            headers={
                "X-Hub-Signature-256": github_signature(GITHUB_SECRET, BODY).decode(),
                "Authorization": f"Bearer {token}",
            },
        )
        assert with_token.json()["signals"][0]["createdBySourceTokenId"] is not None

        stored = len(await signal_rows(db))
        forged = await client.post(
            call,
            content=BODY,
            headers={"X-Hub-Signature-256": github_signature("wrong", BODY).decode(), "Authorization": token},
        )
        error = assert_error(forged, 401, "UnauthorizedError")
        assert "does not match" in error["message"]
        unsigned = await client.post(call, content=BODY, headers={"Authorization": token})
        assert_error(unsigned, 401, "UnauthorizedError")  # a valid token does not replace the signature
        assert len(await signal_rows(db)) == stored

        await _app.state.runtime.ingestion.endpoint_rules.flush()
        statistics = (await client.get(path)).json()
        assert statistics["failures"] == 2
        assert statistics["lastFailureReason"] == "The X-Hub-Signature-256 header is missing."

        assert (await client.delete(path)).status_code == 200
        assert_error(await client.get(path), 404, "NotFoundError")


async def test_a_verification_change_applies_within_the_cache_time(db_url: str, db: Database) -> None:
    async with app_client(db_url, secret_key=new_key()) as (app, client):
        endpoint, token = await endpoint_with_token(client)
        call = f"/api/signal-endpoint/{endpoint['name']}"
        assert (await client.post(call, json={}, headers={"Authorization": token})).status_code == 200
        await client.put(
            f"{BASE}/{endpoint['id']}/verification",
            json={"scheme": "standard-webhooks", "secret": WHSEC, "toleranceSeconds": 60},
        )
        rules = app.state.runtime.ingestion.endpoint_rules
        rules._ttl = 0  # read the configuration again on the next call instead of within a second
        refused = await client.post(call, json={}, headers={"Authorization": token})
        assert_error(refused, 401, "UnauthorizedError")
        stamp = str(int(time.time())).encode()
        body = b'{"type":"invoice.paid"}'
        signed = await client.post(
            call,
            content=body,
            headers={
                "webhook-id": "msg_1",
                "webhook-timestamp": stamp.decode(),
                "webhook-signature": standard_signature(WHSEC, b"msg_1", stamp, body).decode(),
            },
        )
        assert signed.status_code == 200, signed.text
        # the same delivery again: its webhook-id is also its delivery id (ADR 0019)
        again = await client.post(
            call,
            content=body,
            headers={
                "webhook-id": "msg_1",
                "webhook-timestamp": stamp.decode(),
                "webhook-signature": standard_signature(WHSEC, b"msg_1", stamp, body).decode(),
            },
        )
        assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"scheme": "github", "secret": ""}, "/secret"),
        ({"scheme": "sha1", "secret": "x"}, "/scheme"),
        ({"scheme": "github", "secret": "x", "header": "X-Sig"}, "/header"),
        ({"scheme": "github", "secret": "x", "toleranceSeconds": 5}, "/toleranceSeconds"),
        ({"scheme": "pagerduty", "secret": "x", "timestampHeader": "X-T"}, "/timestampHeader"),
        ({"scheme": "standard-webhooks", "secret": "whsec_%%%"}, "/secret"),
        ({"scheme": "hmac-sha256", "secret": "x", "header": "Bad Header"}, "/header"),
    ],
)
async def test_unusable_verification_bodies_are_400(
    db_url: str, db: Database, body: dict[str, Any], path: str
) -> None:
    async with app_client(db_url, secret_key=new_key()) as (_app, client):
        endpoint, _ = await endpoint_with_token(client)
        response = await client.put(f"{BASE}/{endpoint['id']}/verification", json=body)
        error = assert_error(response, 400, "BadDataError")
        assert any(detail["path"] == path for detail in error.get("details", [])), error


async def test_rotating_the_key_keeps_endpoints_verifying(db_url: str, db: Database, tmp_path: Any) -> None:
    old_key, new = new_key(), new_key()
    async with app_client(db_url, secret_key=old_key) as (_app, client):
        endpoint, _ = await endpoint_with_token(client)
        await client.put(
            f"{BASE}/{endpoint['id']}/verification", json={"scheme": "github", "secret": GITHUB_SECRET}
        )
    call = f"/api/signal-endpoint/{endpoint['name']}"
    headers = {"X-Hub-Signature-256": github_signature(GITHUB_SECRET, BODY).decode()}
    # The new key alone cannot open the old seal: calls are refused (never accepted unverified).
    async with app_client(db_url, secret_key=new) as (_app, client):
        refused = await client.post(call, content=BODY, headers=headers)
        assert "cannot open" in assert_error(refused, 401, "UnauthorizedError")["message"]
    # New key first, old one as previous: it verifies; `switchman secrets rotate` re-seals with the new one.
    async with app_client(db_url, secret_key=new, previous_secret_keys=old_key) as (_app, client):
        assert (await client.post(call, content=BODY, headers=headers)).status_code == 200
    rotate = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "switchman", "secrets", "rotate"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")},
            "SWITCHMAN_DATABASE_URL": db_url,
            "SWITCHMAN_SECRET_KEY": new,
            "SWITCHMAN_PREVIOUS_SECRET_KEYS": old_key,
        },
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert rotate.returncode == 0, rotate.stderr
    assert "1 signing secret(s) re-sealed" in rotate.stderr
    async with app_client(db_url, secret_key=new) as (_app, client):
        assert (await client.post(call, content=BODY, headers=headers)).status_code == 200


def test_new_key_prints_a_usable_key() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "switchman", "secrets", "new-key"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    assert len(parse_key(out.stdout.strip())) == 32
