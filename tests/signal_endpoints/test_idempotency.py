"""Each delivery once: a repeated delivery id answers with the first delivery's signal and stores nothing
(ADR 0019) — sequentially, concurrently in one group-committed batch, and across two replicas."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.signal_endpoints.retention import prune_deliveries
from switchman.timeutil import utcnow
from tests.conftest import REPO_ROOT, assert_error, make_settings
from tests.factories import endpoint_with_token
from tests.signal_endpoints.helpers import app_client, caller, signal_rows


def call_path(name: str) -> str:
    return f"/api/signal-endpoint/{name}"


async def post(
    client: httpx.AsyncClient, name: str, secret: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(call_path(name), json=body, headers={"Authorization": secret, **headers})


async def deliveries(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(sa.select(t.signal_delivery))).all())


async def test_a_repeated_delivery_gets_the_first_signal_and_stores_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    first = await post(client, endpoint["name"], secret, {"n": 1}, **{"Idempotency-Key": "evt-1"})
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = await post(client, endpoint["name"], secret, {"n": 2}, **{"Idempotency-Key": "evt-1"})
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the first delivery's signal, payload included
    assert [row.id for row in await signal_rows(db)] == [first.json()["signals"][0]["id"]]
    other = await post(client, endpoint["name"], secret, {"n": 3}, **{"Idempotency-Key": "evt-2"})
    assert other.json()["signals"][0]["id"] != first.json()["signals"][0]["id"]
    plain = await post(client, endpoint["name"], secret, {"n": 4})
    assert "Idempotent-Replayed" not in plain.headers
    assert len(await signal_rows(db)) == 3


@pytest.mark.parametrize("header", ["Idempotency-Key", "webhook-id", "X-GitHub-Delivery"])
async def test_each_delivery_id_header_counts(client: httpx.AsyncClient, db: Database, header: str) -> None:
    endpoint, secret = await endpoint_with_token(client)
    key = f"72d3162e-cc78-11e3-81ab-{header[:4]}"
    ids = {
        (await post(client, endpoint["name"], secret, {}, **{header: key})).json()["signals"][0]["id"]
        for _ in range(3)
    }
    assert len(ids) == 1
    assert len(await signal_rows(db)) == 1


async def test_idempotency_key_takes_precedence_over_the_senders_own_ids(client: httpx.AsyncClient) -> None:
    endpoint, secret = await endpoint_with_token(client)
    name = endpoint["name"]
    first = await post(client, name, secret, {}, **{"Idempotency-Key": "k", "X-GitHub-Delivery": "g1"})
    same_key = await post(client, name, secret, {}, **{"Idempotency-Key": "k", "X-GitHub-Delivery": "g2"})
    other_key = await post(client, name, secret, {}, **{"Idempotency-Key": "k2", "X-GitHub-Delivery": "g1"})
    assert same_key.json() == first.json()
    assert other_key.json() != first.json()


async def test_keys_are_per_endpoint(client: httpx.AsyncClient, db: Database) -> None:
    one, one_secret = await endpoint_with_token(client)
    two, two_secret = await endpoint_with_token(client)
    a = await post(client, one["name"], one_secret, {}, **{"webhook-id": "msg_1"})
    b = await post(client, two["name"], two_secret, {}, **{"webhook-id": "msg_1"})
    assert a.json()["signals"][0]["id"] != b.json()["signals"][0]["id"]
    assert "Idempotent-Replayed" not in b.headers
    assert len(await signal_rows(db)) == 2


async def test_concurrent_duplicates_store_one_signal(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    responses = await asyncio.gather(
        *(
            post(client, endpoint["name"], secret, {"copy": n}, **{"Idempotency-Key": "storm"})
            for n in range(30)
        )
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["signals"][0]["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 29
    (row,) = await signal_rows(db)
    assert len(await deliveries(db)) == 1
    assert (await deliveries(db))[0].signal_id == row.id


async def test_concurrent_duplicates_across_two_replicas_store_one_signal(db_url: str, db: Database) -> None:
    async with app_client(db_url) as (first, admin), app_client(db_url) as (second, _):
        endpoint, secret = await endpoint_with_token(admin)
        async with caller(first) as one, caller(second) as two:
            responses = await asyncio.gather(
                *(
                    post(sender, endpoint["name"], secret, {"n": n}, **{"Idempotency-Key": f"k{n % 3}"})
                    for n in range(24)
                    for sender in (one, two)
                )
            )
    assert {r.status_code for r in responses} == {200}
    by_key: dict[str, set[int]] = {}
    for n, response in enumerate(responses):
        by_key.setdefault(f"k{(n // 2) % 3}", set()).add(response.json()["signals"][0]["id"])
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    assert len(await signal_rows(db)) == 3


async def test_a_refused_call_does_not_claim_its_key(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    refused = await post(client, endpoint["name"], "wrong-token", {}, **{"Idempotency-Key": "retry-me"})
    assert_error(refused, 401, "UnauthorizedError")
    bad_body = await client.post(
        call_path(endpoint["name"]),
        content=b"[not json",
        headers={"Authorization": secret, "Idempotency-Key": "retry-me"},
    )
    assert_error(bad_body, 400, "BadDataError")
    assert await deliveries(db) == []
    stored = await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": "retry-me"})
    assert stored.status_code == 200
    assert "Idempotent-Replayed" not in stored.headers


async def test_an_empty_delivery_id_is_no_delivery_id(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    for _ in range(2):
        response = await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": " "})
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers
    assert len(await signal_rows(db)) == 2


@pytest.mark.parametrize("key", ["x" * 256, "tab\there", "caf\u00e9", "nul\x01"])
async def test_an_unusable_delivery_id_is_400_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, key: str
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    response = await client.post(
        call_path(endpoint["name"]),
        json={},
        headers=[("Authorization", secret), ("Idempotency-Key", key.encode("latin-1"))],  # type: ignore[list-item]
    )
    error = assert_error(response, 400, "BadDataError")
    assert "Idempotency-Key" in error["message"] or "idempotency-key" in error["message"]
    assert await signal_rows(db) == []


async def test_a_claim_past_its_window_is_taken_over(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    first = await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": "old"})
    async with db.transaction() as conn:  # the first delivery happened 25 hours ago
        await conn.execute(t.signal_delivery.update().values(created_at=utcnow() - timedelta(hours=25)))
    again = await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": "old"})
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["signals"][0]["id"] != first.json()["signals"][0]["id"]
    (claim,) = await deliveries(db)
    assert claim.signal_id == again.json()["signals"][0]["id"]
    replay = await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": "old"})
    assert replay.json() == again.json()


async def test_retention_prunes_expired_claims_only(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    for key in ("a", "b", "c"):
        await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": key})
    async with db.transaction() as conn:
        await conn.execute(
            t.signal_delivery.update()
            .where(t.signal_delivery.c.delivery_key != "c")
            .values(created_at=utcnow() - timedelta(hours=30))
        )
    assert await prune_deliveries(db, claimed_before=utcnow() - timedelta(hours=24), batch_size=1) == 2
    assert [row.delivery_key for row in await deliveries(db)] == ["c"]


async def test_window_zero_ignores_delivery_ids(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_delivery_window_seconds=0) as (app, admin):
        endpoint, secret = await endpoint_with_token(admin)
        async with caller(app) as sender:
            for _ in range(2):
                response = await post(sender, endpoint["name"], secret, {}, **{"Idempotency-Key": "same"})
                assert "Idempotent-Replayed" not in response.headers
    assert len(await signal_rows(db)) == 2
    assert await deliveries(db) == []


def test_the_window_may_not_outlast_signal_retention() -> None:
    with pytest.raises(ValidationError, match="SWITCHMAN_SIGNAL_DELIVERY_WINDOW_SECONDS"):
        make_settings("sqlite:///unused.db", signal_retention_days=1, signal_delivery_window_seconds=86_401)
    assert make_settings("sqlite:///unused.db", signal_retention_days=0, signal_delivery_window_seconds=10**7)


async def test_a_repeat_whose_first_signal_is_gone_is_409_not_a_second_signal(
    client: httpx.AsyncClient, db: Database
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": "gone"})
    async with db.transaction() as conn:  # a manual deletion: retention never prunes inside the window
        await conn.execute(t.signal.delete())
    repeat = await post(client, endpoint["name"], secret, {}, **{"Idempotency-Key": "gone"})
    assert "no longer exists" in assert_error(repeat, 409, "ConflictError")["message"]
    assert await signal_rows(db) == []


SENDERS = REPO_ROOT / "tests" / "fixtures" / "senders"


def sender_fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SENDERS / name).read_text())
    return loaded


@pytest.mark.parametrize(
    ("fmt", "fixture", "changed"),
    [
        ("pagerduty", "pagerduty-incident-triggered.json", ("event", "id")),
        ("datadog", "datadog-triggered.json", ("id",)),
        ("cloudwatch-sns", "sns-cloudwatch-alarm.json", ("MessageId",)),
    ],
)
async def test_a_sender_formats_body_delivery_id_makes_its_retries_one_signal(
    client: httpx.AsyncClient, db: Database, fmt: str, fixture: str, changed: tuple[str, ...]
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    await client.put(f"/api/admin/signal-endpoints/{endpoint['id']}/format", json={"format": fmt})
    body = sender_fixture(fixture)
    first = await post(client, endpoint["name"], secret, body)
    retry = await post(client, endpoint["name"], secret, body)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    # Another delivery (another id, same alert) is a new signal.
    holder = body
    for step in changed[:-1]:
        holder = holder[step]
    holder[changed[-1]] = "another-delivery-7"
    other = await post(client, endpoint["name"], secret, body)
    assert "Idempotent-Replayed" not in other.headers
    # An explicit Idempotency-Key still wins over the body's id.
    keyed = await post(client, endpoint["name"], secret, body, **{"Idempotency-Key": "explicit-1"})
    assert "Idempotent-Replayed" not in keyed.headers
    assert len(await signal_rows(db)) == 3


async def test_sentrys_request_id_header_is_a_delivery_id_for_sentry_endpoints_only(
    client: httpx.AsyncClient, db: Database
) -> None:
    sentry, sentry_secret = await endpoint_with_token(client)
    await client.put(f"/api/admin/signal-endpoints/{sentry['id']}/format", json={"format": "sentry"})
    plain, plain_secret = await endpoint_with_token(client)
    body = sender_fixture("sentry-issue-created.json")
    request_id = {"Request-ID": "9f1c2a0e-5f43-4a7b-b7b1-0c6d2c1e8a11"}
    first = await post(client, sentry["name"], sentry_secret, body, **request_id)
    retry = await post(client, sentry["name"], sentry_secret, body, **request_id)
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    for _ in range(2):  # an endpoint without the sentry format ignores the header
        assert (
            "Idempotent-Replayed"
            not in (await post(client, plain["name"], plain_secret, body, **request_id)).headers
        )
    assert len(await signal_rows(db)) == 3


async def test_formats_without_a_delivery_id_store_each_repeat(
    client: httpx.AsyncClient, db: Database
) -> None:
    # Alertmanager re-sends a group on purpose (repeat_interval): each one is a signal.
    endpoint, secret = await endpoint_with_token(client)
    await client.put(f"/api/admin/signal-endpoints/{endpoint['id']}/format", json={"format": "alertmanager"})
    body = sender_fixture("alertmanager-firing.json")
    for _ in range(2):
        assert "Idempotent-Replayed" not in (await post(client, endpoint["name"], secret, body)).headers
    assert len(await signal_rows(db)) == 2
