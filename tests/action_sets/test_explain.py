"""`POST …/actions/{id}/explain`: a dry run of the filters, with the reason of each verdict."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from tests.action_sets.helpers import PROJECT, World, create_set, insert_signal
from tests.conftest import assert_error

BASE = f"/api/admin/projects/{PROJECT}/actions"


async def test_explain_a_matching_payload(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body())
    payload = {"alert": {"status": "firing", "errorRate": 7.5}}
    response = await client.post(f"{BASE}/{created['id']}/explain", json={"payload": payload})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["matched"] is True and result["enabled"] is True
    assert [(f["parameter"], f["operator"], f["passed"], f["seen"]) for f in result["filters"]] == [
        ("alert.errorRate", "NUM_GT", True, "7.5"),
        ("alert.status", "IN", True, "firing"),
    ]
    assert all(isinstance(f["reason"], str) and f["reason"] for f in result["filters"])


async def test_explain_shows_each_failing_filter(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body(enabled=False))
    response = await client.post(
        f"{BASE}/{created['id']}/explain", json={"payload": {"alert": {"status": "ok"}}}
    )
    result = response.json()
    assert result["matched"] is False and result["enabled"] is False
    verdicts = {f["parameter"]: (f["passed"], f["seen"]) for f in result["filters"]}
    assert verdicts == {"alert.errorRate": (False, None), "alert.status": (False, "ok")}


async def test_explain_a_stored_signal_records_nothing(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    signal = await insert_signal(
        db, source_id=world.endpoint_id, payload={"alert": {"status": "firing", "errorRate": "9"}}
    )
    response = await client.post(f"{BASE}/{created['id']}/explain", json={"signalId": signal["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["matched"] is True
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.action_set_event)) == 0


async def test_explain_needs_exactly_one_input_and_a_known_signal(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await create_set(client, world.body())
    url = f"{BASE}/{created['id']}/explain"
    assert_error(await client.post(url, json={}), 400, "BadDataError")
    assert_error(await client.post(url, json={"payload": {}, "signalId": 1}), 400, "BadDataError")
    assert_error(await client.post(url, json={"payload": [1]}), 400, "BadDataError")
    assert_error(await client.post(url, json={"signalId": 424242}), 404, "NotFoundError")
    assert_error(await client.post(url, json={"payload": {}, "extra": 1}), 400, "BadDataError")
