"""Events listing benchmark: `GET …/actions/{id}/events?limit=50&offset=k` at 1,000,000 stored events,
against Unleash OSS `GET /api/admin/events` in the same run (comparison 3).

    make bench-events            # = python -m bench.events_listing
    python -m bench.events_listing --events 1000000 --requests 500 --connections 16 --rounds 2
                                   [--databases sqlite,postgresql] [--no-unleash] [--quick] [--no-write]

First a real Unleash OSS server (`bench._unleash`) is started on its own database and seeded through its
admin API (100 flags, then on/off passes: its own events). Then for each database (a fresh SQLite file,
then a fresh PostgreSQL database on SWITCHMAN_BENCH_PG, default postgresql://postgres@127.0.0.1:5432):
1. migrate, create one action set (three actions, two filters) through the repository, and bulk-insert
   `--events` events into it (~1.85 KB documents exactly as `event_docs` builds them, from two
   templates; COPY on PostgreSQL, executemany on SQLite);
2. in-process, time `event_store.list_event_docs` without the page cache (the database part of the listing)
   at each offset, and for contrast the plain `ORDER BY seq DESC LIMIT 50 OFFSET k` on the same index;
3. start two `switchman serve --no-worker` servers (the settled-page cache on, as shipped, and off) and
   measure the HTTP listing at offsets 0 and 900,000: latency with one keep-alive connection sending
   requests back to back, then throughput with `--connections` connections (wrk when installed, else an
   asyncio client), rounds alternating with Unleash's `GET /api/admin/events` under the same settings.
Every first answer is checked (status 200, 50 events, the expected newest id). Results go to stdout, to
the `## Events listing` section of docs/benchmarks.md and to bench/out/events_listing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa

from bench._data import alert_payload
from bench._load import run_load, wrk_available
from bench._pg import PG_SERVER, pg_admin, pg_fetchval
from bench._report import (
    BENCHMARKS_MD,
    C3_LISTING_UNLEASH,
    ROOT,
    ResultRow,
    machine_description,
    now_iso,
    write_results,
    write_section,
)
from bench._server import free_port, running
from bench._unleash import Unleash, running_unleash, seed
from switchman.action_sets import event_docs, event_store
from switchman.action_sets.repository import (
    ActionSetRecord,
    NewActionSet,
    get_action_set_by_id,
    insert_action_set,
)
from switchman.config import to_async_url
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.db.migrate import migrate
from switchman.engine.executor import ActionState
from switchman.timeutil import iso

SECTION = "## Events listing"
PROJECT = "default"
LIMIT = 50
DEFAULT_OFFSETS = (0, 900_000)
UNLEASH_EVENTS = "/api/admin/events"
# Unleash's `GET /api/admin/events` answers its newest 100 events; switchman's page is `LIMIT` events. The
# two are compared in requests/s and in events/s (events delivered per second), since the pages differ.
UNLEASH_PAGE_EVENTS = 100
BATCH = 20_000


# --- seeding -------------------------------------------------------------------------------------------


async def create_action_set(db: Database) -> ActionSetRecord:
    params = {"project": PROJECT, "environment": "production"}
    async with db.transaction() as conn:
        now = datetime.now(UTC)
        actor = await conn.execute(
            t.service_account.insert()
            .values(username="bench-actor", name="Bench actor", root_role=2, created_at=now)
            .returning(t.service_account.c.id)
        )
        endpoint = await conn.execute(
            t.signal_endpoint.insert()
            .values(name="bench-alerts", created_at=now, created_by_user_id=-42)
            .returning(t.signal_endpoint.c.id)
        )
        values = NewActionSet(
            name="kill checkout on error storm",
            description="turn checkout-v2 off when the APM reports >5% errors",
            actor_id=int(actor.scalar_one()),
            enabled=True,
            source="signal-endpoint",
            source_id=int(endpoint.scalar_one()),
            filters={
                "alerts[0].labels.service": {"operator": "IN", "values": ["checkout"]},
                "errorRate": {"operator": "NUM_GT", "value": "5"},
            },
            actions=[
                ("TOGGLE_FEATURE_OFF", 1, {**params, "featureName": "checkout-v2"}),
                ("TOGGLE_FEATURE_OFF", 2, {**params, "featureName": "checkout-legacy"}),
                ("TOGGLE_FEATURES_OFF_BY_TAG", 3, {**params, "tag": "simple:checkout"}),
            ],
        )
        set_id = await insert_action_set(
            conn, project=PROJECT, values=values, created_by_user_id=-42, now=now
        )
        record = await get_action_set_by_id(conn, set_id)
    assert record is not None
    return record


def _event_doc(record: ActionSetRecord, n: int, created_at: datetime) -> tuple[str, str]:
    """(state, document) of event n exactly as the worker writes it (every tenth run fails)."""
    steps = record.steps()
    failed = n % 10 == 0
    for position, step in enumerate(steps):
        if failed and position == 1:
            step.state, step.details = ActionState.FAILED, "Feature checkout-legacy does not exist"
            break
        step.state = ActionState.SUCCESS
    state = "failed" if failed else "success"
    signal = {
        "id": n,
        "source": "signal-endpoint",
        "sourceId": record.source_id,
        "createdBySourceTokenId": 1,
        "createdAt": iso(created_at - timedelta(milliseconds=3)),
        "payload": alert_payload(f"{n:016x}"),
    }
    doc = event_docs.build_event_doc(
        event_id=n,
        action_set_id=record.id,
        signal_id=n,
        created_at=created_at,
        state=state,
        signal=signal,
        action_set=record.wire,
        steps=steps,
    )
    return state, event_docs.dump_doc(doc)


_MARK_N = 987_654_321  # stands for n (event id, signal id) in the templates
_MARK_AT = datetime(2099, 12, 31, 23, 59, 58, tzinfo=UTC)  # stands for the event's created_at
_SEED_START = datetime(2026, 1, 1, tzinfo=UTC)


def event_rows(
    record: ActionSetRecord, count: int
) -> Iterator[tuple[int, int, int, int, str, datetime, str]]:
    """(id, action_set_id, signal_id, seq, state, created_at, doc) for events 1..count, oldest first.

    Seeding is set-up, not measurement, and building a million documents one by one took most of it:
    two templates (success, failed) are built once with marker values and the markers replaced per
    event; the first events are checked against documents built the normal way.
    """
    import re

    mark_at, mark_signal_at = iso(_MARK_AT), iso(_MARK_AT - timedelta(milliseconds=3))
    templates: dict[bool, tuple[str, list[str], list[str]]] = {}
    for failed in (False, True):
        n = _MARK_N + (10 - _MARK_N % 10 if failed else 1 if _MARK_N % 10 == 0 else 0)
        state, doc = _event_doc(record, n, _MARK_AT)
        markers = {str(n): "N", f"{n:016x}": "F", mark_at: "A", mark_signal_at: "S"}
        pieces = re.split("(" + "|".join(re.escape(m) for m in markers) + ")", doc)
        # Even positions are literal text, odd positions are markers (replaced by their kind).
        templates[failed] = (state, pieces[0::2], [markers[m] for m in pieces[1::2]])
    days: dict[int, str] = {}
    for n in range(1, count + 1):
        state, literals, kinds = templates[n % 10 == 0]
        day, second = divmod(n, 86_400)
        date = days.get(day)
        if date is None:
            date = days[day] = (_SEED_START + timedelta(days=day)).strftime("%Y-%m-%d")
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        clock = f"{date}T{hour:02d}:{minute:02d}:"
        values = {
            "N": str(n),
            "F": f"{n:016x}",
            "A": f"{clock}{sec:02d}.000Z",
            "S": f"{clock}{sec - 1:02d}.997Z" if sec else "",
        }
        if not sec:  # the signal's time falls in the previous minute (or day): format it the slow way
            values["S"] = iso(_SEED_START + timedelta(seconds=n, milliseconds=-3))
        parts = [literals[0]]
        for kind, literal in zip(kinds, literals[1:], strict=True):
            parts.append(values[kind])
            parts.append(literal)
        doc = "".join(parts)
        created_at = _SEED_START + timedelta(seconds=n)
        if n <= 20 or n in (60, 3600, 86_400) or n % 100_003 == 0:
            assert (state, doc) == _event_doc(record, n, created_at), f"template mismatch for event {n}"
        yield (n, record.id, n, n, state, created_at, doc)


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for a UTC datetime."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def seed_sqlite(path: str, record: ActionSetRecord, count: int) -> float:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # seeding only; the server runs with synchronous=FULL
        conn.execute("BEGIN")
        for batch in _batches(event_rows(record, count), BATCH):
            conn.executemany(
                "INSERT INTO action_set_event (id, action_set_id, signal_id, seq, state, created_at, "
                "updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(i, s, g, q, st, _sqlite_time(c), _sqlite_time(c), d) for i, s, g, q, st, c, d in batch],
            )
        conn.execute("UPDATE action_set SET last_event_seq = ? WHERE id = ?", (count, record.id))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        return float(
            conn.execute(
                "SELECT avg(length(doc)) FROM (SELECT doc FROM action_set_event LIMIT 1000)"
            ).fetchone()[0]
        )
    finally:
        conn.close()


async def seed_postgres(url: str, record: ActionSetRecord, count: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for batch in _batches(event_rows(record, count), BATCH):
                await conn.copy_records_to_table(
                    "action_set_event",
                    records=[(i, s, g, q, st, c, c, d) for i, s, g, q, st, c, d in batch],
                    columns=[
                        "id",
                        "action_set_id",
                        "signal_id",
                        "seq",
                        "state",
                        "created_at",
                        "updated_at",
                        "doc",
                    ],
                )
            await conn.execute("UPDATE action_set SET last_event_seq = $1 WHERE id = $2", count, record.id)
            await conn.execute("SELECT setval(pg_get_serial_sequence('action_set_event', 'id'), $1)", count)
        await conn.execute("VACUUM ANALYZE action_set_event")
        return float(
            await conn.fetchval(
                "SELECT avg(octet_length(doc)) FROM (SELECT doc FROM action_set_event LIMIT 1000) d"
            )
        )
    finally:
        await conn.close()


# --- measuring -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    count: int
    p50_ms: float
    p99_ms: float
    rps: float | None = None


def _timing(samples: list[float], rps: float | None = None) -> Timing:
    ordered = sorted(samples)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return Timing(count=len(ordered), p50_ms=pct(0.50), p99_ms=pct(0.99), rps=rps)


async def _time_calls(call: Callable[[], Awaitable[Any]], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def measure_in_process(
    db: Database, record: ActionSetRecord, offsets: tuple[int, ...], runs: int, naive_runs: int
) -> dict[int, tuple[Timing, Timing]]:
    """Per offset: (`list_event_docs` on its own connection, plain LIMIT/OFFSET on the same index)."""
    results: dict[int, tuple[Timing, Timing]] = {}
    naive = (
        sa.select(t.action_set_event.c.doc)
        .where(t.action_set_event.c.action_set_id == record.id)
        .order_by(t.action_set_event.c.seq.desc())
        .limit(LIMIT)
    )
    async with db.read() as conn:
        for offset in offsets:

            async def listing(offset: int = offset) -> bytes:
                return await event_store.list_event_docs(
                    conn, project=PROJECT, action_set_id=record.id, limit=LIMIT, offset=offset
                )

            async def plain(offset: int = offset) -> list[str]:
                return list((await conn.execute(naive.offset(offset))).scalars())

            body = orjson.loads(await listing())
            assert len(body["actionSetEvents"]) == LIMIT
            assert (await plain()) == [orjson.dumps(e).decode() for e in body["actionSetEvents"]]
            lean = _timing(await _time_calls(listing, runs, warmup=20))
            scan = _timing(await _time_calls(plain, naive_runs, warmup=1))
            results[offset] = (lean, scan)
            print(
                f"  in-process offset {offset:>9,}: list_event_docs p50 {lean.p50_ms:7.2f} ms p99 {lean.p99_ms:7.2f} ms"
                f" | LIMIT/OFFSET p50 {scan.p50_ms:8.2f} ms",
                flush=True,
            )
    return results


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bytes]:
    """One HTTP/1.1 request/response on a keep-alive connection: (status line, body)."""
    writer.write(request)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def _get_request(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = [f"GET {parts.path}?{parts.query} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return host, port, ("\r\n".join(head) + "\r\n\r\n").encode()


async def _sequential(url: str, headers: dict[str, str], count: int, *, warmup: int) -> Timing:
    """`count` requests back to back on one keep-alive connection (after `warmup`), each timed."""
    host, port, request = _get_request(url, headers)
    reader, writer = await asyncio.open_connection(host, port)
    samples: list[float] = []
    try:
        for n in range(warmup + count):
            started = time.perf_counter()
            status, _ = await _exchange(reader, writer, request)
            if b" 200 " not in status:
                raise SystemExit(f"unexpected answer {status!r} from {url}")
            if n >= warmup:
                samples.append(time.perf_counter() - started)
    finally:
        writer.close()
    return _timing(samples)


def _check_answer(body: bytes, offset: int, events_total: int) -> None:
    listed = orjson.loads(body)["actionSetEvents"]
    expected = min(LIMIT, max(0, events_total - offset))
    assert len(listed) == expected, (offset, len(listed))
    if expected:
        assert listed[0]["id"] == events_total - offset, (offset, listed[0]["id"])


@dataclass
class OffsetResult:
    latency: Timing  # sequential, page cache on (the server as shipped)
    latency_uncached: Timing  # sequential, page cache off (every request reads the page)
    rounds: list[Timing]  # throughput per round, page cache on
    uncached: Timing  # throughput, page cache off

    @property
    def rps(self) -> float:
        return statistics.median(t.rps or 0.0 for t in self.rounds)


@dataclass
class PeerResult:
    events: int
    latency: Timing
    rounds: list[Timing]

    @property
    def rps(self) -> float:
        return statistics.median(t.rps or 0.0 for t in self.rounds)


def _throughput(url: str, headers: dict[str, str], args: argparse.Namespace) -> Timing:
    result = run_load(
        url,
        body=b"",
        headers=headers,
        connections=args.connections,
        duration=args.duration,
        warmup=1.0,
        tool=args.tool,
        method="GET",
    )
    if result.errors:
        raise SystemExit(f"{result.errors} errors on {url}")
    return Timing(count=result.requests, p50_ms=result.p50_ms, p99_ms=result.p99_ms, rps=result.rps)


def _serve_env(database_url: str, admin: str, *, page_cache: bool) -> dict[str, str]:
    return {
        "SWITCHMAN_DATABASE_URL": database_url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_LOG_LEVEL": "WARNING",
        "SWITCHMAN_RUN_WORKER": "false",
        "SWITCHMAN_SIGNAL_RETENTION_DAYS": "0",
        **({} if page_cache else {"SWITCHMAN_EVENT_PAGE_CACHE_BYTES": "0"}),
    }


def measure_http(
    database_url: str,
    record: ActionSetRecord,
    args: argparse.Namespace,
    offsets: tuple[int, ...],
    unleash: Unleash | None,
    peer: PeerResult | None,
) -> dict[int, OffsetResult]:
    """Two servers on the database, page cache on and off; throughput rounds alternate with Unleash's."""
    import httpx

    admin = f"*:*.{secrets.token_hex(16)}"
    headers = {"Authorization": admin}
    ports = {True: free_port(), False: free_port()}
    bases = {cached: f"http://127.0.0.1:{port}" for cached, port in ports.items()}
    results: dict[int, OffsetResult] = {}
    with contextlib.ExitStack() as stack:
        for cached, port in ports.items():
            command = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]
            env = _serve_env(database_url, admin, page_cache=cached)
            stack.enter_context(running(command, env=env, ready_url=f"{bases[cached]}/health"))
        paths = {
            offset: f"/api/admin/projects/{PROJECT}/actions/{record.id}/events?limit={LIMIT}&offset={offset}"
            for offset in offsets
        }
        with httpx.Client(headers=headers) as http:
            for offset, path in paths.items():
                for base in bases.values():
                    first = http.get(base + path)
                    assert first.status_code == 200, first.text
                    _check_answer(first.content, offset, args.events)
        latency = {
            (offset, cached): asyncio.run(
                _sequential(bases[cached] + path, headers, args.requests, warmup=50)
            )
            for offset, path in paths.items()
            for cached in (True, False)
        }
        rounds: dict[int, list[Timing]] = {offset: [] for offset in offsets}
        for round_number in range(1, args.rounds + 1):
            for offset, path in paths.items():
                timing = _throughput(bases[True] + path, headers, args)
                rounds[offset].append(timing)
                print(f"  round {round_number} offset {offset:>9,}: {timing.rps or 0:7.0f} req/s", flush=True)
            if unleash is not None and peer is not None:
                timing = _throughput(unleash.base + UNLEASH_EVENTS, unleash.headers, args)
                peer.rounds.append(timing)
                print(
                    f"  round {round_number} Unleash /api/admin/events: {timing.rps or 0:7.0f} req/s",
                    flush=True,
                )
        for offset, path in paths.items():
            uncached = _throughput(bases[False] + path, headers, args)
            results[offset] = OffsetResult(
                latency=latency[(offset, True)],
                latency_uncached=latency[(offset, False)],
                rounds=rounds[offset],
                uncached=uncached,
            )
            r = results[offset]
            print(
                f"  HTTP offset {offset:>9,}: sequential p50 {r.latency.p50_ms:6.2f} ms p99 {r.latency.p99_ms:6.2f} ms "
                f"(cache off: p99 {r.latency_uncached.p99_ms:6.2f} ms) | {args.connections} conns "
                f"{r.rps:7.0f} req/s (cache off: {uncached.rps or 0:7.0f} req/s)",
                flush=True,
            )
    return results


# --- orchestration ---------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    database: str
    seed_seconds: float
    doc_bytes: float
    in_process: dict[int, tuple[Timing, Timing]]
    http: dict[int, OffsetResult]
    load_average: tuple[float, float]  # 1-minute load average before and after the HTTP measurements


async def _prepare(database_url: str) -> tuple[Database, ActionSetRecord]:
    await migrate(to_async_url(database_url))
    db = Database(to_async_url(database_url))
    return db, await create_action_set(db)


def run_backend(
    database: str,
    args: argparse.Namespace,
    offsets: tuple[int, ...],
    unleash: Unleash | None,
    peer: PeerResult | None,
) -> BackendResult:
    print(f"{database}: seeding {args.events:,} events …", flush=True)
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return _run(f"sqlite:///{tmp}/bench.db", database, args, offsets, unleash, peer)
    name = f"switchman_bench_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        return _run(f"{PG_SERVER}/{name}", database, args, offsets, unleash, peer)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run(
    database_url: str,
    database: str,
    args: argparse.Namespace,
    offsets: tuple[int, ...],
    unleash: Unleash | None,
    peer: PeerResult | None,
) -> BackendResult:
    async def prepare_and_seed() -> tuple[ActionSetRecord, float, float]:
        db, record = await _prepare(database_url)
        await db.dispose()
        started = time.perf_counter()
        if database == "sqlite":
            doc_bytes = await asyncio.to_thread(
                seed_sqlite, database_url.removeprefix("sqlite:///"), record, args.events
            )
        else:
            doc_bytes = await seed_postgres(database_url, record, args.events)
        return record, time.perf_counter() - started, doc_bytes

    record, seed_seconds, doc_bytes = asyncio.run(prepare_and_seed())
    print(f"  seeded in {seed_seconds:.0f} s, documents ≈ {doc_bytes:,.0f} bytes", flush=True)

    async def in_process() -> dict[int, tuple[Timing, Timing]]:
        db = Database(to_async_url(database_url))
        try:
            return await measure_in_process(db, record, offsets, args.requests, args.naive_runs)
        finally:
            await db.dispose()

    measured_in_process = asyncio.run(in_process())
    load_before = os.getloadavg()[0]
    measured_http = measure_http(database_url, record, args, offsets, unleash, peer)
    load = (load_before, os.getloadavg()[0])
    return BackendResult(database, seed_seconds, doc_bytes, measured_in_process, measured_http, load)


def machine_notes(tool: str) -> list[str]:
    try:
        pg_version = str(asyncio.run(pg_fetchval("SHOW server_version"))).split()[0]
    except Exception:  # notes only
        pg_version = "n/a"
    return [
        machine_description(),
        f"SQLite {sqlite3.sqlite_version} (WAL), PostgreSQL {pg_version}, same machine",
        f"load generators: asyncio client (sequential latency); {'wrk, 1 thread' if tool == 'wrk' else 'bench._load asyncio client'} "
        "(throughput); loopback; servers, databases and load generator share the CPUs",
    ]


def command_line(args: argparse.Namespace) -> str:
    return (
        f"python -m bench.events_listing --events {args.events} --requests {args.requests} "
        f"--connections {args.connections} --duration {args.duration:g} --rounds {args.rounds} "
        f"--databases {args.databases}" + ("" if args.unleash else " --no-unleash")
    )


def render_section(
    results: list[BackendResult],
    args: argparse.Namespace,
    offsets: tuple[int, ...],
    peer: PeerResult | None,
) -> str:
    worst = max(r.latency.p99_ms for result in results for r in result.http.values())
    lines = [
        SECTION,
        "",
        f"`GET /api/admin/projects/{{projectId}}/actions/{{id}}/events?limit={LIMIT}&offset=k` on one action set "
        f"holding {args.events:,} events (documents ≈ {results[0].doc_bytes:,.0f} bytes, so a page is "
        f"≈ {results[0].doc_bytes * LIMIT / 1024:,.0f} KB of JSON), through the real server "
        "(`switchman serve --no-worker`, uvicorn subprocess, admin token), against Unleash OSS "
        "`GET /api/admin/events` (its newest 100 events, on its own data: 100 flags created and toggled "
        "through its admin API) in the same run — comparison 3.",
        "",
        f"Command: `make bench-events` (`{command_line(args)}`), run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Latency: one keep-alive connection, {args.requests} requests back to back per offset after 50 "
        "warm-up requests (a minimal asyncio HTTP/1.1 client; its own cost is included). Throughput: "
        f"{args.connections} connections for {args.duration:g} s after 1 s of warm-up, {args.rounds} rounds "
        "alternating with Unleash (median shown). Goal: ≥ 10x Unleash's requests/s and p99 ≤ 10 ms at offset "
        f"0 and 900,000 — worst sequential p99 here: **{worst:.2f} ms**.",
        "",
        '"cache off" is a second server on the same database with `SWITCHMAN_EVENT_PAGE_CACHE_BYTES=0`: '
        "every request reads its page from the database (what a page costs while new events keep arriving "
        "for that set). The settled-page cache and the other optimisations: ADR 0011.",
        "",
    ]
    if peer is not None and peer.rounds:
        lines += [
            f"Unleash OSS `GET /api/admin/events` ({peer.events:,} events stored): sequential p50 "
            f"{peer.latency.p50_ms:.2f} ms, p99 {peer.latency.p99_ms:.2f} ms; {args.connections} connections "
            f"**{peer.rps:,.0f} req/s** (rounds: {' / '.join(f'{t.rps or 0:,.0f}' for t in peer.rounds)}), "
            f"p99 under load {statistics.median(t.p99_ms for t in peer.rounds):.0f} ms; "
            f"**{peer.rps * _unleash_page(peer):,.0f} events/s** ({_unleash_page(peer)} events a page).",
            "",
        ]
    lines += [
        "| database | offset | p50 ms | p99 ms | p99 ms, cache off | req/s | req/s, cache off | x Unleash (req/s) "
        f"| events/s ({LIMIT} a page) | x Unleash (events/s) | p99 ms under load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for offset in offsets:
            r = result.http[offset]
            times = f"**{r.rps / peer.rps:.1f}x**" if peer is not None and peer.rps else "n/a"
            event_times = f"**{_events_ratio(r.rps, peer):.1f}x**" if peer is not None and peer.rps else "n/a"
            lines.append(
                f"| {result.database} | {offset:,} | {r.latency.p50_ms:.2f} | {r.latency.p99_ms:.2f} | "
                f"{r.latency_uncached.p99_ms:.2f} | {r.rps:,.0f} | {r.uncached.rps or 0:,.0f} | {times} | "
                f"{r.rps * LIMIT:,.0f} | {event_times} | {statistics.median(t.p99_ms for t in r.rounds):.2f} |"
            )
    lines += [
        "",
        "The database part alone, in-process on one open connection: `event_store.list_event_docs` without the "
        "page cache (one statement, an index range scan bounded by the set's `last_event_seq`, then the "
        f"concatenation of 50 stored documents; {args.requests} runs after 20 warm-up runs), against the plain "
        f"`ORDER BY seq DESC LIMIT 50 OFFSET k` on the same index ({args.naive_runs} runs):",
        "",
        "| database | offset | list_event_docs p50 ms | p99 ms | LIMIT/OFFSET p50 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for result in results:
        for offset in offsets:
            lean, scan = result.in_process[offset]
            lines.append(
                f"| {result.database} | {offset:,} | {lean.p50_ms:.2f} | {lean.p99_ms:.2f} | {scan.p50_ms:.2f} |"
            )
    lines += ["", "Seeding (bulk insert, not part of the measurement): "]
    lines[-1] += ", ".join(f"{r.database} {r.seed_seconds:.0f} s" for r in results) + "."
    lines += ["", "Machine:", ""]
    lines += [f"- {note}" for note in machine_notes(args.tool)]
    lines.append(
        "- 1-minute load average around the HTTP measurements (other work shared the machine when above "
        "≈0.5): "
        + ", ".join(f"{r.database} {r.load_average[0]:.1f} → {r.load_average[1]:.1f}" for r in results)
    )
    lines.append("")
    return "\n".join(lines)


def _unleash_page(peer: PeerResult) -> int:
    """Events in one answer of Unleash's listing: its newest 100, or all it has."""
    return min(UNLEASH_PAGE_EVENTS, peer.events) or 1


def _events_ratio(rps: float, peer: PeerResult) -> float:
    """switchman's events/s over Unleash's events/s."""
    return rps * LIMIT / (peer.rps * _unleash_page(peer))


def result_rows(results: list[BackendResult], peer: PeerResult | None) -> list[ResultRow]:
    rows: list[ResultRow] = []
    if peer is not None and peer.rounds:
        rows.append(ResultRow(C3_LISTING_UNLEASH, "Unleash OSS GET /api/admin/events", peer.rps, "req/s"))
        rows.append(
            ResultRow(
                C3_LISTING_UNLEASH,
                "Unleash OSS GET /api/admin/events p99 sequential",
                peer.latency.p99_ms,
                "ms",
            )
        )
    for result in results:
        for offset, r in result.http.items():
            name = f"{result.database} offset {offset:,}"
            rows.append(ResultRow(C3_LISTING_UNLEASH, f"{name} req/s", r.rps, "req/s"))
            rows.append(
                ResultRow(C3_LISTING_UNLEASH, f"{name} req/s, page cache off", r.uncached.rps or 0.0, "req/s")
            )
            if peer is not None and peer.rps:
                ratio = r.rps / peer.rps
                rows.append(
                    ResultRow(
                        C3_LISTING_UNLEASH,
                        f"{name} / Unleash events",
                        round(ratio, 2),
                        "x",
                        "≥ 10x",
                        ratio >= 10,
                    )
                )
                events_ratio = _events_ratio(r.rps, peer)
                rows.append(
                    ResultRow(
                        C3_LISTING_UNLEASH,
                        f"{name} / Unleash events, in events/s",
                        round(events_ratio, 2),
                        "x",
                        "≥ 10x",
                        events_ratio >= 10,
                    )
                )
            rows.append(
                ResultRow(
                    C3_LISTING_UNLEASH,
                    f"{name} p99 sequential",
                    r.latency.p99_ms,
                    "ms",
                    "≤ 10 ms",
                    r.latency.p99_ms <= 10,
                )
            )
            rows.append(
                ResultRow(
                    C3_LISTING_UNLEASH,
                    f"{name} p99 sequential, page cache off",
                    r.latency_uncached.p99_ms,
                    "ms",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500, help="sequential requests measured per offset")
    parser.add_argument("--naive-runs", type=int, default=3, help="runs of the plain LIMIT/OFFSET query")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds alternating with Unleash")
    parser.add_argument("--tool", choices=["wrk", "python"], default=None)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--no-unleash", dest="unleash", action="store_false", help="skip the Unleash peer")
    parser.add_argument("--unleash-toggle-rounds", type=int, default=2, help="on/off passes seeding Unleash")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 events, 1 short round")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.events, args.requests, args.naive_runs, args.duration, args.rounds = 20_000, 100, 1, 2.0, 1
    if args.tool is None:
        args.tool = "wrk" if wrk_available() else "python"
    started_at = now_iso()
    offsets = tuple(o for o in DEFAULT_OFFSETS if o < args.events)
    if args.events > LIMIT and DEFAULT_OFFSETS[-1] >= args.events:
        offsets = (*offsets, args.events - LIMIT)
    with contextlib.ExitStack() as stack:
        unleash, peer = None, None
        if args.unleash:
            unleash = stack.enter_context(running_unleash())
            stored = seed(unleash, flags=100, toggle_rounds=args.unleash_toggle_rounds)
            peer_latency = asyncio.run(
                _sequential(unleash.base + UNLEASH_EVENTS, unleash.headers, 200, warmup=20)
            )
            peer = PeerResult(events=stored, latency=peer_latency, rounds=[])
            print(
                f"Unleash: {stored} events; sequential p50 {peer_latency.p50_ms:.2f} ms p99 {peer_latency.p99_ms:.2f} ms",
                flush=True,
            )
        results = [
            run_backend(database.strip(), args, offsets, unleash, peer)
            for database in args.databases.split(",")
        ]
    path = write_results("events_listing", command_line(args), started_at, result_rows(results, peer))
    print(f"wrote {path.relative_to(ROOT)}")
    if not args.no_write:
        write_section(SECTION, render_section(results, args, offsets, peer))
        print(f"wrote {BENCHMARKS_MD.relative_to(ROOT)} ({SECTION})")


if __name__ == "__main__":
    main()
