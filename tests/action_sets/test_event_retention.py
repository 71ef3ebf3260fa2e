"""Action set event retention (ADR 0032): old events go with their flag changes and undo, in bounded
batches; recent events, runs in progress and policies' open runs stay; the default keeps everything; a
pruned event is never answered from the events-listing page cache."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from switchman.action_sets import event_store
from switchman.action_sets.page_cache import SettledPageCache
from switchman.config import Settings
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.signal_endpoints.retention import prune_events, retention_pass, run_retention
from switchman.timeutil import utcnow
from tests.action_sets.helpers import PROJECT, World, create_set, insert_signal, record_event
from tests.conftest import make_settings
from tests.factories import list_events, running_app


async def _events(db: Database, client: httpx.AsyncClient, world: World, count: int, **kw: Any) -> list[int]:
    """`count` finished runs of a new action set, oldest first."""
    created = await create_set(client, world.body())
    ids = []
    for index in range(count):
        signal = await insert_signal(db, source_id=world.endpoint_id, payload={"index": index})
        event_id = await record_event(db, action_set_id=created["id"], signal=signal, **kw)
        assert event_id is not None
        ids.append(event_id)
    return ids


async def _age(db: Database, event_ids: list[int], created_at: datetime) -> None:
    async with db.transaction() as conn:
        ev = t.action_set_event
        await conn.execute(ev.update().where(ev.c.id.in_(event_ids)).values(created_at=created_at))


async def _ids(db: Database, table: sa.Table, column: str) -> list[int]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(table.c[column]).order_by(table.c[column]))
        return [int(value) for (value,) in rows]


async def _note_change_and_undo(db: Database, event_id: int, action_set_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            t.action_set_event_change.insert().values(
                event_id=event_id,
                feature_name="checkout-v2",
                environment="production",
                enabled_before=True,
                enabled_after=False,
                changed_at=utcnow(),
                action_set_id=action_set_id,
                project=PROJECT,
            )
        )
        await conn.execute(
            t.action_set_event_undo.insert().values(
                event_id=event_id, undone_by="admin", result="{}", created_at=utcnow()
            )
        )


async def _set_of(db: Database, event_id: int) -> int:
    async with db.read() as conn:
        ev = t.action_set_event
        return int(
            (await conn.execute(sa.select(ev.c.action_set_id).where(ev.c.id == event_id))).scalar_one()
        )


async def test_old_events_go_with_their_changes_and_undo_recent_ones_stay(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    ids = await _events(db, client, world, 7)
    old, recent = ids[:5], ids[5:]
    await _age(db, old, utcnow() - timedelta(days=40))
    set_id = await _set_of(db, ids[0])
    for event_id in (old[0], recent[0]):
        await _note_change_and_undo(db, event_id, set_id)

    # batches of 2: three transactions for five events, and every one of them goes
    assert await prune_events(db, older_than=utcnow() - timedelta(days=30), batch_size=2) == 5
    assert await _ids(db, t.action_set_event, "id") == recent
    assert await _ids(db, t.action_set_event_change, "event_id") == [recent[0]]
    assert await _ids(db, t.action_set_event_undo, "event_id") == [recent[0]]
    # the listing shows what is left, newest first; the k-th newest is still the k-th newest
    assert [e["id"] for e in await list_events(client, set_id, project=PROJECT)] == recent[::-1]
    assert [e["id"] for e in await list_events(client, set_id, project=PROJECT, offset=1)] == [recent[0]]
    assert await list_events(client, set_id, project=PROJECT, offset=2) == []
    # a pruned event is unknown to undo, like any other unknown event
    response = await client.post(f"/api/admin/projects/{PROJECT}/actions/{set_id}/events/{old[1]}/undo")
    assert response.status_code == 404, response.text
    assert await prune_events(db, older_than=utcnow() - timedelta(days=30)) == 0


async def test_runs_in_progress_and_open_runs_stay_until_they_end(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    [running] = await _events(db, client, world, 1, outcome="started")
    [open_run, closed] = await _events(db, client, world, 2)
    await _age(db, [running, open_run, closed], utcnow() - timedelta(days=40))
    open_set = await _set_of(db, open_run)
    await _note_change_and_undo(db, open_run, open_set)
    async with db.transaction() as conn:
        await conn.execute(
            t.action_set_policy_state.insert().values(
                action_set_id=open_set,
                alert_id="",
                matches="[]",
                open_event_id=open_run,
                updated_at=utcnow(),
            )
        )
    cutoff = utcnow() - timedelta(days=30)
    assert await prune_events(db, older_than=cutoff) == 1
    assert await _ids(db, t.action_set_event, "id") == [running, open_run]
    assert await _ids(db, t.action_set_event_change, "event_id") == [open_run]  # what the policy puts back

    # the run ends and the policy puts the open run back: the next pass takes both
    async with db.transaction() as conn:
        ev, state = t.action_set_event, t.action_set_policy_state
        await conn.execute(ev.update().where(ev.c.id == running).values(state="success"))
        await conn.execute(state.update().values(open_event_id=None))
    assert await prune_events(db, older_than=cutoff) == 2
    assert await _ids(db, t.action_set_event, "id") == []
    assert await _ids(db, t.action_set_event_change, "event_id") == []


async def test_by_default_every_event_is_kept(client: httpx.AsyncClient, world: World, db: Database) -> None:
    ids = await _events(db, client, world, 3)
    await _age(db, ids, utcnow() - timedelta(days=3650))
    default = Settings(database_url="sqlite:///unused.db").action_set_event_retention_days
    assert default == 0
    await retention_pass(db, retention_days=30, event_retention_days=default)
    assert await _ids(db, t.action_set_event, "id") == ids


async def test_a_pass_prunes_events_even_when_signals_are_kept(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    ids = await _events(db, client, world, 3)
    await _age(db, ids[:2], utcnow() - timedelta(days=8))
    task = asyncio.create_task(
        run_retention(db, retention_days=0, event_retention_days=7, first_delay=0, interval=3600)
    )
    try:
        for _ in range(200):  # bounded wait for the first pass; no timing is asserted
            if await _ids(db, t.action_set_event, "id") == ids[2:]:
                break
            await asyncio.sleep(0.05)
        assert await _ids(db, t.action_set_event, "id") == ids[2:]
        assert not task.done()
    finally:
        task.cancel()


async def _listing(db: Database, set_id: int, cache: SettledPageCache) -> list[int]:
    async with db.read() as conn:
        body = await event_store.list_event_docs(
            conn, project=PROJECT, action_set_id=set_id, limit=50, offset=0, cache=cache
        )
    return [event["id"] for event in orjson.loads(body)["actionSetEvents"]]


async def test_a_pruned_event_is_never_served_from_the_page_cache(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    ids = await _events(db, client, world, 3)
    set_id = await _set_of(db, ids[0])
    now = utcnow()
    await _age(db, ids[:2], now - timedelta(days=29))  # inside a 30-day retention, by a day
    clock = [now]
    retained = SettledPageCache(retention=timedelta(days=30), clock=lambda: clock[0])
    unaware = SettledPageCache()  # the same cache without retention: what goes wrong without the horizon
    for cache in (retained, unaware):
        assert await _listing(db, set_id, cache) == ids[::-1]
        assert len(cache) == 1  # a settled page, cached

    clock[0] = now + timedelta(days=2)  # two days later the two old events are past the retention…
    assert await prune_events(db, older_than=clock[0] - timedelta(days=30)) == 2  # …and pruned
    assert await _listing(db, set_id, unaware) == ids[::-1]  # stale: last_event_seq did not move
    assert await _listing(db, set_id, retained) == ids[2:]
    assert await _listing(db, set_id, retained) == ids[2:]  # the page left, young again, is cached anew


def test_the_cache_keeps_no_page_near_the_retention_cut_off() -> None:
    now = utcnow()
    cache = SettledPageCache(retention=timedelta(days=30), clock=lambda: now)
    cache.put(("p", 1, 50, 0), 3, b"young", oldest=now - timedelta(days=10))
    cache.put(("p", 1, 50, 1), 3, b"near", oldest=now - timedelta(days=30) + timedelta(minutes=30))
    cache.put(("p", 1, 50, 2), 3, b"unknown age")
    assert cache.get(("p", 1, 50, 0), 3) == b"young"
    assert cache.get(("p", 1, 50, 1), 3) is None
    assert cache.get(("p", 1, 50, 2), 3) is None


async def test_the_app_prunes_events_when_configured(db_url: str, db: Database) -> None:
    settings = make_settings(db_url, signal_retention_days=0, action_set_event_retention_days=7)
    async with running_app(settings) as (app, _client):
        runtime = app.state.runtime
        assert isinstance(runtime.retention, asyncio.Task) and not runtime.retention.done()
        assert runtime.event_page_cache.retention == timedelta(days=7)
    async with running_app(make_settings(db_url, signal_retention_days=0)) as (app, _client):
        assert app.state.runtime.retention is None
        assert app.state.runtime.event_page_cache.retention is None
