"""Memory under a steady load (comparison 6): `switchman serve` RSS over `--duration` seconds.

    python -m bench.memory [--duration 300] [--rate 50] [--list-rate 20] [--database postgresql] [--quick]

A fresh database (PostgreSQL by default), `switchman serve` with its in-process worker (one process: the
API, the group committer and the worker), one signal endpoint and two action sets that turn a flag off
on `firing` and on on `resolved`. A load client in its own process (`python -m bench.memory --client …`)
then sends, on a fixed schedule, `--rate` signals/s alternating firing/resolved (every signal makes one
event and one real flag change) and `--list-rate` listings/s of the newest events page (offset 0, which
new events keep changing, and offset 100) — open loop, so the load stays the same whatever the server does.

Every 5 s the server's VmRSS and VmHWM are read from /proc. Growth is measured after a warm-up (the
first fifth of the run, at most 60 s): the least-squares slope of RSS over time (MB/min) and the
difference between the medians of the first and the last minute after warm-up. Goal: no growth (the
net difference within 5 MB) and a peak (VmHWM) ≤ 150 MB. Afterwards the events are counted (waiting up
to 60 s for the worker to catch up): signals accepted and events recorded are both reported. Results: stdout, the `## Memory` section of docs/benchmarks.md, bench/out/memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench._pg import PG_SERVER, pg_admin
from bench._report import (
    BENCHMARKS_MD,
    C6_MEMORY,
    ROOT,
    ResultRow,
    machine_description,
    now_iso,
    write_results,
    write_section,
)
from bench._server import free_port, running
from bench.latency import setup_scenario

SECTION = "## Memory"
PEAK_GOAL_MB = 150.0
GROWTH_GOAL_MB = 5.0
SAMPLE_SECONDS = 5.0


def proc_memory_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of process `pid` in MB, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0]) / 1024
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


# --- the load client (its own process) -------------------------------------------------------------------


async def _client(args: argparse.Namespace) -> dict[str, int]:
    parts = urlsplit(args.base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(await asyncio.open_connection(host, port))
    counts = {"signals": 0, "listings": 0, "errors": 0}

    async def exchange(request: bytes) -> bytes:
        reader, writer = await pool.get()
        try:
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
        finally:
            pool.put_nowait((reader, writer))
        return status

    async def signal(n: int) -> None:
        body = orjson.dumps({"alert": {"state": "firing" if n % 2 == 0 else "resolved", "n": n}})
        request = (
            f"POST /api/signal-endpoint/{args.endpoint} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {args.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status = await exchange(request)
        counts["signals" if b" 200 " in status else "errors"] += 1

    async def listing(n: int) -> None:
        path = (
            f"/api/admin/projects/default/actions/{args.set_id}/events?limit=50&offset={0 if n % 2 else 100}"
        )
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {args.admin}\r\n\r\n".encode()
        status = await exchange(request)
        counts["listings" if b" 200 " in status else "errors"] += 1

    async def schedule(rate: float, call: Any) -> None:
        if rate <= 0:
            return
        started = time.monotonic()
        tasks = set()
        n = 0
        while (due := started + n / rate) < started + args.duration:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            task = asyncio.create_task(call(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)

    await asyncio.gather(schedule(args.rate, signal), schedule(args.list_rate, listing))
    return counts


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    rss: float
    hwm: float


def _slope_mb_per_min(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    xs = [s.at / 60 for s in samples]
    ys = [s.rss for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    admin = f"*:*.{secrets.token_hex(16)}"
    tmp = tempfile.TemporaryDirectory()
    database_name = None
    if args.database == "sqlite":
        url = f"sqlite:///{tmp.name}/memory.db"
    else:
        database_name = f"switchman_bench_{secrets.token_hex(4)}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{database_name}"'))
        url = f"{PG_SERVER}/{database_name}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "SWITCHMAN_DATABASE_URL": url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_LOG_LEVEL": "WARNING",
        "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0",
    }
    try:
        with running(
            [sys.executable, "-m", "switchman", "serve", "--port", str(port)],
            env=env,
            ready_url=f"{base}/health",
        ) as proc:
            scenario = asyncio.run(setup_scenario(base, admin=admin, prefix="memory", http_timeout=30))
            endpoint, token, set_id = scenario.endpoint, scenario.token, scenario.set_ids[0]
            client = subprocess.Popen(
                [
                    sys.executable, "-m", "bench.memory", "--client", "--base", base, "--endpoint", endpoint,
                    "--token", token, "--admin", admin, "--set-id", str(set_id), "--rate", str(args.rate),
                    "--list-rate", str(args.list_rate), "--duration", str(args.duration),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            started = time.monotonic()
            samples: list[Sample] = []
            while client.poll() is None:
                memory = proc_memory_mb(proc.pid)
                if memory is None:
                    raise SystemExit("the server process disappeared during the steady load")
                samples.append(Sample(time.monotonic() - started, *memory))
                print(
                    f"  {samples[-1].at:5.0f} s  RSS {memory[0]:6.1f} MB  peak {memory[1]:6.1f} MB",
                    flush=True,
                )
                with contextlib.suppress(subprocess.TimeoutExpired):
                    client.wait(SAMPLE_SECONDS)
            out, _ = client.communicate()
            if client.returncode != 0:
                raise SystemExit(f"load client failed ({client.returncode})")
            counts = json.loads(out.strip().splitlines()[-1])
            final = proc_memory_mb(proc.pid)
            if final is not None:
                samples.append(Sample(time.monotonic() - started, *final))
            events = _wait_for_events(url, counts["signals"])
    finally:
        if database_name:
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))
        tmp.cleanup()
    warmup = min(60.0, args.duration / 5)
    steady = [s for s in samples if s.at >= warmup]
    window = min(60.0, max(SAMPLE_SECONDS, (args.duration - warmup) / 3))
    first = [s.rss for s in steady if s.at < warmup + window] or [steady[0].rss]
    last = [s.rss for s in steady if s.at >= samples[-1].at - window] or [steady[-1].rss]
    return {
        "samples": samples,
        "counts": counts,
        "events": events,
        "growth_mb": statistics.median(last) - statistics.median(first),
        "slope_mb_per_min": _slope_mb_per_min(steady),
        "peak_mb": max(s.hwm for s in samples),
        "start_mb": samples[0].rss,
        "end_mb": samples[-1].rss,
        "warmup": warmup,
        "window": window,
    }


def _wait_for_events(database_url: str, signals: int, timeout: float = 60.0) -> int:
    """Wait (at most `timeout` s) until the worker has recorded one finished event per accepted signal;
    returns the number of finished events then (fewer when the worker fell behind: reported, not fatal —
    this module measures memory; the worker's throughput is comparison 5's).

    Counted in the database (not through the API, whose large pages would add to the peak measured).
    """
    query = "SELECT count(*), count(*) FILTER (WHERE state = 'started') FROM action_set_event"
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        if database_url.startswith("sqlite"):
            with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
                total, started = conn.execute(
                    "SELECT count(*), sum(state = 'started') FROM action_set_event"
                ).fetchone()
        else:
            row = asyncio.run(_pg_row(database_url, query))
            total, started = row[0], row[1]
        if total >= signals and not started:
            return int(total)
        time.sleep(1)
    print(
        f"warning: only {total} events for {signals} signals {timeout:g} s after the load ended", flush=True
    )
    return int(total) - int(started or 0)


async def _pg_row(url: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow(sql)
    finally:
        await conn.close()


def command_line(args: argparse.Namespace) -> str:
    return (
        f"python -m bench.memory --duration {args.duration:g} --rate {args.rate:g} "
        f"--list-rate {args.list_rate:g} --database {args.database}"
    )


def render(result: dict[str, Any], args: argparse.Namespace, load: tuple[float, float]) -> str:
    counts = result["counts"]
    lines = [
        SECTION,
        "",
        f"`switchman serve` (API, group committer and worker in one process) on {args.database}, under a steady "
        f"open-loop load for {args.duration:g} s: {args.rate:g} signals/s (each one event and one real flag "
        f"change) and {args.list_rate:g} events listings/s (offsets 0 and 100, while new events keep "
        "arriving). RSS read from /proc every 5 s.",
        "",
        f"Command: `make bench` → `{command_line(args)}`, run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| figure | value | goal |",
        "|---|---:|---|",
        f"| RSS after start-up and set-up | {result['start_mb']:.1f} MB | |",
        f"| RSS at the end | {result['end_mb']:.1f} MB | |",
        f"| peak RSS (VmHWM) | **{result['peak_mb']:.1f} MB** | ≤ {PEAK_GOAL_MB:g} MB |",
        f"| growth: median RSS of the last {result['window']:.0f} s minus the first {result['window']:.0f} s "
        f"after a {result['warmup']:.0f} s warm-up | **{result['growth_mb']:+.1f} MB** | within ±{GROWTH_GOAL_MB:g} MB |",
        f"| RSS trend after warm-up (least squares) | {result['slope_mb_per_min']:+.2f} MB/min | |",
        f"| signals accepted / events recorded / listings / errors | {counts['signals']:,} / {result['events']:,} / "
        f"{counts['listings']:,} / {counts['errors']} | |",
        "",
        *(
            [
                f"The worker fell behind: {result['events']:,} of {counts['signals']:,} signals had their event "
                "60 s after the load ended (the backlog is in the database, not in memory; the worker's "
                "throughput is comparison 5's).",
                "",
            ]
            if result["events"] < counts["signals"]
            else []
        ),
        f"Machine: {machine_description()}; 1-minute load average {load[0]:.2f} → {load[1]:.2f}.",
        "",
        "Peak RSS of every switchman server process the whole suite started is in the summary "
        "(sampled by `bench.suite`).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=50.0, help="signals per second")
    parser.add_argument("--list-rate", type=float, default=20.0, help="events listings per second")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 s")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    # load-client mode (internal)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--admin", help=argparse.SUPPRESS)
    parser.add_argument("--set-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(_client(args))))
        return
    if args.quick:
        args.duration = 30.0
    started_at = now_iso()
    load_before = os.getloadavg()[0]
    result = run(args)
    load = (load_before, os.getloadavg()[0])
    rows = [
        ResultRow(C6_MEMORY, "steady load: serve peak RSS", round(result["peak_mb"], 1), "MB", f"≤ {PEAK_GOAL_MB:g} MB", result["peak_mb"] <= PEAK_GOAL_MB),
        ResultRow(
            C6_MEMORY,
            f"steady load: RSS growth over {args.duration:g} s",
            round(result["growth_mb"], 2),
            "MB",
            f"within ±{GROWTH_GOAL_MB:g} MB",
            abs(result["growth_mb"]) <= GROWTH_GOAL_MB,
        ),
        ResultRow(C6_MEMORY, "steady load: RSS trend", round(result["slope_mb_per_min"], 3), "MB/min"),
        ResultRow(C6_MEMORY, "steady load: signals accepted", result["counts"]["signals"], "signals"),
        ResultRow(C6_MEMORY, "steady load: events recorded", result["events"], "events"),
    ]  # fmt: skip
    path = write_results(
        "memory",
        command_line(args),
        started_at,
        rows,
        extra={
            "samples": [[round(s.at, 1), round(s.rss, 1), round(s.hwm, 1)] for s in result["samples"]],
            "counts": result["counts"],
        },
    )
    print(f"wrote {path.relative_to(ROOT)}")
    print(
        f"peak {result['peak_mb']:.1f} MB, growth {result['growth_mb']:+.1f} MB, trend {result['slope_mb_per_min']:+.2f} MB/min"
    )
    if not args.no_write:
        write_section(SECTION, render(result, args, load))
        print(f"wrote {BENCHMARKS_MD.relative_to(ROOT)} ({SECTION})")


if __name__ == "__main__":
    main()
