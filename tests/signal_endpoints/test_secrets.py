"""Credentials stay out of storage and logs: hashes only, no Authorization value in any payload."""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from tests.factories import all_stored_text, make_endpoint, make_endpoint_token


async def test_no_plaintext_token_anywhere_and_no_authorization_in_payloads(
    client: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = await make_endpoint(client)
    tokens = [await make_endpoint_token(client, endpoint["id"], f"t{n}") for n in range(3)]
    secrets = [token["token"] for token in tokens]
    path = f"/api/signal-endpoint/{endpoint['name']}"
    for secret in secrets:
        for header in (secret, f"Bearer {secret}"):
            response = await client.post(
                path, json={"alert": "firing"}, headers={"Authorization": header, "X-Custom": "visible"}
            )
            assert response.status_code == 200, response.text
    # refused calls must not leave the presented value behind either
    await client.post(path, json={}, headers={"Authorization": "signal_wrong-but-secret-looking"})
    await client.post(path, content=b"{", headers={"Authorization": secrets[0]})

    dump = await all_stored_text(db)
    assert "alert" in dump  # the dump does contain the payloads
    for secret in [*secrets, "signal_wrong-but-secret-looking"]:
        assert secret not in dump
        assert secret not in caplog.text
    async with db.read() as conn:
        payloads = (await conn.execute(sa.select(t.signal.c.payload))).scalars().all()
    assert len(payloads) == 6
    assert all(payload == '{"alert":"firing"}' for payload in payloads)
    for forbidden in ("Bearer", "authorization", "Authorization", "X-Custom", "visible"):
        assert all(forbidden not in payload for payload in payloads)
