"""`GET /api/admin/projects/{projectId}/actions/{id}/events` (the founding document)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from switchman.action_sets import event_store
from switchman.action_sets.page_cache import SettledPageCache
from switchman.db import tables as t
from switchman.db.engine import Database
from tests.action_sets.helpers import (
    PROJECT,
    World,
    create_set,
    insert_project,
    insert_signal,
    record_event,
    started_event,
)
from tests.conftest import assert_error
from tests.factories import list_events

BASE = f"/api/admin/projects/{PROJECT}/actions"


async def _set_with_events(
    client: httpx.AsyncClient,
    world: World,
    db: Database,
    count: int,
    outcomes: tuple[str, ...] = ("success",),
) -> tuple[dict[str, Any], list[int]]:
    created = await create_set(client, world.body())
    ids = []
    for index in range(count):
        signal = await insert_signal(
            db, source_id=world.endpoint_id, payload={"index": index, "nested": {"a": [1]}}
        )
        event_id = await record_event(
            db, action_set_id=created["id"], signal=signal, outcome=outcomes[index % len(outcomes)]
        )
        assert event_id is not None
        ids.append(event_id)
    return created, ids


async def test_events_are_listed_newest_first_and_match_the_founding_schema(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, ids = await _set_with_events(client, world, db, 5, outcomes=("success", "failed", "started"))
    listed = await list_events(client, created["id"], project=PROJECT)
    assert [event["id"] for event in listed] == list(reversed(ids))
    assert all(event["actionSetId"] == created["id"] for event in listed)
    by_state = {event["state"] for event in listed}
    assert by_state == {"success", "failed", "started"}
    failed = next(event for event in listed if event["state"] == "failed")
    [action] = failed["actionSet"]["actions"]
    assert (action["state"], action["details"]) == ("failed", "Feature checkout-v2 does not exist")
    assert failed["signal"]["payload"]["nested"] == {"a": [1]}
    assert failed["signal"]["id"] == failed["signalId"]


async def test_a_set_without_events_lists_nothing(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body())
    response = await client.get(f"{BASE}/{created['id']}/events")
    assert response.status_code == 200
    assert response.json() == {"actionSetEvents": []}


async def test_limit_and_offset_give_disjoint_pages(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, ids = await _set_with_events(client, world, db, 11)
    pages = [
        await list_events(client, created["id"], project=PROJECT, limit=3, offset=offset)
        for offset in range(0, 15, 3)
    ]
    assert [len(page) for page in pages] == [3, 3, 3, 2, 0]
    flattened = [event["id"] for page in pages for event in page]
    assert flattened == list(reversed(ids))
    assert [e["id"] for e in await list_events(client, created["id"], project=PROJECT, limit=1)] == [ids[-1]]
    assert [
        e["id"] for e in await list_events(client, created["id"], project=PROJECT, limit=2, offset=10)
    ] == [ids[0]]


PAGING_CASES: list[tuple[str, str, int, int | None]] = [
    # (limit, offset, expected count, index in creation order of the first listed event)
    ("abc", "0", 50, 59),  # non-numeric limit → 50
    ("0", "0", 50, 59),  # zero → 50
    ("-4", "0", 50, 59),  # negative → 50
    ("1001", "0", 50, 59),  # above the maximum → 50 (not clamped)
    ("99999999999999999999999", "0", 50, 59),
    ("1000", "0", 60, 59),
    ("5", "-3", 5, 59),  # negative offset → 0
    ("5", "x", 5, 59),  # non-numeric offset → 0
    ("5", "1.5", 5, 59),
    ("5", "99999999999999999999999", 5, 59),  # unparsable as a bounded integer → 0 (shared helper)
    ("5", "58", 2, 1),
    ("5", "60", 0, None),  # past the end → empty
    ("5", "999999999", 0, None),
    ("", "", 50, 59),
    (" 7 ", " 2 ", 7, 57),
]


async def test_invalid_limit_and_offset_fall_back_never_an_error(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, ids = await _set_with_events(client, world, db, 60)
    for limit, offset, expected_count, expected_first_index in PAGING_CASES:
        listed = await list_events(client, created["id"], project=PROJECT, limit=limit, offset=offset)
        assert len(listed) == expected_count, (limit, offset)
        if expected_first_index is not None:
            assert listed[0]["id"] == ids[expected_first_index], (limit, offset)
    # repeated parameters, as some clients send them, are not an error either
    response = await client.get(f"{BASE}/{created['id']}/events?limit=2&limit=x&offset=1&offset=2")
    assert response.status_code == 200


async def test_before_cursor_pages_below_an_event(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, ids = await _set_with_events(client, world, db, 6)
    below = await list_events(client, created["id"], project=PROJECT, before=ids[3], limit=2)
    assert [e["id"] for e in below] == [ids[2], ids[1]]
    assert [
        e["id"] for e in await list_events(client, created["id"], project=PROJECT, before=ids[3], offset=2)
    ] == [ids[0]]
    assert await list_events(client, created["id"], project=PROJECT, before=999_999) == []
    # an invalid cursor is ignored, like invalid paging values
    assert len(await list_events(client, created["id"], project=PROJECT, before="nope")) == 6


async def test_deleted_set_answers_404_while_its_events_stay_stored(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, _ = await _set_with_events(client, world, db, 2)
    assert (await client.delete(f"{BASE}/{created['id']}")).status_code == 200
    assert_error(await client.get(f"{BASE}/{created['id']}/events"), 404, "NotFoundError")
    async with db.read() as conn:
        kept = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(t.action_set_event)
            .where(t.action_set_event.c.action_set_id == created["id"])
        )
    assert kept == 2
    # a set created afterwards never shows (or collides with) the deleted set's events
    fresh = await create_set(client, world.body())
    assert fresh["id"] != created["id"]
    assert await list_events(client, fresh["id"], project=PROJECT) == []
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={})
    assert await record_event(db, action_set_id=fresh["id"], signal=signal) is not None
    assert len(await list_events(client, fresh["id"], project=PROJECT)) == 1


async def test_set_of_another_project_and_unknown_project_are_404(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, _ = await _set_with_events(client, world, db, 1)
    other = await insert_project(db)
    body = assert_error(
        await client.get(f"/api/admin/projects/{other}/actions/{created['id']}/events"), 404, "NotFoundError"
    )
    assert "action set" in body["message"]
    body = assert_error(
        await client.get(f"/api/admin/projects/nope/actions/{created['id']}/events"), 404, "NotFoundError"
    )
    assert "project" in body["message"]


async def test_events_of_two_sets_do_not_mix(client: httpx.AsyncClient, world: World, db: Database) -> None:
    first, first_ids = await _set_with_events(client, world, db, 3)
    second, second_ids = await _set_with_events(client, world, db, 2)
    assert [e["id"] for e in await list_events(client, first["id"], project=PROJECT)] == list(
        reversed(first_ids)
    )
    assert [e["id"] for e in await list_events(client, second["id"], project=PROJECT)] == list(
        reversed(second_ids)
    )


async def test_listing_needs_admin(
    anon: httpx.AsyncClient, editor: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    created = await create_set(client, world.body())
    assert_error(await anon.get(f"{BASE}/{created['id']}/events"), 401)
    assert_error(await editor.get(f"{BASE}/{created['id']}/events"), 403, "PermissionError")


async def test_a_running_event_is_listed_with_its_final_state_once_it_ends(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    """The settled-page cache never keeps a page holding a `started` event (ADR 0011)."""
    from switchman.engine.executor import ActionState

    created, _ = await _set_with_events(client, world, db, 3)
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={"index": 99})
    async with db.transaction() as conn:
        record, event = await started_event(conn, created["id"], signal)
    for _ in range(2):  # twice: a second read would be a cache hit if the page had been cached
        assert [e["state"] for e in await list_events(client, created["id"], project=PROJECT)] == [
            "started",
            *["success"] * 3,
        ]
    steps = record.steps()
    for step in steps:
        step.state = ActionState.SUCCESS
    async with db.transaction() as conn:
        await event_store.save_event(conn, event, state="success", steps=steps)
    listed = await list_events(client, created["id"], project=PROJECT)
    assert [e["state"] for e in listed] == ["success"] * 4
    assert listed[0]["id"] == event.id


async def test_cached_pages_follow_new_events_at_every_offset(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created, ids = await _set_with_events(client, world, db, 6)
    for _ in range(2):
        assert [
            e["id"] for e in await list_events(client, created["id"], project=PROJECT, limit=2, offset=1)
        ] == ids[4:2:-1]
    signal = await insert_signal(db, source_id=world.endpoint_id, payload={"index": 7})
    newest = await record_event(db, action_set_id=created["id"], signal=signal)
    assert [
        e["id"] for e in await list_events(client, created["id"], project=PROJECT, limit=2, offset=1)
    ] == ids[5:3:-1]
    assert [e["id"] for e in await list_events(client, created["id"], project=PROJECT, limit=2)] == [
        newest,
        ids[5],
    ]
    assert await list_events(client, created["id"], project=PROJECT, offset=7) == []


def test_settled_page_cache_is_bounded_by_bytes() -> None:
    cache = SettledPageCache(max_bytes=400)
    cache.put(("p", 1, 50, 0), 7, b"a" * 90)
    assert cache.get(("p", 1, 50, 0), 7) == b"a" * 90
    assert cache.get(("p", 1, 50, 0), 8) is None  # built for another last_event_seq
    cache.put(("p", 1, 50, 0), 8, b"b" * 90)  # replaces the older page of the same key
    assert len(cache) == 1 and cache.size_bytes == 90
    for offset in range(1, 5):
        cache.put(("p", 1, 50, offset), 8, b"c" * 90)
    assert cache.size_bytes <= 400 and cache.get(("p", 1, 50, 0), 8) is None  # oldest dropped
    cache.put(("p", 2, 50, 0), 1, b"d" * 101)  # more than a quarter of the budget: not kept
    assert cache.get(("p", 2, 50, 0), 1) is None


async def test_a_cached_listing_on_a_connection_the_server_dropped_fails_once_then_the_pool_recovers(
    world: World, db: Database, client: httpx.AsyncClient, backend: str
) -> None:
    """On PostgreSQL a cached page's one read goes through asyncpg, past SQLAlchemy's disconnect handling;
    a pooled connection the server dropped must still cost one failed read, not stay in the pool."""
    if backend != "postgresql":
        pytest.skip("the listing reads through the driver on PostgreSQL only")
    created, ids = await _set_with_events(client, world, db, 2)
    cache = SettledPageCache(max_bytes=1 << 20)

    async def listed() -> list[int]:
        async with db.read() as conn:
            body = await event_store.list_event_docs(
                conn, project=PROJECT, action_set_id=created["id"], limit=10, offset=0, cache=cache
            )
        return [event["id"] for event in orjson.loads(body)["actionSetEvents"]]

    assert await listed() == ids[::-1]
    async with db.read() as conn:
        pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
    async with client_db(db) as other, other.read() as conn:
        assert await conn.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(await listed() == ids[::-1])
        except Exception:  # the dropped connection's read (asyncpg's ConnectionDoesNotExistError)
            outcomes.append(False)
    assert outcomes == [False, True, True]


@contextlib.asynccontextmanager
async def client_db(db: Database) -> AsyncIterator[Database]:
    """A second handle on the same database (its own pool)."""
    other = Database(db.url)
    try:
        yield other
    finally:
        await other.dispose()
