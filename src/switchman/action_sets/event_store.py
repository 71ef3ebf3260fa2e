"""The action set events store: recording runs (for the worker) and listing them (for the API).

Numbering: events of one action set carry a dense sequence `seq` = 1, 2, 3… taken from
`action_set.last_event_seq`, incremented in the transaction that inserts the event. No event is
ever deleted except by retention (`delete_events`), from the oldest end, so "offset k, newest first" is
the index range `seq <= last_event_seq - k` — O(limit) at any depth, no scan, no count (a pruned event
leaves its seq empty: the k-th newest event stays the k-th newest).

Documents: each row's `doc` holds the whole `actionSetEventSchema` object as compact JSON text,
rewritten on every state change (see `event_docs.py`); the listing concatenates them.

Every function takes the caller's connection and runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.action_sets import event_docs
from switchman.action_sets.page_cache import SettledPageCache
from switchman.action_sets.repository import ActionSetRecord, storable_text
from switchman.db import tables as t
from switchman.engine.executor import ActionState, ActionStep, EventState, order_steps
from switchman.errors import NotFoundError
from switchman.flags.projects import project_not_found, require_project
from switchman.timeutil import utcnow

EMPTY_LISTING = event_docs.join_docs(())


@dataclass(frozen=True)
class EventRecord:
    """A stored action set event and the snapshots its document is built from."""

    id: int
    action_set_id: int
    signal_id: int
    seq: int
    state: str
    created_at: datetime
    signal: Mapping[str, Any]  # `signalSchema` snapshot
    action_set: Mapping[str, Any]  # `actionsSchema` snapshot, actions undecorated
    project: str
    actor_id: int
    # The stored per-action states, in snapshot order (a resumed run continues from here).
    recorded_steps: tuple[tuple[int, str, str | None], ...] = ()
    # False for an event planned by `start_events`: its row is written by `finish_events`.
    stored: bool = True

    def steps(self) -> list[ActionStep]:
        """Fresh steps carrying the stored states and details, in run order."""
        recorded = {action_id: (state, details) for action_id, state, details in self.recorded_steps}
        steps = []
        for action in self.action_set["actions"]:
            state, details = recorded.get(action["id"], (ActionState.NOT_STARTED, None))
            steps.append(
                ActionStep(
                    id=action["id"],
                    action=action["action"],
                    sort_order=action["sortOrder"],
                    execution_params=dict(action.get("executionParams") or {}),
                    state=ActionState(state),
                    details=details,
                )
            )
        return order_steps(steps)


def _record_from_doc(row: Any) -> EventRecord:
    doc = event_docs.load_doc(row.doc)
    snapshot = event_docs.snapshot_of(doc)
    return EventRecord(
        id=row.id,
        action_set_id=row.action_set_id,
        signal_id=row.signal_id,
        seq=row.seq,
        state=row.state,
        created_at=row.created_at,
        signal=doc["signal"],
        action_set=snapshot,
        project=snapshot["project"],
        actor_id=snapshot["actorId"],
        recorded_steps=tuple(
            (action["id"], action["state"], action.get("details")) for action in doc["actionSet"]["actions"]
        ),
    )


async def start_event(
    conn: AsyncConnection,
    *,
    action_set: ActionSetRecord,
    signal: Mapping[str, Any],
    now: datetime,
    write_doc: bool = True,
) -> EventRecord | None:
    """Record that `action_set` starts running for `signal` (a `signalSchema` wire dict).

    Advancing `last_event_seq` (`UPDATE … RETURNING`) takes the action set's row lock, so every
    inserter for one set queues here; the insert then relies on the unique constraint
    (signal_id, action_set_id) with `ON CONFLICT DO NOTHING`. Returns None, having written nothing
    net, when the action set was deleted meanwhile or an event for (signal, action set) already
    exists — in that case the sequence is moved back under the same lock, so no sequence gap can be
    committed whatever the caller then does. Otherwise inserts the event in state `started` with the
    snapshots (every action `not started`, `details` null) and returns it. Two round trips in the
    common case. With `write_doc=False` the row's document is left empty: only for a caller that
    calls `save_event` in the same transaction (the empty document is never committed).
    """
    signal_id = int(signal["id"])
    seq = (
        await conn.execute(
            t.action_set.update()
            .where(t.action_set.c.id == action_set.id)
            .values(last_event_seq=t.action_set.c.last_event_seq + 1)
            .returning(t.action_set.c.last_event_seq)
        )
    ).scalar_one_or_none()
    if seq is None:
        return None
    state = str(EventState.STARTED)
    insert = (
        postgresql.insert(t.action_set_event)
        if conn.dialect.name == "postgresql"
        else sqlite.insert(t.action_set_event)
    )
    # The document names the event's id, known only after the insert: insert, then write it.
    event_id = (
        await conn.execute(
            insert.values(
                action_set_id=action_set.id,
                signal_id=signal_id,
                seq=seq,
                state=state,
                created_at=now,
                updated_at=now,
                doc="",
            )
            .on_conflict_do_nothing(index_elements=["signal_id", "action_set_id"])
            .returning(t.action_set_event.c.id)
        )
    ).scalar_one_or_none()
    if event_id is None:
        await conn.execute(
            t.action_set.update()
            .where(t.action_set.c.id == action_set.id)
            .values(last_event_seq=t.action_set.c.last_event_seq - 1)
        )
        return None
    event = EventRecord(
        id=int(event_id),
        action_set_id=action_set.id,
        signal_id=signal_id,
        seq=int(seq),
        state=state,
        created_at=now,
        signal=signal,
        action_set=action_set.wire,
        project=action_set.project,
        actor_id=action_set.actor_id,
    )
    if write_doc:
        await _write_doc(conn, event, state=state, steps=(), now=now)
    return event


# Built once: the stored events of a batch's signals (expanding parameter `signal_ids`).
_EVENTS_OF_SIGNALS = sa.select(t.action_set_event).where(
    t.action_set_event.c.signal_id.in_(sa.bindparam("signal_ids", expanding=True))
)


async def start_events(
    conn: AsyncConnection, runs: Sequence[tuple[ActionSetRecord, Mapping[str, Any]]], *, now: datetime
) -> list[EventRecord | None]:
    """`start_event` for many (action set, signal) runs of one transaction, in a few statements.

    For each run (in the given order): a new event in state `started` (not yet written: `stored` is
    False, `finish_events` inserts it with its final document), the stored event of an interrupted run
    to resume (state `started`), or None when the run already ended or the action set was deleted.
    Three statements (four on PostgreSQL): the existing events of the runs' (signal, action set) pairs;
    on PostgreSQL the sets' rows locked in id order (`SELECT … ORDER BY id FOR UPDATE`: a consistent lock
    order, so concurrent workers cannot deadlock on them); the sets' `last_event_seq` advanced by each
    set's number of new runs in one `UPDATE … RETURNING` (the rows stay locked until the caller commits,
    so no gap can be committed; new runs take consecutive
    `seq`s in run order); event ids reserved from the table's id sequence. Dense numbering and "one
    event per (signal, action set)" hold as with `start_event`: everything commits or rolls back with
    the caller's transaction. The unique constraint stays the final guard: if another writer recorded
    one of the pairs between the look-up and the lock (only a step-by-step run of another worker could),
    `finish_events`' insert fails and the caller's whole transaction rolls back, to be retried.
    """
    if not runs:
        return []
    _set, _ev = t.action_set, t.action_set_event
    set_ids = sorted({action_set.id for action_set, _ in runs})
    signal_ids = sorted({int(signal["id"]) for _, signal in runs})
    # By signal only, then kept for the runs' sets here: the one index this can use is the unique
    # (signal_id, action_set_id), so the plan cannot depend on statistics. With the sets' ids in the
    # condition too, stale statistics (a table analysed when still small, then filled by a backlog) made
    # PostgreSQL read every event of the sets through their (action_set_id, seq) index — a scan that grew
    # with each batch: a 60,000-signal backlog drained at half the rate of a 10,000 one.
    wanted = set(set_ids)
    existing = {
        (row.signal_id, row.action_set_id): row
        for row in await conn.execute(_EVENTS_OF_SIGNALS, {"signal_ids": signal_ids})
        if row.action_set_id in wanted
    }
    fresh: dict[int, int] = {}  # action set id → number of new events
    for action_set, signal in runs:
        if (int(signal["id"]), action_set.id) not in existing:
            fresh[action_set.id] = fresh.get(action_set.id, 0) + 1
    # Advancing the sequences locks the sets' rows (a deleted set returns no row: its runs are skipped).
    live: set[int] = set()
    next_seq: dict[int, int] = {}
    ids: Iterator[int] = iter(())
    if fresh:
        if conn.dialect.name == "postgresql":
            # A multi-row UPDATE locks rows in the order its plan meets them, so two workers advancing
            # overlapping sets could each hold one and wait for the other: lock them in id order first.
            await conn.execute(
                sa.select(_set.c.id).where(_set.c.id.in_(sorted(fresh))).order_by(_set.c.id).with_for_update()
            )
        increment = sa.case(fresh, value=_set.c.id, else_=0)
        for row in await conn.execute(
            _set.update()
            .where(_set.c.id.in_(sorted(fresh)))
            .values(last_event_seq=_set.c.last_event_seq + increment)
            .returning(_set.c.id, _set.c.last_event_seq)
        ):
            live.add(row.id)
            next_seq[row.id] = int(row.last_event_seq) - fresh[row.id] + 1
        ids = iter(await _reserve_event_ids(conn, sum(fresh[set_id] for set_id in live)))
    state = str(EventState.STARTED)
    started: list[EventRecord | None] = []
    for action_set, signal in runs:
        signal_id = int(signal["id"])
        stored = existing.get((signal_id, action_set.id))
        if stored is not None:
            started.append(_record_from_doc(stored) if stored.state == state else None)
        elif action_set.id not in live:
            started.append(None)
        else:
            seq = next_seq[action_set.id]
            next_seq[action_set.id] = seq + 1
            started.append(
                EventRecord(
                    id=next(ids),
                    action_set_id=action_set.id,
                    signal_id=signal_id,
                    seq=seq,
                    state=state,
                    created_at=now,
                    signal=signal,
                    action_set=action_set.wire,
                    project=action_set.project,
                    actor_id=action_set.actor_id,
                    stored=False,
                )
            )
    return started


async def _reserve_event_ids(conn: AsyncConnection, count: int) -> list[int]:
    """`count` unused, ascending event ids: from the id sequence (PostgreSQL), or after the largest id
    ever given (SQLite `AUTOINCREMENT`'s `sqlite_sequence`; the write transaction is exclusive, and an
    explicit id raises that counter, so it is never given again)."""
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(
            sa.text(
                "SELECT nextval(pg_get_serial_sequence('action_set_event', 'id')) "
                "FROM generate_series(1, :count)"
            ),
            {"count": count},
        )
        return sorted(int(value) for (value,) in rows)
    last = (
        await conn.exec_driver_sql(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'action_set_event'), 0), "
            "coalesce((SELECT max(id) FROM action_set_event), 0))"
        )
    ).scalar_one()
    return list(range(int(last) + 1, int(last) + 1 + count))


async def finish_events(
    conn: AsyncConnection,
    finished: Sequence[tuple[EventRecord, str, Sequence[ActionStep]]],
    *,
    now: datetime,
) -> None:
    """Write runs' final states: new events (from `start_events`) are inserted with their final document
    in one statement, resumed ones are rewritten (`save_event`)."""
    rows = []
    for event, state, steps in finished:
        if event.stored:
            await _write_doc(conn, event, state=EventState(state).value, steps=steps, now=now)
            continue
        value = EventState(state).value
        rows.append(
            {
                "id": event.id,
                "action_set_id": event.action_set_id,
                "signal_id": event.signal_id,
                "seq": event.seq,
                "state": value,
                "created_at": event.created_at,
                "updated_at": now,
                "doc": event_docs.dump_doc(_doc_of(event, state=value, steps=steps)),
            }
        )
    if rows:
        await conn.execute(t.action_set_event.insert(), rows)


def _doc_of(event: EventRecord, *, state: str, steps: Sequence[ActionStep]) -> dict[str, Any]:
    return event_docs.build_event_doc(
        event_id=event.id,
        action_set_id=event.action_set_id,
        signal_id=event.signal_id,
        created_at=event.created_at,
        state=state,
        signal=event.signal,
        action_set=event.action_set,
        steps=steps,
    )


async def find_event(conn: AsyncConnection, *, signal_id: int, action_set_id: int) -> EventRecord | None:
    """The event of (signal, action set), if one was recorded (to resume an interrupted run)."""
    row = (
        await conn.execute(
            sa.select(t.action_set_event).where(
                t.action_set_event.c.signal_id == signal_id,
                t.action_set_event.c.action_set_id == action_set_id,
            )
        )
    ).first()
    return _record_from_doc(row) if row is not None else None


async def event_by_id(conn: AsyncConnection, *, event_id: int, action_set_id: int) -> EventRecord | None:
    """Event `event_id` of action set `action_set_id`; None when there is none (or it is another set's)."""
    row = (
        await conn.execute(
            sa.select(t.action_set_event).where(
                t.action_set_event.c.id == event_id, t.action_set_event.c.action_set_id == action_set_id
            )
        )
    ).first()
    return _record_from_doc(row) if row is not None else None


async def save_event(
    conn: AsyncConnection,
    event: EventRecord,
    *,
    state: str,
    steps: Sequence[ActionStep],
    now: datetime | None = None,
) -> None:
    """Rewrite the event's `state` and document with each action's state/details from `steps`.

    `steps` may be any subset of the snapshot's actions (missing ones are `not started`); a step
    that is not an action of the snapshot raises ValueError. `now` (default: the clock) becomes
    `updated_at`. Raises LookupError if the event row does not exist.
    """
    await _write_doc(conn, event, state=EventState(state).value, steps=steps, now=now or utcnow())


async def _write_doc(
    conn: AsyncConnection, event: EventRecord, *, state: str, steps: Sequence[ActionStep], now: datetime
) -> None:
    doc = _doc_of(event, state=state, steps=steps)
    result = await conn.execute(
        t.action_set_event.update()
        .where(t.action_set_event.c.id == event.id)
        .values(state=state, doc=event_docs.dump_doc(doc), updated_at=now)
    )
    if result.rowcount != 1:
        raise LookupError(f"action set event {event.id} does not exist")


_event = t.action_set_event
_set = t.action_set
_LAST_SEQ = sa.select(_set.c.last_event_seq).where(
    _set.c.id == sa.bindparam("action_set_id"), _set.c.project_id == sa.bindparam("project")
)
# The same for asyncpg itself (prepared once per connection by its statement cache).
_LAST_SEQ_ASYNCPG = "SELECT last_event_seq FROM action_set WHERE id = $1 AND project_id = $2"
_OFFSET = sa.bindparam("offset", type_=sa.BigInteger)
_LIMIT = sa.bindparam("limit", type_=sa.BigInteger)


def _bound(minus: sa.ColumnElement[int]) -> sa.ScalarSelect[int]:
    """`last_event_seq - minus` of the set, if it belongs to the project (else NULL: no rows)."""
    return (
        sa.select(_set.c.last_event_seq - minus)
        .where(_set.c.id == sa.bindparam("action_set_id"), _set.c.project_id == sa.bindparam("project"))
        .scalar_subquery()
    )


# One statement for the common case: the two bounds are uncorrelated scalar subqueries (evaluated
# once, then used as index conditions), so the plan is always a backward range scan of
# (action_set_id, seq) bounded on both sides: O(limit) at any offset. A join would let PostgreSQL's
# planner drive the scan from the events side (O(offset)); `LIMIT` keeps its row estimate, and so
# its cost, low enough never to trigger JIT compilation (≈12 ms per query).
_NEWEST_PAGE = (
    sa.select(_event.c.doc)
    .where(
        _event.c.action_set_id == sa.bindparam("action_set_id"),
        _event.c.seq <= _bound(_OFFSET),
        _event.c.seq > _bound(_OFFSET + _LIMIT),
    )
    .order_by(_event.c.seq.desc())
    .limit(_LIMIT)
)


def _page_below_top(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """The events of one set with `bottom` < seq ≤ `top`, newest first."""
    return (
        sa.select(*columns)
        .where(
            _event.c.action_set_id == sa.bindparam("action_set_id"),
            _event.c.seq <= sa.bindparam("top"),
            _event.c.seq > sa.bindparam("bottom"),
        )
        .order_by(_event.c.seq.desc())
        .limit(_LIMIT)
    )


_PAGE = _page_below_top(_event.c.doc)
# The same page with each event's state and age (to know whether the page may be cached).
_PAGE_WITH_STATE = _page_below_top(_event.c.doc, _event.c.state, _event.c.created_at)
_SEQ_OF_EVENT = sa.select(_event.c.seq).where(
    _event.c.id == sa.bindparam("event_id"),
    _event.c.action_set_id == sa.bindparam("action_set_id"),
)


async def list_event_docs(
    conn: AsyncConnection,
    *,
    project: str,
    action_set_id: int,
    limit: int,
    offset: int,
    before: int | None = None,
    cache: SettledPageCache | None = None,
) -> bytes:
    """The `actionSetEventsSchema` body: `limit` events of the set, newest first, skipping `offset`.

    `before` (an event id of this set) starts the page just below that event instead of at the
    newest one — a cursor that stays put while new events arrive; an unknown id gives an empty page.
    Raises NotFoundError when the project or the action set does not exist, or the set belongs
    to another project (a deleted set's events remain stored but are never listed).

    With a `cache` (no `before`): the set's `last_event_seq` is read first, and a settled page cached for
    that value is the answer (see `page_cache`); otherwise the page is read below that value and cached
    if all its events have ended. One round trip on a hit, two on a miss.
    """
    if not storable_text(project):
        raise project_not_found(project[:100])
    if before is None and limit >= 1 and cache is not None:
        return await _cached_page(
            conn, cache, project=project, action_set_id=action_set_id, limit=limit, offset=offset
        )
    if before is None and limit >= 1:
        docs = (
            (
                await conn.execute(
                    _NEWEST_PAGE,
                    {"action_set_id": action_set_id, "project": project, "offset": offset, "limit": limit},
                )
            )
            .scalars()
            .all()
        )
        if docs:
            return event_docs.join_docs(docs)
    # An empty page: past the end, or no such set (404); the second look-up tells which.
    last = await _last_event_seq(conn, project=project, action_set_id=action_set_id)
    if last is None:
        await require_project(conn, project)
        raise NotFoundError(f"Could not find action set with id {action_set_id} in project {project!r}")
    if before is None:
        return EMPTY_LISTING
    cursor = await conn.scalar(_SEQ_OF_EVENT, {"event_id": before, "action_set_id": action_set_id})
    top = int(cursor) - 1 - offset if cursor is not None else 0
    if top < 1 or limit < 1:
        return EMPTY_LISTING
    rows = await conn.execute(
        _PAGE, {"action_set_id": action_set_id, "top": top, "bottom": max(top - limit, 0), "limit": limit}
    )
    return event_docs.join_docs(rows.scalars().all())


async def _last_event_seq(conn: AsyncConnection, *, project: str, action_set_id: int) -> int | None:
    """The set's `last_event_seq`, or None when the project has no such set.

    On PostgreSQL through the driver: on a cached page this read is the listing's one statement, and
    SQLAlchemy's execution around it (compiled-cache look-up, cursor and result wrapping, greenlet hops)
    cost about as much as the statement itself — ≈ +20 % listings per second without it (ADR 0011).
    """
    if conn.dialect.name == "postgresql":
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            value = await driver.fetchval(_LAST_SEQ_ASYNCPG, action_set_id, project)
        except Exception:
            # SQLAlchemy's disconnect handling never sees the driver's errors: discard the connection
            # so the pool does not hand a broken one out again (as it does after its own statements).
            await conn.invalidate()
            raise
    else:
        value = await conn.scalar(_LAST_SEQ, {"action_set_id": action_set_id, "project": project})
    return None if value is None else int(value)


async def _cached_page(
    conn: AsyncConnection,
    cache: SettledPageCache,
    *,
    project: str,
    action_set_id: int,
    limit: int,
    offset: int,
) -> bytes:
    last = await _last_event_seq(conn, project=project, action_set_id=action_set_id)
    if last is None:
        await require_project(conn, project)
        raise NotFoundError(f"Could not find action set with id {action_set_id} in project {project!r}")
    key = (project, action_set_id, limit, offset)
    hit = cache.get(key, last)
    if hit is not None:
        return hit
    top = last - offset
    if top < 1:
        return EMPTY_LISTING
    rows = (
        await conn.execute(
            _PAGE_WITH_STATE,
            {"action_set_id": action_set_id, "top": top, "bottom": max(top - limit, 0), "limit": limit},
        )
    ).all()
    body = event_docs.join_docs([row.doc for row in rows])
    if rows and all(row.state != EventState.STARTED for row in rows):
        cache.put(key, last, body, oldest=min(row.created_at for row in rows))
    return body


# --- retention (ADR 0032) -------------------------------------------------------------------------------

_open_runs = sa.select(t.action_set_policy_state.c.open_event_id).where(
    t.action_set_policy_state.c.open_event_id.is_not(None)
)


async def delete_events(conn: AsyncConnection, *, older_than: datetime, limit: int) -> int:
    """Delete at most `limit` action set events created before `older_than`, oldest ids first, with the
    rows that belong to them — the flag changes each run recorded and its undo; returns how many events.

    Kept whatever their age: a run still `started` (the worker resumes it) and a policy's open run (the run
    restore on resolve or a time box will put back, ADR 0024/0025: its changes are what it puts back). They
    go in the first pass after they end or close. Trace decisions are not touched: they are the signals'
    trace and go with their signals (`delete_decisions`); a decision's `eventId` may then name a pruned
    event, which answers 404 like any unknown one. Ids grow with time, so the scan along the primary key
    starts at the oldest rows (like `delete_decisions`).
    """
    victims = [
        int(event_id)
        for (event_id,) in await conn.execute(
            sa.select(_event.c.id)
            .where(
                _event.c.created_at < older_than,
                _event.c.state != str(EventState.STARTED),
                _event.c.id.not_in(_open_runs),
            )
            .order_by(_event.c.id)
            .limit(limit)
        )
    ]
    if not victims:
        return 0
    await conn.execute(
        sa.delete(t.action_set_event_change).where(t.action_set_event_change.c.event_id.in_(victims))
    )
    await conn.execute(
        sa.delete(t.action_set_event_undo).where(t.action_set_event_undo.c.event_id.in_(victims))
    )
    result = await conn.execute(sa.delete(_event).where(_event.c.id.in_(victims)))
    return int(result.rowcount or 0)
