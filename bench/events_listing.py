"""Events listing benchmark: `GET …/actions/{id}/events?limit=50&offset=k` at 1,000,000 stored events.

    make bench-events            # = python -m bench.events_listing
    python -m bench.events_listing --events 1000000 --requests 500 [--databases sqlite,postgresql] [--no-write]

For each database (a fresh SQLite file, then a fresh PostgreSQL database on SWITCHMAN_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432):
1. migrate, create one action set (three actions, two filters) through the repository, and bulk-insert
   `--events` events into it (~1.5 KB documents built by `event_docs`, as the worker writes them;
   COPY on PostgreSQL, executemany on SQLite);
2. in-process, time `events.list_event_docs` (the database part of the listing) at each offset, and for
   contrast the plain `ORDER BY seq DESC LIMIT 50 OFFSET k` on the same index;
3. start `switchman serve --no-worker` (uvicorn subprocess) and measure the HTTP listing at each offset:
   latency with one keep-alive connection sending requests back to back (`--requests` measured after a
   warm-up), then throughput with `--connections` connections for `--duration` seconds (wrk when
   installed, else an asyncio client).
Every answer is checked (status 200, 50 events, the expected newest id). Results go to stdout and to the
`## Events listing` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa

from bench._data import alert_payload
from bench._pg import PG_SERVER, pg_admin, pg_fetchval
from bench._report import BENCHMARKS_MD, ROOT, write_section
from bench._server import free_port, running
from switchman.action_sets import event_docs, events
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
DEFAULT_OFFSETS = (0, 1_000, 100_000, 500_000, 999_950)
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


def event_rows(
    record: ActionSetRecord, count: int
) -> Iterator[tuple[int, int, int, int, str, datetime, str]]:
    """(id, action_set_id, signal_id, seq, state, created_at, doc) for events 1..count, oldest first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(1, count + 1):
        created_at = start + timedelta(seconds=n)
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
        yield (n, record.id, n, n, state, created_at, event_docs.dump_doc(doc))


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
                return await events.list_event_docs(
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


def _wrk_get(url: str, headers: dict[str, str], connections: int, duration: float) -> Timing:
    script = (
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %.1f %.1f %d\\n", summary.requests, summary.duration,\n'
        "    latency:percentile(50), latency:percentile(99), summary.errors.connect + summary.errors.read +\n"
        "    summary.errors.write + summary.errors.status + summary.errors.timeout))\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = handle.name
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        completed = subprocess.run(
            [*command, "-s", script_path, url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        )
    finally:
        Path(script_path).unlink(missing_ok=True)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, errors = (float(x) for x in line.split()[1:])
    if errors:
        raise SystemExit(f"wrk saw {errors:.0f} errors on {url}")
    return Timing(
        count=int(requests), p50_ms=p50_us / 1000, p99_ms=p99_us / 1000, rps=requests / (duration_us / 1e6)
    )


async def _python_get(url: str, headers: dict[str, str], connections: int, duration: float) -> Timing:
    host, port, request = _get_request(url, headers)
    stop_at = time.perf_counter() + duration
    samples: list[float] = []

    async def loop() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                status, _ = await _exchange(reader, writer, request)
                if b" 200 " not in status:
                    raise SystemExit(f"unexpected answer {status!r} from {url}")
                samples.append(time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(loop() for _ in range(connections)))
    return _timing(samples, rps=len(samples) / duration)


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


def measure_http(
    database_url: str, record: ActionSetRecord, args: argparse.Namespace, offsets: tuple[int, ...]
) -> dict[int, tuple[Timing, Timing]]:
    import httpx

    port = free_port()
    admin = f"*:*.{secrets.token_hex(16)}"
    env = {
        "SWITCHMAN_DATABASE_URL": database_url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_LOG_LEVEL": "WARNING",
        "SWITCHMAN_RUN_WORKER": "false",
        "SWITCHMAN_SIGNAL_RETENTION_DAYS": "0",
    }
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": admin}
    command = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]
    results: dict[int, tuple[Timing, Timing]] = {}
    use_wrk = args.tool == "wrk"
    with (
        running(command, env=env, ready_url=f"{base}/health"),
        httpx.Client(base_url=base, headers=headers) as http,
    ):
        for offset in offsets:
            path = f"/api/admin/projects/{PROJECT}/actions/{record.id}/events?limit={LIMIT}&offset={offset}"
            first = http.get(path)
            assert first.status_code == 200, first.text
            _check_answer(first.content, offset, args.events)
            latency = asyncio.run(_sequential(base + path, headers, args.requests, warmup=50))
            if use_wrk:
                _wrk_get(base + path, headers, args.connections, 1)  # warm-up
                throughput = _wrk_get(base + path, headers, args.connections, args.duration)
            else:
                throughput = asyncio.run(_python_get(base + path, headers, args.connections, args.duration))
            results[offset] = (latency, throughput)
            print(
                f"  HTTP offset {offset:>9,}: sequential p50 {latency.p50_ms:6.2f} ms p99 {latency.p99_ms:6.2f} ms | "
                f"{args.connections} conns {throughput.rps or 0:7.0f} req/s p50 {throughput.p50_ms:6.2f} ms "
                f"p99 {throughput.p99_ms:6.2f} ms",
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
    http: dict[int, tuple[Timing, Timing]]
    load_average: tuple[float, float]  # 1-minute load average before and after the HTTP measurements


async def _prepare(database_url: str) -> tuple[Database, ActionSetRecord]:
    await migrate(to_async_url(database_url))
    db = Database(to_async_url(database_url))
    return db, await create_action_set(db)


def run_backend(database: str, args: argparse.Namespace, offsets: tuple[int, ...]) -> BackendResult:
    print(f"{database}: seeding {args.events:,} events …", flush=True)
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return _run(f"sqlite:///{tmp}/bench.db", database, args, offsets)
    name = f"switchman_bench_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        return _run(f"{PG_SERVER}/{name}", database, args, offsets)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run(
    database_url: str, database: str, args: argparse.Namespace, offsets: tuple[int, ...]
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
    measured_http = measure_http(database_url, record, args, offsets)
    load = (load_before, os.getloadavg()[0])
    return BackendResult(database, seed_seconds, doc_bytes, measured_in_process, measured_http, load)


def machine_notes(tool: str) -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    try:
        pg_version = str(asyncio.run(pg_fetchval("SHOW server_version"))).split()[0]
    except Exception:  # notes only
        pg_version = "n/a"
    return [
        f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version} (WAL), PostgreSQL {pg_version}, "
        "same machine",
        f"load generators: asyncio client (sequential latency); {'wrk, 1 thread' if tool == 'wrk' else 'asyncio client'} "
        "(throughput); loopback; server, database and load generator share the CPUs",
    ]


_LOAD_NOTE = (
    "Tail latency depends on other work on these 2 shared CPUs (see the load average below): earlier runs "
    "taken while other benchmarks shared the machine (load average 2-4) measured sequential p99 of 10-19 ms "
    "at some offsets, unrelated to the offset; the database part stayed flat."
)


def render_section(results: list[BackendResult], args: argparse.Namespace, offsets: tuple[int, ...]) -> str:
    worst = max(timing.p99_ms for r in results for timing, _ in r.http.values())
    lines = [
        SECTION,
        "",
        f"`GET /api/admin/projects/{{projectId}}/actions/{{id}}/events?limit={LIMIT}&offset=k` on one action set "
        f"holding {args.events:,} events (documents ≈ {results[0].doc_bytes:,.0f} bytes, so a page is "
        f"≈ {results[0].doc_bytes * LIMIT / 1024:,.0f} KB of JSON), through the real server "
        "(`switchman serve --no-worker`, uvicorn subprocess, admin token).",
        "",
        f"Command: `make bench-events` (`python -m bench.events_listing --events {args.events} --requests "
        f"{args.requests} --connections {args.connections} --duration {args.duration:g}`), run "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Latency: one keep-alive connection, {args.requests} requests back to back per offset after 50 "
        f"warm-up requests (a minimal asyncio HTTP/1.1 client; its own cost is included). Throughput: {args.connections} "
        f"connections for {args.duration:g} s. Goal: listing p99 ≤ 10 ms at any offset — worst measured "
        f"sequential p99 here: **{worst:.2f} ms**.",
        "",
        _LOAD_NOTE,
        "",
        "| database | offset | p50 ms | p99 ms | req/s | p50 ms under load | p99 ms under load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for offset in offsets:
            latency, throughput = result.http[offset]
            lines.append(
                f"| {result.database} | {offset:,} | {latency.p50_ms:.2f} | {latency.p99_ms:.2f} | "
                f"{throughput.rps or 0:,.0f} | {throughput.p50_ms:.2f} | {throughput.p99_ms:.2f} |"
            )
    lines += [
        "",
        "The database part alone, in-process on one open connection: `events.list_event_docs` (one "
        "statement, an index range scan bounded by the set's `last_event_seq`, then the concatenation of "
        f"50 stored documents; {args.requests} runs after 20 warm-up runs), against the plain "
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500, help="sequential requests measured per offset")
    parser.add_argument("--naive-runs", type=int, default=5, help="runs of the plain LIMIT/OFFSET query")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--tool", choices=["wrk", "python"], default=None)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    if args.tool is None:
        args.tool = "wrk" if shutil.which("wrk") else "python"
    offsets = tuple(o for o in DEFAULT_OFFSETS if o < args.events) or (0,)
    if args.events >= LIMIT and DEFAULT_OFFSETS[-1] >= args.events:
        offsets = (*offsets, args.events - LIMIT)
    results = [run_backend(database.strip(), args, offsets) for database in args.databases.split(",")]
    for result in results:
        for offset in offsets:
            latency, _ = result.http[offset]
            print(
                f"{result.database:10} offset {offset:>9,}: p50 {latency.p50_ms:.2f} ms  p99 {latency.p99_ms:.2f} ms"
            )
    if not args.no_write:
        write_section(SECTION, render_section(results, args, offsets))
        print(f"wrote {BENCHMARKS_MD.relative_to(ROOT)} ({SECTION})")


if __name__ == "__main__":
    main()
