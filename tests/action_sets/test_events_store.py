"""The events store the worker uses: start_event, save_event, find_event, load_matching_candidates."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from switchman.action_sets import event_store
from switchman.action_sets.event_docs import load_doc
from switchman.action_sets.repository import get_action_set_by_id, load_matching_candidates
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.engine.executor import ActionState, ActionStep, EventState
from switchman.timeutil import utcnow
from tests.action_sets.founding import assert_valid
from tests.action_sets.helpers import (
    PROJECT,
    World,
    create_set,
    insert_signal,
    insert_signal_endpoint,
    started_event,
)

BASE = f"/api/admin/projects/{PROJECT}/actions"
PARAMS = {"project": PROJECT, "environment": "production", "featureName": "f"}


async def _three_action_set(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    return await create_set(
        client,
        world.body(
            actions=[
                {"action": "TOGGLE_FEATURE_OFF", "sortOrder": 2, "executionParams": PARAMS},
                {"action": "TOGGLE_FEATURE_ON", "sortOrder": 1, "executionParams": PARAMS},
                {"action": "TOGGLE_FEATURE_OFF", "sortOrder": 3, "executionParams": PARAMS},
            ]
        ),
    )


async def _docs(db: Database, action_set_id: int) -> list[Any]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(t.action_set_event)
            .where(t.action_set_event.c.action_set_id == action_set_id)
            .order_by(t.action_set_event.c.seq)
        )
        return list(rows)


async def _last_seq(db: Database, action_set_id: int) -> int:
    async with db.read() as conn:
        value = await conn.scalar(
            sa.select(t.action_set.c.last_event_seq).where(t.action_set.c.id == action_set_id)
        )
    return int(value)


async def test_start_event_records_started_with_not_started_actions(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await _three_action_set(client, world)
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={"alert": {"status": "firing"}})
    now = utcnow()
    async with db.transaction() as conn:
        record = await get_action_set_by_id(conn, created["id"])
        assert record is not None
        event = await event_store.start_event(conn, action_set=record, signal=signal, now=now)
    assert event is not None
    assert (event.seq, event.state, event.signal_id, event.action_set_id) == (
        1,
        "started",
        signal["id"],
        created["id"],
    )
    [row] = await _docs(db, created["id"])
    assert (row.id, row.state, row.seq) == (event.id, "started", 1)
    doc = load_doc(row.doc)
    assert_valid({"actionSetEvents": [doc]})
    assert doc["id"] == event.id and doc["state"] == "started"
    assert doc["signal"] == signal
    assert doc["actionSet"]["name"] == created["name"]
    assert [a["sortOrder"] for a in doc["actionSet"]["actions"]] == [1, 2, 3]
    assert all(a["state"] == "not started" and a["details"] is None for a in doc["actionSet"]["actions"])
    # the snapshot is the action set as the API shows it, decorated
    undecorated = [
        {k: v for k, v in a.items() if k not in ("state", "details")} for a in doc["actionSet"]["actions"]
    ]
    assert {**doc["actionSet"], "actions": undecorated} == created


async def test_second_start_for_the_same_signal_returns_none_and_leaves_no_gap(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    first = await insert_signal(db, source_id=world.endpoint_id, payload={})
    second = await insert_signal(db, source_id=world.endpoint_id, payload={})
    async with db.transaction() as conn:
        record = await get_action_set_by_id(conn, created["id"])
        assert record is not None
        assert await event_store.start_event(conn, action_set=record, signal=first, now=utcnow()) is not None
    async with db.transaction() as conn:
        assert await event_store.start_event(conn, action_set=record, signal=first, now=utcnow()) is None
    assert await _last_seq(db, created["id"]) == 1
    async with db.transaction() as conn:
        again = await event_store.start_event(conn, action_set=record, signal=second, now=utcnow())
    assert again is not None and again.seq == 2
    assert [row.seq for row in await _docs(db, created["id"])] == [1, 2]


async def test_start_event_for_a_deleted_set_returns_none(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={})
    async with db.read() as conn:
        record = await get_action_set_by_id(conn, created["id"])
    assert record is not None
    await client.delete(f"{BASE}/{created['id']}")
    async with db.transaction() as conn:
        assert await event_store.start_event(conn, action_set=record, signal=signal, now=utcnow()) is None
    assert await _docs(db, created["id"]) == []


async def test_save_event_rewrites_state_and_action_states(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await _three_action_set(client, world)
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={"n": 1})
    async with db.transaction() as conn:
        record, event = await started_event(conn, created["id"], signal)
        steps = record.steps()
        steps[0].state = ActionState.SUCCESS
        steps[1].state = ActionState.FAILED
        steps[1].details = "You don't have the required permissions"
        await event_store.save_event(conn, event, state=EventState.FAILED, steps=steps)
    [row] = await _docs(db, created["id"])
    assert row.state == "failed"
    assert row.updated_at >= row.created_at
    doc = load_doc(row.doc)
    assert_valid({"actionSetEvents": [doc]})
    assert doc["state"] == "failed"
    assert [(a["state"], a["details"]) for a in doc["actionSet"]["actions"]] == [
        ("success", None),
        ("failed", "You don't have the required permissions"),
        ("not started", None),
    ]


async def test_save_event_rejects_steps_of_another_action_set(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={})
    async with db.transaction() as conn:
        _record, event = await started_event(conn, created["id"], signal)
        stranger = ActionStep(id=987654, action="TOGGLE_FEATURE_ON", sort_order=1, execution_params={})
        with pytest.raises(ValueError, match="987654"):
            await event_store.save_event(conn, event, state="success", steps=[stranger])
        with pytest.raises(ValueError, match="finished"):
            await event_store.save_event(conn, event, state="finished", steps=[])


async def test_find_event_resumes_with_recorded_states(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await _three_action_set(client, world)
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={})
    async with db.transaction() as conn:
        assert await event_store.find_event(conn, signal_id=signal["id"], action_set_id=created["id"]) is None
        record, event = await started_event(conn, created["id"], signal)
        steps = record.steps()
        steps[0].state = ActionState.SUCCESS
        steps[1].state = ActionState.STARTED
        await event_store.save_event(conn, event, state="started", steps=steps)
    # the set is edited afterwards: the event keeps its own snapshot
    await client.put(f"{BASE}/{created['id']}", json=world.body(name="edited"))
    async with db.read() as conn:
        found = await event_store.find_event(conn, signal_id=signal["id"], action_set_id=created["id"])
    assert found is not None
    assert (found.id, found.seq, found.state, found.project, found.actor_id) == (
        event.id,
        1,
        "started",
        PROJECT,
        world.actor_id,
    )
    assert found.action_set["name"] == created["name"]
    assert found.signal == signal
    resumed = found.steps()
    assert [(s.id, s.state) for s in resumed] == [
        (created["actions"][0]["id"], ActionState.SUCCESS),
        (created["actions"][1]["id"], ActionState.STARTED),
        (created["actions"][2]["id"], ActionState.NOT_STARTED),
    ]
    assert resumed[0].execution_params == PARAMS
    # finishing the resumed run rewrites the same document
    for step in resumed:
        step.state = ActionState.SUCCESS
    async with db.transaction() as conn:
        await event_store.save_event(conn, found, state="success", steps=resumed)
    [row] = await _docs(db, created["id"])
    doc = load_doc(row.doc)
    assert doc["state"] == "success" and doc["actionSet"]["name"] == created["name"]
    assert all(a["state"] == "success" for a in doc["actionSet"]["actions"])


async def test_load_matching_candidates_enabled_sets_of_the_source_ascending(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    first = await _three_action_set(client, world)
    disabled = await create_set(client, world.body(enabled=False))
    other_endpoint = await insert_signal_endpoint(db)
    body = world.body()
    body["match"]["sourceId"] = other_endpoint
    elsewhere = await create_set(client, body)
    last = await create_set(client, world.body())
    async with db.read() as conn:
        found = await load_matching_candidates(conn, source="signal-endpoint", source_id=world.endpoint_id)
        other = await load_matching_candidates(conn, source="signal-endpoint", source_id=other_endpoint)
        none = await load_matching_candidates(conn, source="elsewhere", source_id=world.endpoint_id)
    assert [r.id for r in found] == [first["id"], last["id"]]
    assert disabled["id"] not in [r.id for r in found]
    assert [r.id for r in other] == [elsewhere["id"]]
    assert none == []
    record = found[0]
    assert record.wire == first
    assert record.actor_id == world.actor_id and record.project == PROJECT
    assert dict(record.filters) == first["match"]["payload"]
    assert [s.sort_order for s in record.steps()] == [1, 2, 3]
    assert all(s.state == ActionState.NOT_STARTED for s in record.steps())


async def test_concurrent_starts_record_one_event_per_signal_and_dense_seqs(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    signals = [await insert_signal(db, source_id=world.endpoint_id, payload={"i": i}) for i in range(6)]
    async with db.read() as conn:
        record = await get_action_set_by_id(conn, created["id"])
    assert record is not None

    async def start(signal: dict[str, Any]) -> bool:
        async with db.transaction() as conn:
            return (
                await event_store.start_event(conn, action_set=record, signal=signal, now=utcnow())
                is not None
            )

    # each signal is started by three concurrent "workers"
    results = await asyncio.gather(*(start(signal) for signal in signals for _ in range(3)))
    assert sum(results) == len(signals)
    rows = await _docs(db, created["id"])
    assert sorted(row.seq for row in rows) == list(range(1, len(signals) + 1))
    assert sorted(row.signal_id for row in rows) == sorted(s["id"] for s in signals)
    assert await _last_seq(db, created["id"]) == len(signals)
