"""Signal → event latency at a steady rate, through the real server with its in-process worker.

For each database: a fresh database, `switchman serve` (worker on) as a subprocess, then two action
sets on one signal endpoint — `state IN [firing]` turns a flag off, `state IN [resolved]` turns it on —
and signals alternating between the two at a steady `--rate` for `--duration` seconds, so every signal
makes exactly one event with one real flag change. Latency of a signal = the event's final
`updated_at` (written by the worker) minus the moment the ingest reply was received (same machine, same
clock), and also minus the moment the request was sent.

    python -m bench.latency [--rate 100] [--duration 20] [--databases sqlite,postgresql] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import sqlalchemy as sa

from bench._pg import PG_SERVER, pg_admin
from bench._report import percentile, write_section
from bench._server import free_port, running, stop
from switchman.config import to_async_url
from switchman.db import tables as t
from switchman.db.engine import Database

HEADING = "## Signal → event latency"
OUT_DIR = Path(__file__).resolve().parent / "out"


def machine() -> str:
    cpus = os.cpu_count() or 0
    return f"{platform.processor() or platform.machine()}, {cpus} logical CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def machine_notes(load_before: float, load_after: float) -> list[str]:
    return [
        f"Machine: {machine()}; PostgreSQL, the load processes and switchman share the CPUs. "
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} (other work on the "
        "machine skews single runs)."
    ]


def write_json(module: str, command: str, started: datetime, rows: list[dict[str, Any]]) -> None:
    """bench/out/<module>.json in the benchmarks' common shape."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "module": module,
        "command": command,
        "started_at": started.isoformat(),
        "machine": machine(),
        "rows": rows,
    }
    (OUT_DIR / f"{module}.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


ADMIN = "*:*.bench-latency-admin-secret"


@dataclass(frozen=True)
class Sent:
    signal_id: int
    sent_at: float
    replied_at: float


@dataclass(frozen=True)
class Row:
    database: str
    topology: str
    signals: int
    rate: float
    from_reply: list[float]
    from_send: list[float]
    ingest_ms: list[float]


@dataclass(frozen=True)
class Scenario:
    endpoint: str
    endpoint_id: int
    token: str


async def setup_scenario(base: str) -> Scenario:
    """Feature, Admin service account, endpoint + token, two action sets (`on-firing` turns the flag off,
    `on-resolved` turns it on) through the admin API."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": ADMIN}, timeout=10) as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(path, json=body)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

        await post("/api/admin/projects/default/features", {"name": "bench-flag"})
        actor = await post(
            "/api/admin/service-account", {"username": "bench-bot", "name": "Bench", "rootRole": 1}
        )
        endpoint = await post("/api/admin/signal-endpoints", {"name": "bench-apm"})
        token = await post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", {"name": "bench"})
        for state, action in (("firing", "TOGGLE_FEATURE_OFF"), ("resolved", "TOGGLE_FEATURE_ON")):
            await post(
                "/api/admin/projects/default/actions",
                {
                    "name": f"on-{state}",
                    "actorId": actor["id"],
                    "match": {
                        "source": "signal-endpoint",
                        "sourceId": endpoint["id"],
                        "payload": {"alert.state": {"operator": "IN", "values": [state]}},
                    },
                    "actions": [
                        {
                            "action": action,
                            "sortOrder": 1,
                            "executionParams": {
                                "project": "default",
                                "environment": "production",
                                "featureName": "bench-flag",
                            },
                        }
                    ],
                },
            )
        return Scenario(endpoint["name"], int(endpoint["id"]), token["token"])


async def _send_steady(base: str, endpoint: str, token: str, *, rate: float, duration: float) -> list[Sent]:
    """Send `rate * duration` signals on a schedule over a few raw keep-alive connections (a light client,
    so the load generator takes little of the CPU it shares with the server)."""
    count = int(rate * duration)
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(await asyncio.open_connection(host, port))
    sent: list[Sent] = []

    async def one(n: int) -> None:
        body = orjson.dumps(
            {"alert": {"state": "firing" if n % 2 == 0 else "resolved", "n": n, "service": "checkout"}}
        )
        request = (
            f"POST /api/signal-endpoint/{endpoint} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        reader, writer = await pool.get()
        started = time.time()
        writer.write(request)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        reply = await reader.readexactly(length)
        replied = time.time()
        pool.put_nowait((reader, writer))
        if b" 200 " not in status:
            raise RuntimeError(f"ingest answered {status!r}: {reply[:200]!r}")
        sent.append(Sent(orjson.loads(reply)["signals"][0]["id"], started, replied))

    tasks = []
    start = time.monotonic()
    for n in range(count):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return sent


async def _final_times(url: str, expected: int, wait_seconds: float = 120) -> dict[int, datetime]:
    db = Database(to_async_url(url), pool_size=1)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            async with db.read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(t.action_set_event.c.signal_id, t.action_set_event.c.updated_at).where(
                            t.action_set_event.c.state != "started"
                        )
                    )
                ).all()
            if len(rows) >= expected or time.monotonic() > deadline:
                return {row.signal_id: row.updated_at for row in rows}
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def run_backend(database: str, args: argparse.Namespace, *, separate_worker: bool = False) -> Row:
    with tempfile.TemporaryDirectory() as scratch:
        if database == "sqlite":
            url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        else:
            name = f"switchman_bench_latency_{secrets.token_hex(3)}"
            asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
            url = f"{PG_SERVER}/{name}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "SWITCHMAN_DATABASE_URL": url,
            "SWITCHMAN_INIT_ADMIN_API_TOKENS": ADMIN,
            "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0",
            "SWITCHMAN_SIGNAL_RETENTION_DAYS": "0",
            "SWITCHMAN_LOG_LEVEL": "WARNING",
            "SWITCHMAN_RUN_WORKER": "false" if separate_worker else "true",
        }
        worker: subprocess.Popen[bytes] | None = None
        try:
            with running(
                [sys.executable, "-m", "switchman", "serve", "--port", str(port)],
                env=env,
                ready_url=f"{base}/health",
            ):
                if separate_worker:  # after `serve` has migrated the database
                    worker = subprocess.Popen(
                        [sys.executable, "-m", "switchman", "worker"],
                        env={**os.environ, **env, "SWITCHMAN_MIGRATE_ON_START": "false"},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                scenario = asyncio.run(setup_scenario(base))
                endpoint, token = scenario.endpoint, scenario.token
                # Warm-up: a few signals so connection pools and code paths are hot.
                asyncio.run(_send_steady(base, endpoint, token, rate=50, duration=1))
                asyncio.run(_final_times(url, 50))
                sent = asyncio.run(
                    _send_steady(base, endpoint, token, rate=args.rate, duration=args.duration)
                )
                finals = asyncio.run(_final_times(url, 50 + len(sent)))
        finally:
            if worker is not None:
                stop(worker)
            if database != "sqlite":
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))
    missing = [s.signal_id for s in sent if s.signal_id not in finals]
    if missing:
        raise RuntimeError(f"{len(missing)} signals never reached a final event state")
    from_reply = sorted((finals[s.signal_id].timestamp() - s.replied_at) * 1000 for s in sent)
    from_send = sorted((finals[s.signal_id].timestamp() - s.sent_at) * 1000 for s in sent)
    ingest = sorted((s.replied_at - s.sent_at) * 1000 for s in sent)
    topology = "serve + `switchman worker`" if separate_worker else "serve (in-process worker)"
    return Row(database, topology, len(sent), args.rate, from_reply, from_send, ingest)


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{percentile(values, q):.1f}" for q in (0.5, 0.9, 0.99)) + f" / {values[-1]:.1f}"


def render(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        HEADING,
        "",
        f"`make bench-latency` (`python -m bench.latency --rate {args.rate:g} --duration {args.duration:g}`), "
        f"measured {datetime.now(UTC):%Y-%m-%d} on the 2-core machine that also runs the load generator and the "
        "database. `switchman serve` with its in-process worker; two action sets on one endpoint, signals "
        "alternating so that each one makes exactly one event with one real flag change (embedded store). "
        "Latency = the event's final `updated_at` minus the time the ingest reply (200, signal committed) "
        'was received; "from send" counts from the moment the request left the client.',
        "",
        "| database | processes | signals | rate/s | reply → final p50 / p90 / p99 / max (ms) | send → final p50 / p90 / p99 / max (ms) | ingest reply p50 / p90 / p99 / max (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.database} | {row.topology} | {row.signals} | {row.rate:g} | {_fmt(row.from_reply)} | {_fmt(row.from_send)} "
            f"| {_fmt(row.ingest_ms)} |"
        )
    lines += ["", "Goal: p99 ≤ 50 ms end to end.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    plans = [(database.strip(), False) for database in args.databases.split(",")]
    if "postgresql" in args.databases:
        plans.append(("postgresql", True))
    for database, separate in plans:
        row = run_backend(database, args, separate_worker=separate)
        print(
            f"{row.database} / {row.topology}: reply→final p50/p90/p99/max {_fmt(row.from_reply)} ms; "
            f"send→final {_fmt(row.from_send)} ms",
            flush=True,
        )
        rows.append(row)
    if not args.no_write:
        write_section(HEADING, render(rows, args))


if __name__ == "__main__":
    main()
