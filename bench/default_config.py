"""The configuration users run first, under sustained load: `switchman serve` WITH its in-process worker.

    make bench-default        # = python -m bench.default_config
    python -m bench.default_config [--connections 8,64] [--duration 5] [--warmup 1] [--rounds 2]
                                   [--databases sqlite,postgresql] [--workers in-process,separate]
                                   [--tool wrk|python] [--no-write]

For each database and each connection count, servers are started side by side on fresh databases:
`switchman serve` as `make serve` runs it (`in-process` worker), `switchman serve --no-worker` beside a
`switchman worker` process on the same database (`separate` worker), and `switchman serve --no-worker`
alone (the reference: nothing processes its signals). Each has
one signal endpoint, one flag and one action set whose two actions turn the flag off and on again, so
every signal makes the worker change a flag twice (two real writes, two audit events). Closed-loop load
(`bench._load`) alternates between the servers, round after round, with the same body and settings.

Reported per run: ingestion req/s with a worker and without, and their ratio (the goal, for the in-process
worker: ≥ 50 %), and for the servers with a worker
whether the worker kept up: the signals still pending when the load stopped and the seconds it then took
to drain them. Results go to stdout, the `## Default configuration under load` section of
docs/benchmarks.md and bench/out/default_config.json; the machine's load average is in the report.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._load import LoadResult, run_load, wrk_available
from bench._pg import PG_SERVER, pg_admin, pg_fetchval
from bench._report import BENCHMARKS_MD, ResultRow, now_iso, write_results, write_section
from bench._server import free_port, running
from bench.ingest import payload_bytes

SECTION = "## Default configuration under load"
ENDPOINT = "bench-default"
FLAG = "bench-kill-switch"
RATIO_GOAL = 0.50
DRAIN_LIMIT_SECONDS = 120.0


IN_PROCESS, SEPARATE = "in-process", "separate"


@dataclass(frozen=True)
class Run:
    database: str
    connections: int
    worker: str  # IN_PROCESS or SEPARATE
    default: LoadResult  # the server whose signals a worker processes
    no_worker: LoadResult
    pending_at_stop: int
    drain_seconds: float

    @property
    def ratio(self) -> float:
        return self.default.rps / self.no_worker.rps if self.no_worker.rps else 0.0


def _serve(port: int, *, worker: bool) -> list[str]:
    command = [sys.executable, "-m", "switchman", "serve", "--port", str(port)]
    return command if worker else [*command, "--no-worker"]


_WORKER = [sys.executable, "-m", "switchman", "worker"]


def _env(database_url: str, admin: str) -> dict[str, str]:
    # As `make serve` runs, apart from the bootstrap token, the rate limit (off: the load is the point) and
    # the log level (WARNING: one INFO line per run would measure the terminal).
    return {
        "SWITCHMAN_DATABASE_URL": database_url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0",
        "SWITCHMAN_LOG_LEVEL": "WARNING",
    }


def _set_up(base: str, admin: str) -> str:
    """Endpoint, token, flag, service account and the off-then-on action set; the token secret."""
    with httpx.Client(base_url=base, headers={"Authorization": admin}, timeout=30) as client:
        endpoint = (
            client.post("/api/admin/signal-endpoints", json={"name": ENDPOINT}).raise_for_status().json()
        )
        token = client.post(
            f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", json={"name": "bench"}
        ).raise_for_status()
        client.post("/api/admin/projects/default/features", json={"name": FLAG}).raise_for_status()
        account = client.post(
            "/api/admin/service-account", json={"username": "bench-bot", "name": "Bench", "rootRole": 1}
        ).raise_for_status()
        params = {"project": "default", "environment": "production", "featureName": FLAG}
        client.post(
            "/api/admin/projects/default/actions",
            json={
                "name": "flap",
                "actorId": account.json()["id"],
                "match": {"source": "signal-endpoint", "sourceId": endpoint["id"], "payload": {}},
                "actions": [
                    {"action": "TOGGLE_FEATURE_OFF", "sortOrder": 1, "executionParams": params},
                    {"action": "TOGGLE_FEATURE_ON", "sortOrder": 2, "executionParams": params},
                ],
            },
        ).raise_for_status()
    secret: str = token.json()["token"]
    return secret


_PENDING = "SELECT count(*) FROM signal WHERE processed_at IS NULL"


def _pending(database_url: str) -> int:
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute(_PENDING).fetchone()[0])
    return int(asyncio.run(pg_fetchval(_PENDING, database_url)))


def _drain_seconds(database_url: str) -> float:
    started = time.monotonic()
    while _pending(database_url) and time.monotonic() - started < DRAIN_LIMIT_SECONDS:
        time.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def _database(kind: str, scratch: Path, label: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{scratch / f'{label}.db'}"
        return
    name = f"switchman_bench_default_{label}_{secrets.token_hex(3)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def measure(args: argparse.Namespace, database: str, connections: int, scratch: Path) -> list[Run]:
    admin = f"*:*.{secrets.token_hex(16)}"
    body = payload_bytes()
    runs: list[Run] = []
    workers = args.workers.split(",")
    with contextlib.ExitStack() as stack:
        targets: dict[str, tuple[str, str, str]] = {}  # label → base URL, token secret, database URL
        for label in ["no-worker", *workers]:
            port = free_port()
            url = stack.enter_context(_database(database, scratch, f"{label.replace('-', '')}{connections}"))
            base = f"http://127.0.0.1:{port}"
            stack.enter_context(
                running(
                    _serve(port, worker=label == IN_PROCESS), env=_env(url, admin), ready_url=f"{base}/health"
                )
            )
            targets[label] = (base, _set_up(base, admin), url)
            if label == SEPARATE:
                health = free_port()
                stack.enter_context(
                    running(
                        [*_WORKER, "--metrics-port", str(health)],
                        env=_env(url, admin),
                        ready_url=f"http://127.0.0.1:{health}/health",
                    )
                )

        def load(label: str) -> LoadResult:
            base, secret, _url = targets[label]
            return run_load(
                f"{base}/api/signal-endpoint/{ENDPOINT}",
                body=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
                connections=connections,
                duration=args.duration,
                warmup=args.warmup,
                tool=args.tool,
            )

        for round_number in range(1, args.rounds + 1):
            plain = load("no-worker")
            for worker in workers:
                result = load(worker)
                url = targets[worker][2]
                pending = _pending(url)
                drain = _drain_seconds(url)
                run = Run(database, connections, worker, result, plain, pending, drain)
                runs.append(run)
                print(f"  round {round_number}: {_line(run)}", flush=True)
    return runs


def _line(run: Run) -> str:
    return (
        f"{run.database:10s} {run.worker:10s} {run.connections:3d} conns: with worker {run.default.rps:7.0f} req/s "
        f"(p50 {run.default.p50_ms:6.1f} ms, p99 {run.default.p99_ms:6.1f} ms) | --no-worker "
        f"{run.no_worker.rps:7.0f} req/s | ratio {run.ratio:4.0%} | pending at stop {run.pending_at_stop:6d}, "
        f"drained in {run.drain_seconds:5.1f} s"
    )


def _median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.ratio)[len(runs) // 2]


def report(
    runs: list[Run], args: argparse.Namespace, started_at: str, load: tuple[float, float, float]
) -> str:
    lines = [
        SECTION,
        "",
        f"`python -m bench.default_config` ({started_at}, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at the start; {args.duration:g} s runs after {args.warmup:g} s warm-up, {args.rounds} "
        f"rounds alternating the servers, load generator `{args.tool}`). `switchman serve` as `make serve` "
        "runs it (`in-process` worker), and `serve --no-worker` beside a `switchman worker` process (`separate` "
        "worker), each against `serve --no-worker` alone, each on a fresh database with one endpoint and an "
        "action set whose two actions turn a flag off and on: every signal is two real flag changes. Goal: "
        f"the default configuration (SQLite, in-process worker) ingests at ≥ {RATIO_GOAL:.0%} of `--no-worker` "
        "while its worker keeps up. Median round by ratio:",
        "",
        "| database | worker | connections | with worker (req/s) | `--no-worker` (req/s) | ratio | goal met | "
        "p99 with worker (ms) | pending when load stopped | drained in (s) |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for (database, worker, connections), group in _groups(runs).items():
        run = _median(group)
        met = ("yes" if run.ratio >= RATIO_GOAL else "no") if _has_goal(database, worker) else "n/a"
        lines.append(
            f"| {database} | {worker} | {connections} | {run.default.rps:,.0f} | {run.no_worker.rps:,.0f} | "
            f"{run.ratio:.0%} ({', '.join(f'{r.ratio:.0%}' for r in group)}) | {met} | "
            f"{run.default.p99_ms:.1f} | {run.pending_at_stop:,} | {run.drain_seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _groups(runs: list[Run]) -> dict[tuple[str, str, int], list[Run]]:
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.database, run.worker, run.connections), []).append(run)
    return groups


def _has_goal(database: str, worker: str) -> bool:
    """The issue's goal is for the default configuration; the other rows make the cost known."""
    return database == "sqlite" and worker == IN_PROCESS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", default="8,64")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", default=f"{IN_PROCESS},{SEPARATE}", help="in-process, separate or both")
    parser.add_argument("--tool", choices=["wrk", "python"], default="wrk" if wrk_available() else "python")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s, 1 round, 8 connections")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.rounds, args.connections = 2.0, 0.5, 1, "8"
    started_at, load = now_iso(), os.getloadavg()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="switchman-bench-default-") as scratch:
        for database in args.databases.split(","):
            for connections in (int(c) for c in args.connections.split(",")):
                print(f"{database}, {connections} connections", flush=True)
                runs.extend(measure(args, database, connections, Path(scratch)))
    text = report(runs, args, started_at, load)
    print(text)
    rows = []
    for (database, worker, connections), group in _groups(runs).items():
        ratio = statistics.median(run.ratio for run in group)
        goal = _has_goal(database, worker)
        rows.append(
            ResultRow(
                comparison="default configuration",
                figure=f"{database} {worker} worker, {connections} conns: with worker / --no-worker",
                value=round(ratio, 3),
                unit="ratio",
                goal=f">= {RATIO_GOAL}" if goal else None,
                met=ratio >= RATIO_GOAL if goal else None,
            )
        )
    write_results("default_config", "python -m bench.default_config", started_at, rows)
    if not args.no_write:
        write_section(SECTION, text, BENCHMARKS_MD)


if __name__ == "__main__":
    main()
