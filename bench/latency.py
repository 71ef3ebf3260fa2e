"""Signal → flag latency at 10, 100 and 1,000 signals/s, through the real server and its worker.

For each database: a fresh database, `switchman serve` as a subprocess (its in-process worker; on
each database also `serve --no-worker` next to a `switchman worker` process), then two action sets on one
signal endpoint — `state IN [firing]` turns a flag off, `state IN [resolved]` turns it on — and signals
alternating between the two, sent open-loop on a fixed schedule at each `--rates` value by a sender
running in its own process (`python -m bench.latency --sender …`), so every signal makes exactly one
event with one real flag change. "Flag changed" = the final `updated_at` of the signal's action set
event: written by the worker in the same transaction as the flag change, after the change, just before
the commit (same machine, same clock). Latency = that moment minus the moment the ingest reply (200:
the signal is committed) was received; "from schedule" counts from the moment the request was due.

    make bench-latency        # = python -m bench.latency
    python -m bench.latency [--rates 10,100,1000] [--databases sqlite,postgresql] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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

from bench._data import ALERT_STATE_ACTIONS, alert_state_action_set
from bench._pg import PG_SERVER, pg_admin
from bench._report import (
    C4_LATENCY,
    ResultRow,
    machine_description,
    now_iso,
    percentile,
    write_results,
    write_section,
)
from bench._server import free_port, running, stop
from switchman.config import to_async_url
from switchman.db import tables as t
from switchman.db.engine import Database

HEADING = "## Signal to flag latency"
OLD_HEADING = "## Signal → event latency"
MODULE = "latency"


def machine_notes(load_before: float, load_after: float) -> list[str]:
    return [
        f"Machine: {machine_description()}; PostgreSQL, the load processes and switchman share the CPUs. "
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f} (other work on the "
        "machine skews single runs)."
    ]


ADMIN = "*:*.bench-latency-admin-secret"


@dataclass(frozen=True)
class Sent:
    signal_id: int
    due_at: float
    replied_at: float


@dataclass(frozen=True)
class Row:
    database: str
    topology: str
    signals: int
    rate: float
    achieved_rate: float
    from_reply: list[float]
    from_due: list[float]
    ingest_ms: list[float]


@dataclass(frozen=True)
class Scenario:
    endpoint: str
    endpoint_id: int
    token: str
    set_ids: tuple[int, ...]  # in `ALERT_STATE_ACTIONS` order: on-firing, on-resolved


async def setup_scenario(
    base: str, *, admin: str = ADMIN, prefix: str = "bench", http_timeout: float = 10
) -> Scenario:
    """Feature `<prefix>-flag`, an Admin service account, endpoint `<prefix>-apm` + token, and two action
    sets (`on-firing` turns the flag off, `on-resolved` turns it on) through the admin API."""
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": admin}, timeout=http_timeout
    ) as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(path, json=body)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

        feature = f"{prefix}-flag"
        await post("/api/admin/projects/default/features", {"name": feature})
        actor = await post(
            "/api/admin/service-account", {"username": f"{prefix}-bot", "name": "Bench", "rootRole": 1}
        )
        endpoint = await post("/api/admin/signal-endpoints", {"name": f"{prefix}-apm"})
        token = await post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", {"name": "bench"})
        set_ids = []
        for state, action in ALERT_STATE_ACTIONS:
            created = await post(
                "/api/admin/projects/default/actions",
                alert_state_action_set(
                    state=state,
                    action=action,
                    actor_id=actor["id"],
                    endpoint_id=endpoint["id"],
                    feature=feature,
                ),
            )
            set_ids.append(int(created["id"]))
        return Scenario(endpoint["name"], int(endpoint["id"]), token["token"], tuple(set_ids))


async def _send_steady(base: str, endpoint: str, token: str, *, rate: float, duration: float) -> list[Sent]:
    """Open loop: request n is due at start + n / rate and is sent then (or as soon as a connection is
    free) whatever the earlier ones are doing, over up to 64 raw keep-alive connections (a light client,
    so the sender takes little of the CPU it shares with the server)."""
    count = max(1, int(rate * duration))
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(min(64, max(4, int(rate / 20)))):
        pool.put_nowait(await asyncio.open_connection(host, port))
    sent: list[Sent] = []
    offset = time.time() - time.monotonic()  # wall clock of a monotonic instant, for the database's clock

    async def one(n: int, due: float) -> None:
        body = orjson.dumps(
            {"alert": {"state": "firing" if n % 2 == 0 else "resolved", "n": n, "service": "checkout"}}
        )
        request = (
            f"POST /api/signal-endpoint/{endpoint} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        reader, writer = await pool.get()
        writer.write(request)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        reply = await reader.readexactly(length)
        replied = time.monotonic()
        pool.put_nowait((reader, writer))
        if b" 200 " not in status:
            raise RuntimeError(f"ingest answered {status!r}: {reply[:200]!r}")
        sent.append(Sent(orjson.loads(reply)["signals"][0]["id"], due + offset, replied + offset))

    tasks = []
    start = time.monotonic() + 0.05
    for n in range(count):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return sent


def send_in_own_process(
    base: str, scenario: Scenario, *, rate: float, duration: float
) -> tuple[list[Sent], float]:
    """Run the sender as `python -m bench.latency --sender …` (never inside the server, nor in this
    process); returns what it sent and the rate it achieved."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.latency",
            "--sender",
            orjson.dumps(
                {
                    "base": base,
                    "endpoint": scenario.endpoint,
                    "token": scenario.token,
                    "rate": rate,
                    "duration": duration,
                }
            ).decode(),
        ],
        capture_output=True,
        check=False,
        timeout=duration + 120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"sender failed: {completed.stderr.decode(errors='replace')[-2000:]}")
    data = orjson.loads(completed.stdout)
    sent = [Sent(*item) for item in data["sent"]]
    return sent, float(data["achieved_rate"])


def _sender_main(spec: str) -> None:
    options = orjson.loads(spec)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    started = time.monotonic()
    sent = runner(
        _send_steady(
            options["base"],
            options["endpoint"],
            options["token"],
            rate=options["rate"],
            duration=options["duration"],
        )
    )
    elapsed = time.monotonic() - started
    sys.stdout.buffer.write(
        orjson.dumps(
            {
                "sent": [(s.signal_id, s.due_at, s.replied_at) for s in sent],
                "achieved_rate": len(sent) / elapsed if elapsed > 0 else 0.0,
            }
        )
    )


async def _final_times(url: str, signal_ids: list[int], wait_seconds: float = 120) -> dict[int, datetime]:
    """The final `updated_at` of each signal's event, waiting until every one is final."""
    db = Database(to_async_url(url), pool_size=1)
    low, high = min(signal_ids), max(signal_ids)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            async with db.read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(t.action_set_event.c.signal_id, t.action_set_event.c.updated_at).where(
                            t.action_set_event.c.state != "started",
                            t.action_set_event.c.signal_id.between(low, high),
                        )
                    )
                ).all()
            if len(rows) >= len(signal_ids) or time.monotonic() > deadline:
                return {row.signal_id: row.updated_at for row in rows}
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def run_backend(
    database: str, rates: list[float], durations: dict[float, float], *, separate_worker: bool = False
) -> list[Row]:
    rows: list[Row] = []
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
        topology = "serve + `switchman worker`" if separate_worker else "serve (in-process worker)"
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
                # Warm-up: a few signals so connection pools and code paths are hot.
                warm, _ = send_in_own_process(base, scenario, rate=50, duration=1)
                asyncio.run(_final_times(url, [s.signal_id for s in warm]))
                for rate in rates:
                    sent, achieved = send_in_own_process(base, scenario, rate=rate, duration=durations[rate])
                    finals = asyncio.run(_final_times(url, [s.signal_id for s in sent]))
                    missing = [s.signal_id for s in sent if s.signal_id not in finals]
                    if missing:
                        raise RuntimeError(f"{len(missing)} signals never reached a final event state")
                    row = Row(
                        database,
                        topology,
                        len(sent),
                        rate,
                        achieved,
                        sorted((finals[s.signal_id].timestamp() - s.replied_at) * 1000 for s in sent),
                        sorted((finals[s.signal_id].timestamp() - s.due_at) * 1000 for s in sent),
                        sorted((s.replied_at - s.due_at) * 1000 for s in sent),
                    )
                    print(
                        f"{row.database} / {row.topology} / {rate:g}/s (achieved {achieved:.0f}/s): "
                        f"reply→flag p50/p90/p99/max {_fmt(row.from_reply)} ms; "
                        f"due→flag {_fmt(row.from_due)} ms",
                        flush=True,
                    )
                    rows.append(row)
        finally:
            if worker is not None:
                stop(worker)
            if database != "sqlite":
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))
    return rows


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{percentile(values, q):.1f}" for q in (0.5, 0.9, 0.99)) + f" / {values[-1]:.1f}"


GOAL_RATE, GOAL_P99_MS = 100.0, 50.0


def render(rows: list[Row], command: str, notes: list[str]) -> str:
    lines = [
        HEADING,
        "",
        f"`make bench-latency` (`{command}`), run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on the 2-core machine "
        "that also runs the sender and the database. Two action sets on one endpoint, signals alternating so "
        "that each one makes exactly one event with one real flag change (embedded store). The sender is "
        "open-loop (request n is due at n / rate whatever the replies do) and runs in its own process. "
        '"Flag changed" = the final `updated_at` of the signal\'s action set event, written by the worker '
        "in the transaction that changes the flag, after the change and just before the commit. Latency = "
        "that moment minus the moment the ingest reply (200: signal committed) was received; "
        '"from due" counts from the moment the request was scheduled (so it includes ingestion and any '
        "sender lag).",
        "",
        "| database | processes | rate/s (achieved) | signals | reply → flag p50 / p90 / p99 / max (ms) | due → flag p50 / p90 / p99 / max (ms) | due → ingest reply p50 / p90 / p99 / max (ms) |",
        "|---|---|---|---:|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.database} | {row.topology} | {row.rate:g} ({row.achieved_rate:.0f}) | {row.signals} | "
            f"{_fmt(row.from_reply)} | {_fmt(row.from_due)} | {_fmt(row.ingest_ms)} |"
        )
    at_goal = [row for row in rows if row.rate == GOAL_RATE]
    verdict = ", ".join(
        f"{row.database} / {row.topology}: p99 {percentile(row.from_reply, 0.99):.1f} ms"
        + (" ✓" if percentile(row.from_reply, 0.99) <= GOAL_P99_MS else " ✗")
        for row in at_goal
    )
    lines += [
        "",
        f"Goal: p99 ≤ {GOAL_P99_MS:g} ms from the reply at {GOAL_RATE:g} signals/s — {verdict or 'not measured'}. "
        "Unleash Enterprise's documented cadence is one batch of 10 signals per minute: a signal waits up to "
        "60 s for its batch, and at more than 10 signals a minute (every rate here is 60 to 6,000 times that) "
        "the queue grows without bound. At 1,000 signals/s the in-process worker shares one event loop "
        "(and, on SQLite, the one writer) with ingestion; a separate `switchman worker` does not.",
        "",
        *notes,
        "",
    ]
    return "\n".join(lines)


def result_rows(rows: list[Row]) -> list[ResultRow]:
    out: list[ResultRow] = []
    for row in rows:
        p99 = percentile(row.from_reply, 0.99)
        label = f"{row.database}, {row.topology}, {row.rate:g} signals/s"
        at_goal = row.rate == GOAL_RATE
        out.append(
            ResultRow(
                C4_LATENCY, f"{label}: p50 reply → flag", round(percentile(row.from_reply, 0.5), 1), "ms"
            )
        )
        out.append(
            ResultRow(
                C4_LATENCY,
                f"{label}: p99 reply → flag",
                round(p99, 1),
                "ms",
                f"≤ {GOAL_P99_MS:g} ms" if at_goal else None,
                p99 <= GOAL_P99_MS if at_goal else None,
            )
        )
    out.append(
        ResultRow(
            C4_LATENCY,
            "Unleash Enterprise: documented cadence (one batch of 10 signals a minute): worst wait",
            60_000,
            "ms",
        )
    )
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--sender":
        _sender_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="10,100,1000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few seconds per rate")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    # Enough signals per rate for a p99 (≥ 150), within the benchmark budget (about 70 s of sending).
    durations = {rate: (2.0 if args.quick else max(5.0, min(15.0, 1000 / rate))) for rate in rates}
    started = now_iso()
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    databases = [database.strip() for database in args.databases.split(",")]
    for database in databases:
        rows += run_backend(database, rates, durations)
    # A separate `switchman worker` at the goal rate (SQLite: woken by the file's data version).
    if not args.quick:
        for database in databases:
            rows += run_backend(database, [GOAL_RATE], durations, separate_worker=True)
    notes = machine_notes(load_before, os.getloadavg()[0])
    failed = [row for row in rows if row.rate == GOAL_RATE and percentile(row.from_reply, 0.99) > GOAL_P99_MS]
    if not args.no_write:
        command = " ".join(["python -m bench.latency", *sys.argv[1:]])
        write_section(HEADING, render(rows, command, notes))
        _drop_section(OLD_HEADING)
        write_results(MODULE, command, started, result_rows(rows))
    if failed:
        print(f"goal missed: p99 > {GOAL_P99_MS:g} ms at {GOAL_RATE:g}/s in {len(failed)} configuration(s)")


def _drop_section(heading: str) -> None:
    """Remove this module's former section (it was renamed)."""
    from bench._report import BENCHMARKS_MD

    if not BENCHMARKS_MD.exists():
        return
    lines = BENCHMARKS_MD.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    BENCHMARKS_MD.write_text("".join(lines[:start] + lines[end:]).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
