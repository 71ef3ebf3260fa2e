"""The write side of ingestion: one batch of calls checked and stored in one transaction.

The group committer hands a writer every call that arrived while the previous batch was being
committed. In one transaction the writer looks up each call's endpoint (by name) and token (by the
SHA-256 of the presented secret), decides each call's outcome in the order endpoint → token → body
(the rate limit was applied before), inserts the accepted signals and makes the commit wake the
workers. `write` returns only once that transaction is durable, so a 200 is never sent for a signal
that is not committed.

A call may carry a delivery id (`IngestCall.delivery_key`, ADR 0019). The first storable call with a
key claims (endpoint, key) in `signal_delivery` in the same transaction as its signal; a later call with
the same key within the window — in the same batch, another batch or another replica — stores nothing
and is answered with the first call's signal (`StoredSignal.replayed`). The primary key decides, not a
read before the write: on PostgreSQL `INSERT … ON CONFLICT` waits for a concurrent claim to commit or
roll back; on SQLite the batch holds the only write lock. A claim older than the window is taken over. Checking credentials in the same transaction as the insert means a token
deleted or an endpoint disabled a moment ago is seen at once, by every replica: there is no cache.

Both writers skip SQLAlchemy on this path because its per-statement overhead (and each extra round
trip, which costs a full event-loop turn under load) dominated the ingestion profile:
- PostgreSQL: one statement per batch (credential lookup, insert, `pg_notify`) executed outside an
  explicit transaction block, so it is its own transaction — one round trip, committed (with
  `synchronous_commit=on`) before the driver returns. Connections come from the engine's pool and
  are kept between batches.
- SQLite: a dedicated thread with its own connection (same pragmas as the engine: WAL,
  `synchronous=FULL`) runs `BEGIN IMMEDIATE` … `COMMIT` for a batch in one hop from the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.db.engine import SQLITE_BUSY_TIMEOUT_MS, Database, begin_immediate
from switchman.errors import ConflictError, NotFoundError, SwitchmanError, UnauthorizedError
from switchman.signal_endpoints.schemas import SIGNAL_SOURCE
from switchman.timeutil import utcnow
from switchman.wakeup import CHANNEL, Wakeup


class SignalTokenRequired(SwitchmanError):
    """No credential on a call (Unleash's `AuthenticationRequired` name, without the UI login hints)."""

    status_code = 401
    name = "AuthenticationRequired"


# Plain (not frozen) slotted dataclasses: built once per call on the hot path, never mutated.
@dataclass(slots=True)
class IngestCall:
    """One received call, before it was checked against the database."""

    name: str
    # SHA-256 hex of the presented secret; None when no credential came with the call.
    token_hash: str | None
    # The payload as compact JSON object text; None when `body_error` is set.
    payload: bytes | None
    body_error: SwitchmanError | None
    received_at: datetime
    # The sender's delivery id (Idempotency-Key, webhook-id, X-GitHub-Delivery); None: every call is new.
    delivery_key: str | None = None
    # The call's signature verified against its endpoint's signing secret (ADR 0020): it stands in for a
    # token (a token, when one is presented and valid, still names who sent it).
    verified: bool = False


@dataclass(slots=True)
class StoredSignal:
    signal_id: int
    source_id: int
    token_id: int | None
    created_at: datetime
    payload: bytes
    # True when this call repeated a delivery: nothing was stored, this is the first delivery's signal.
    replayed: bool = False


Outcome = StoredSignal | SwitchmanError


class SignalWriter(Protocol):
    async def write(self, calls: Sequence[IngestCall]) -> list[Outcome]:
        """Check and store `calls` in one transaction; return once it is durable (or raise)."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


# The `signal` columns both writers insert, in this order, taken from the table definition (a renamed
# column fails here, at import). The others have defaults: `id` (the sequence / rowid) and the worker's
# columns, NULL for a new signal (tests/signal_endpoints/test_signal_writer.py checks the split).
INSERTED_COLUMNS: tuple[str, ...] = tuple(
    column.name
    for column in (
        t.signal.c.source,
        t.signal.c.source_id,
        t.signal.c.created_by_source_token_id,
        t.signal.c.payload,
        t.signal.c.created_at,
    )
)
_COLUMN_LIST = ", ".join(INSERTED_COLUMNS)
_TABLE = t.signal.name
_DELIVERIES = t.signal_delivery.name
DEFAULT_DELIVERY_WINDOW = timedelta(hours=24)


def _lost_first_delivery(call: IngestCall) -> ConflictError:
    """A repeated delivery whose first signal no longer exists (it cannot happen while the window is
    shorter than signal retention, which the settings enforce)."""
    return ConflictError(
        f"A delivery with this id was already received by '{call.name}', and its signal no longer exists."
    )


def make_signal_writer(
    db: Database, wakeup: Wakeup, *, connections: int, delivery_window: timedelta = DEFAULT_DELIVERY_WINDOW
) -> SignalWriter:
    """The writer for `db`'s backend; `connections` = batches that may be in flight at once (PostgreSQL);
    `delivery_window` = how long a delivery id stays claimed by its first call."""
    if db.is_sqlite:
        return SqliteSignalWriter(
            db.url.database or "", wakeup, write_lock=db.sqlite_write_lock, delivery_window=delivery_window
        )
    return PostgresSignalWriter(db, wakeup, connections=connections, delivery_window=delivery_window)


def refusal(
    call: IngestCall, *, endpoint_id: int | None, enabled: bool, token_id: int | None
) -> SwitchmanError | None:
    """Why `call` cannot be stored given what the database says, or None when it can."""
    if endpoint_id is None or not enabled:
        # A disabled endpoint answers exactly like an unknown one.
        return NotFoundError(f"Could not find a signal endpoint named '{call.name}'.")
    if token_id is None and not call.verified:  # a verified signature authenticates the call itself
        if call.token_hash is None:
            return SignalTokenRequired(
                "This signal endpoint needs a token: send it in the Authorization header "
                "(`Authorization: Bearer <token>` or the bare token)."
            )
        return UnauthorizedError("The token is not valid for this signal endpoint.")
    if call.body_error is not None:
        return call.body_error
    return None


# --- PostgreSQL --------------------------------------------------------------------------------------

# $1..$5, $9: parallel arrays (name, token hash, payload, received at, delivery key, signature verified),
# one element per call.
# `a` decides per call and draws an id only for storable ones (MATERIALIZED: evaluated once, so the ids
# inserted are the ids returned). `claimed` takes (endpoint, key) for the first storable call of each key
# in the batch — or takes over a claim made before $8 (expired) — and returns the ids it claimed for; a
# call with a key whose id was not claimed is a repeat: not inserted, `repeat` in the result. The NOTIFY
# is queued only when something was inserted and, like the inserts, takes effect at commit.
_PG_BATCH = """
WITH v AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $9::bool[])
    WITH ORDINALITY AS v(name, token_hash, payload, created_at, delivery_key, verified, ord)
),
a AS MATERIALIZED (
  SELECT v.ord, e.id AS endpoint_id, coalesce(e.enabled, false) AS enabled, tk.id AS token_id,
         CASE WHEN e.enabled AND (tk.id IS NOT NULL OR v.verified) AND v.payload IS NOT NULL
              THEN nextval({sequence}::regclass) END AS signal_id,
         v.payload, v.created_at, v.delivery_key
  FROM v
  LEFT JOIN signal_endpoint e ON e.name = v.name
  LEFT JOIN signal_endpoint_token tk ON tk.signal_endpoint_id = e.id AND tk.token_hash = v.token_hash
  ORDER BY v.ord
),
claimed AS (
  INSERT INTO {deliveries} (signal_endpoint_id, delivery_key, signal_id, created_at)
  SELECT DISTINCT ON (endpoint_id, delivery_key) endpoint_id, delivery_key, signal_id, created_at
  FROM a WHERE signal_id IS NOT NULL AND delivery_key IS NOT NULL
  ORDER BY endpoint_id, delivery_key, ord
  ON CONFLICT (signal_endpoint_id, delivery_key) DO UPDATE
    SET signal_id = excluded.signal_id, created_at = excluded.created_at
    WHERE {deliveries}.created_at < $8
  RETURNING signal_id
),
s AS MATERIALIZED (
  SELECT a.*, (a.delivery_key IS NOT NULL AND a.signal_id IS NOT NULL
               AND a.signal_id NOT IN (SELECT signal_id FROM claimed)) AS repeat
  FROM a
),
ins AS (
  INSERT INTO {table} (id, {columns})
  SELECT signal_id, $6, endpoint_id, token_id, payload, created_at FROM s
  WHERE signal_id IS NOT NULL AND NOT repeat
  RETURNING 1
)
SELECT s.endpoint_id, s.enabled, s.token_id, CASE WHEN s.repeat THEN NULL ELSE s.signal_id END, s.repeat,
       (SELECT count(*) FROM (SELECT pg_notify($7, '') FROM (SELECT 1 FROM ins LIMIT 1) AS x) AS y)
         AS notified
FROM s ORDER BY s.ord
"""

# The first call's signal for each repeated (endpoint, key); read after the batch committed, so a claim
# that another transaction committed meanwhile is seen.
_PG_REPEATS = """
SELECT d.signal_endpoint_id, d.delivery_key, s.id, s.source_id, s.created_by_source_token_id, s.created_at,
       s.payload
FROM unnest($1::int[], $2::text[]) AS k(endpoint_id, delivery_key)
JOIN {deliveries} d ON d.signal_endpoint_id = k.endpoint_id AND d.delivery_key = k.delivery_key
JOIN {table} s ON s.id = d.signal_id
"""


@dataclass
class _HeldConnection:
    sa_connection: AsyncConnection
    driver: Any  # asyncpg.Connection


class PostgresSignalWriter:
    def __init__(
        self,
        db: Database,
        wakeup: Wakeup,
        *,
        connections: int,
        delivery_window: timedelta = DEFAULT_DELIVERY_WINDOW,
    ) -> None:
        self._db = db
        self._wakeup = wakeup
        self._delivery_window = delivery_window
        self._idle: list[_HeldConnection] = []
        self._held: list[_HeldConnection] = []
        self._slots = asyncio.Semaphore(connections)
        self._sql: str | None = None
        self._repeats_sql = ""

    async def write(self, calls: Sequence[IngestCall]) -> list[Outcome]:
        async with self._slots:
            held = self._idle.pop() if self._idle else await self._connect()
            try:
                if held.driver.is_in_transaction():  # never expected; a batch must be its own transaction
                    raise RuntimeError("ingestion connection unexpectedly inside a transaction")
                assert self._sql is not None
                rows = await held.driver.fetch(
                    self._sql,
                    [call.name for call in calls],
                    [call.token_hash for call in calls],
                    [call.payload.decode() if call.payload is not None else None for call in calls],
                    [call.received_at for call in calls],
                    [call.delivery_key for call in calls],
                    SIGNAL_SOURCE,
                    CHANNEL,
                    utcnow() - self._delivery_window,
                    [call.verified for call in calls],
                )
                repeats = [
                    (row[0], call.delivery_key) for call, row in zip(calls, rows, strict=True) if row[4]
                ]
                firsts = await self._first_deliveries(held, repeats) if repeats else {}
            except BaseException:
                await self._discard(held)
                raise
            self._idle.append(held)
        outcomes: list[Outcome] = []
        for call, (endpoint_id, enabled, token_id, signal_id, repeat, _notified) in zip(
            calls, rows, strict=True
        ):
            if repeat:
                first = firsts.get((endpoint_id, call.delivery_key or ""))
                outcomes.append(first or _lost_first_delivery(call))
                continue
            if signal_id is not None:  # stored: the statement checked endpoint, token and payload
                assert call.payload is not None
                outcomes.append(
                    StoredSignal(signal_id, endpoint_id, token_id, call.received_at, call.payload)
                )
                continue
            problem = refusal(call, endpoint_id=endpoint_id, enabled=enabled, token_id=token_id)
            if problem is None:  # cannot happen: the statement and `refusal` apply the same rules
                raise RuntimeError("a storable call was not stored")
            outcomes.append(problem)
        if rows and rows[0][5]:
            self._wakeup.committed()
        return outcomes

    async def _first_deliveries(
        self, held: _HeldConnection, repeats: list[tuple[int, str | None]]
    ) -> dict[tuple[int, str], StoredSignal]:
        """The first call's signal of each repeated (endpoint, key), as `replayed` outcomes."""
        rows = await held.driver.fetch(
            self._repeats_sql, [endpoint_id for endpoint_id, _ in repeats], [key for _, key in repeats]
        )
        return {
            (endpoint_id, key): StoredSignal(
                signal_id, source_id, token_id, created_at, payload.encode(), replayed=True
            )
            for endpoint_id, key, signal_id, source_id, token_id, created_at, payload in rows
        }

    async def _connect(self) -> _HeldConnection:
        sa_connection = await self._db.engine.connect()
        raw = await sa_connection.get_raw_connection()
        held = _HeldConnection(sa_connection, raw.driver_connection)
        self._held.append(held)
        if self._sql is None:
            sequence = await held.driver.fetchval("SELECT pg_get_serial_sequence($1, 'id')", _TABLE)
            literal = "'" + str(sequence).replace("'", "''") + "'"
            self._sql = _PG_BATCH.format(
                sequence=literal, table=_TABLE, columns=_COLUMN_LIST, deliveries=_DELIVERIES
            )
            self._repeats_sql = _PG_REPEATS.format(table=_TABLE, deliveries=_DELIVERIES)
        return held

    async def _discard(self, held: _HeldConnection) -> None:
        """A failed batch may leave the connection in any state: never reuse it."""
        self._held.remove(held)
        try:
            await held.sa_connection.invalidate()
            await held.sa_connection.close()
        except Exception:  # noqa: S110 - already broken; the pool replaces it
            pass

    async def close(self) -> None:
        for held in list(self._held):
            await held.sa_connection.close()
        self._held.clear()
        self._idle.clear()


# --- SQLite ------------------------------------------------------------------------------------------


class SqliteSignalWriter:
    """Writes batches on a dedicated thread and connection: one event-loop hop per batch."""

    def __init__(
        self,
        path: str,
        wakeup: Wakeup,
        *,
        write_lock: asyncio.Lock | None = None,
        delivery_window: timedelta = DEFAULT_DELIVERY_WINDOW,
    ) -> None:
        self._path = path
        self._wakeup = wakeup
        self._delivery_window = delivery_window
        # The process's SQLite write lock (Database.sqlite_write_lock): batches queue fairly with the
        # worker's transactions instead of sleeping in SQLite's busy handler.
        self._write_lock = write_lock or asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signal-sqlite-writer")
        self._conn: sqlite3.Connection | None = None

    async def write(self, calls: Sequence[IngestCall]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        with self._wakeup.storing():
            async with self._write_lock:
                outcomes = await loop.run_in_executor(self._executor, self._write_batch, list(calls))
        if any(isinstance(outcome, StoredSignal) and not outcome.replayed for outcome in outcomes):
            self._wakeup.committed()
        return outcomes

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    # The methods below run on the writer thread only.

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            # The engine's pragmas (switchman.db.engine): durable before acknowledgement.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write_batch(self, calls: list[IngestCall]) -> list[Outcome]:
        conn = self._connection()
        try:
            # Another process (a separate `switchman worker`) may hold the write lock: wait for it in short
            # steps, not in SQLite's busy handler (whose sleeps grow to 25 ms).
            begin_immediate(conn, time.sleep)
            outcomes = self._store(conn, calls, claimed_before=utcnow() - self._delivery_window)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    @staticmethod
    def _store(
        conn: sqlite3.Connection, calls: list[IngestCall], *, claimed_before: datetime
    ) -> list[Outcome]:
        names = sorted({call.name for call in calls})
        hashes = sorted({call.token_hash for call in calls if call.token_hash is not None}) or [""]
        endpoints: dict[str, tuple[int, bool]] = {}
        for endpoint_id, name, enabled in conn.execute(
            f"SELECT id, name, enabled FROM signal_endpoint WHERE name IN ({_marks(names)})",  # noqa: S608 - placeholders
            names,
        ):
            endpoints[name] = (endpoint_id, bool(enabled))
        tokens: dict[tuple[int, str], int] = {}
        if endpoints:
            endpoint_ids = [endpoint_id for endpoint_id, _ in endpoints.values()]
            query = (
                "SELECT id, signal_endpoint_id, token_hash FROM signal_endpoint_token "  # noqa: S608 - placeholders
                f"WHERE token_hash IN ({_marks(hashes)}) AND signal_endpoint_id IN ({_marks(endpoint_ids)})"
            )
            for token_id, endpoint_id, token_hash in conn.execute(query, [*hashes, *endpoint_ids]):
                tokens[(endpoint_id, token_hash)] = token_id
        outcomes: list[Outcome | None] = []
        accepted: list[tuple[int, int, int | None]] = []  # (index in calls, endpoint id, token id)
        for index, call in enumerate(calls):
            endpoint_id, enabled = endpoints.get(call.name, (None, False))
            token_id = (
                tokens.get((endpoint_id, call.token_hash))
                if endpoint_id is not None and call.token_hash is not None
                else None
            )
            problem = refusal(call, endpoint_id=endpoint_id, enabled=enabled, token_id=token_id)
            outcomes.append(problem)
            if problem is None:
                assert endpoint_id is not None
                accepted.append((index, endpoint_id, token_id))
        # Repeated deliveries: a key claimed (unexpired) before this batch, or earlier in it.
        claims = _live_claims(conn, calls, accepted, claimed_before=claimed_before)
        first_in_batch: dict[tuple[int, str], int] = {}  # (endpoint, key) → index of its first call here
        repeats: list[tuple[int, tuple[int, str]]] = []
        new: list[tuple[int, int, int | None]] = []
        for index, endpoint_id, token_id in accepted:
            key = calls[index].delivery_key
            if key is not None:
                claim = (endpoint_id, key)
                if claim in claims or claim in first_in_batch:
                    repeats.append((index, claim))
                    continue
                first_in_batch[claim] = index
            new.append((index, endpoint_id, token_id))
        if new:
            # One multi-row INSERT. Under BEGIN IMMEDIATE, SQLite assigns rowids in VALUES order, so the
            # returned ids sorted ascending map back to `new` in order.
            values: list[object] = []
            for index, endpoint_id, token_id in new:
                call = calls[index]
                assert call.payload is not None
                values += (
                    SIGNAL_SOURCE,
                    endpoint_id,
                    token_id,
                    call.payload.decode(),
                    _sqlite_created_at(call.received_at),
                )
            rows = conn.execute(
                f"INSERT INTO {_TABLE} ({_COLUMN_LIST}) "  # noqa: S608 - names from the table definition
                f"VALUES {','.join([_SQLITE_ROW] * len(new))} RETURNING id",
                values,
            ).fetchall()
            for (index, endpoint_id, token_id), signal_id in zip(
                new, sorted(r[0] for r in rows), strict=True
            ):
                call = calls[index]
                assert call.payload is not None
                outcomes[index] = StoredSignal(
                    signal_id, endpoint_id, token_id, call.received_at, call.payload
                )
        if first_in_batch:
            # Claim the new keys; an expired claim is taken over (the primary key forbids a second one).
            conn.executemany(
                f"INSERT INTO {_DELIVERIES} (signal_endpoint_id, delivery_key, signal_id, created_at) "  # noqa: S608 - names from the table definition
                "VALUES (?, ?, ?, ?) ON CONFLICT (signal_endpoint_id, delivery_key) DO UPDATE "
                "SET signal_id = excluded.signal_id, created_at = excluded.created_at",
                [
                    (
                        endpoint_id,
                        key,
                        _stored(outcomes[index]).signal_id,
                        _sqlite_created_at(calls[index].received_at),
                    )
                    for (endpoint_id, key), index in first_in_batch.items()
                ],
            )
        if repeats:
            firsts = _signals_by_id(
                conn,
                [
                    claims[claim] if claim in claims else _stored(outcomes[first_in_batch[claim]]).signal_id
                    for _, claim in repeats
                ],
            )
            for index, claim in repeats:
                signal_id = (
                    claims[claim] if claim in claims else _stored(outcomes[first_in_batch[claim]]).signal_id
                )
                outcomes[index] = firsts.get(signal_id) or _lost_first_delivery(calls[index])
        return [outcome for outcome in outcomes if outcome is not None]


def _stored(outcome: Outcome | None) -> StoredSignal:
    assert isinstance(outcome, StoredSignal)
    return outcome


def _live_claims(
    conn: sqlite3.Connection,
    calls: list[IngestCall],
    accepted: list[tuple[int, int, int | None]],
    *,
    claimed_before: datetime,
) -> dict[tuple[int, str], int]:
    """The unexpired claims on the keys of `accepted` calls: (endpoint, key) → the first call's signal id."""
    wanted: dict[int, set[str]] = {}
    for index, endpoint_id, _ in accepted:
        key = calls[index].delivery_key
        if key is not None:
            wanted.setdefault(endpoint_id, set()).add(key)
    claims: dict[tuple[int, str], int] = {}
    since = _sqlite_created_at(claimed_before)
    for endpoint_id, keys in wanted.items():
        # One endpoint per query, so SQLite searches the primary key (a row-value IN scans the table).
        query = (
            f"SELECT delivery_key, signal_id FROM {_DELIVERIES} "  # noqa: S608 - placeholders
            f"WHERE signal_endpoint_id = ? AND delivery_key IN ({_marks(list(keys))}) AND created_at >= ?"
        )
        for key, signal_id in conn.execute(query, [endpoint_id, *sorted(keys), since]):
            claims[(endpoint_id, key)] = signal_id
    return claims


def _signals_by_id(conn: sqlite3.Connection, ids: list[int]) -> dict[int, StoredSignal]:
    """Stored signals as `replayed` outcomes, by id."""
    unique = sorted(set(ids))
    query = (
        "SELECT id, source_id, created_by_source_token_id, created_at, payload "  # noqa: S608 - placeholders
        f"FROM {_TABLE} WHERE id IN ({_marks(unique)})"
    )
    return {
        signal_id: StoredSignal(
            signal_id,
            source_id,
            token_id,
            _sqlite_read_created_at(created_at),
            payload.encode(),
            replayed=True,
        )
        for signal_id, source_id, token_id, created_at, payload in conn.execute(query, unique)
    }


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


_SQLITE_ROW = "(" + ",".join("?" * len(INSERTED_COLUMNS)) + ")"
# The text the `created_at` column type stores on SQLite, from the type itself (not a copy of its format).
_sqlite_created_at: Any = t.signal.c.created_at.type.bind_processor(sqlite_dialect.dialect())


def _sqlite_read_created_at(text: str) -> datetime:
    """A `created_at` read back through the raw driver: ISO text in UTC without an offset."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
