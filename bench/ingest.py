"""Ingestion benchmark: durable `POST /api/signal-endpoint/{name}` against a trivial POST ceiling.

    make bench-ingest            # = python -m bench.ingest
    python -m bench.ingest --duration 5 --warmup 1 --connections 64 --rounds 3 [--quick] [--no-unleash]
                           [--tool wrk|python] [--no-write]

For each database (a fresh SQLite file, then a fresh PostgreSQL database on SWITCHMAN_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432) it measures, back to back on the same machine and uvicorn set-up:
1. the ceiling: `bench._server`'s Starlette route that reads the body and answers `{"ok":true}`;
2. durable ingestion: `switchman serve --no-worker` (rate limit off, log level WARNING), one endpoint,
   one token, a ~500-byte JSON body; every 200 means the signal row was committed;
3. on PostgreSQL also the peer (comparison 2): a real Unleash OSS server (`bench._unleash`, on the same
   PostgreSQL server) turning flags on and off through `POST /api/admin/projects/default/features/
   {name}/environments/production/{on,off}` — the nearest write path Unleash OSS offers (signals are
   Enterprise-only) — cycling through 100 flags so that every request is a real change.
The targets are loaded alternately, round after round, with the same load settings. After each durable run the signal rows are counted: the run is rejected if fewer rows than 200 answers
exist. Results go to stdout, to the `## Ingestion` section of docs/benchmarks.md and to
bench/out/ingest.json (comparisons 1 and 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from bench._data import alert_payload
from bench._load import LoadResult, run_load, wrk_available
from bench._pg import PG_SERVER, pg_admin, pg_fetchval
from bench._report import (
    BENCHMARKS_MD,
    C1_INGEST_CEILING,
    C2_INGEST_UNLEASH,
    ROOT,
    ResultRow,
    now_iso,
    write_results,
    write_section,
)
from bench._server import TRIVIAL_PATH, free_port, running, trivial_command
from bench._unleash import running_unleash, seed, toggle_paths

SECTION = "## Ingestion"
ENDPOINT_NAME = "bench-alerts"
UNLEASH_TARGET = "Unleash OSS flag on/off"
# Durable ingestion with a unique Idempotency-Key on every call (ADR 0019): each call claims its key.
KEYED_TARGET = "durable, Idempotency-Key"
# The same, signed (X-Hub-Signature-256, ADR 0020) instead of a token: verification and a claim per call.
SIGNED_TARGET = "durable, signed + Idempotency-Key"
SIGNED_ENDPOINT_NAME = "bench-signed"
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
SECRET_KEY = "ZHVyYWJsZS1pbmdlc3Rpb24tYmVuY2gta2V5LTMyYnk="  # 32 bytes; a benchmark's, never a real one
KEYED_GOAL = 0.80
UNLEASH_FLAGS = 100
UNLEASH_CONNECTIONS = 32
CEILING_GOAL = 0.70
UNLEASH_GOAL = 10.0


def payload_bytes() -> bytes:
    """A ~500-byte alert, shaped like what monitoring tools send."""
    body = alert_payload("8f3c2a1b9d7e6f50")
    raw = orjson.dumps(body)
    body["padding"] = "x" * max(0, 500 - len(raw) - 14)
    return orjson.dumps(body)


@dataclass(frozen=True)
class Row:
    target: str
    database: str
    result: LoadResult
    ratio: float | None = None
    rounds: tuple[float, ...] = ()


def _serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]


def durable_env(database_url: str, admin: str) -> dict[str, str]:
    """The settings of a `serve --no-worker` under load: no rate limit, no retention, quiet logs."""
    return {
        "SWITCHMAN_DATABASE_URL": database_url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0",
        "SWITCHMAN_SIGNAL_RETENTION_DAYS": "0",
        "SWITCHMAN_LOG_LEVEL": "WARNING",
        "SWITCHMAN_RUN_WORKER": "false",
        "SWITCHMAN_SECRET_KEY": SECRET_KEY,
    }


def _create_signed_endpoint(base: str, admin: str, body: bytes) -> dict[str, str]:
    """An endpoint with GitHub-style signature verification and no token; the headers of a signed call."""
    with httpx.Client(base_url=base, headers={"Authorization": admin}) as client:
        endpoint = client.post("/api/admin/signal-endpoints", json={"name": SIGNED_ENDPOINT_NAME})
        endpoint.raise_for_status()
        client.put(
            f"/api/admin/signal-endpoints/{endpoint.json()['id']}/verification",
            json={"scheme": "github", "secret": SIGNING_SECRET},
        ).raise_for_status()
    digest = hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def _create_endpoint(base: str, admin: str) -> str:
    """One endpoint and one token through the admin API; returns the token secret."""
    with httpx.Client(base_url=base, headers={"Authorization": admin}) as client:
        endpoint = client.post("/api/admin/signal-endpoints", json={"name": ENDPOINT_NAME})
        endpoint.raise_for_status()
        token = client.post(
            f"/api/admin/signal-endpoints/{endpoint.json()['id']}/tokens", json={"name": "bench"}
        )
        token.raise_for_status()
    secret: str = token.json()["token"]
    return secret


def measure(args: argparse.Namespace, body: bytes, database: str, database_url: str) -> list[Row]:
    """The servers up side by side; alternate ceiling, durable (and Unleash) runs `args.rounds` times."""
    admin = f"*:*.{secrets.token_hex(16)}"
    trivial_port, durable_port = free_port(), free_port()
    base = f"http://127.0.0.1:{durable_port}"
    ceilings: list[LoadResult] = []
    durables: list[LoadResult] = []
    keyed: list[LoadResult] = []
    signed: list[LoadResult] = []
    peers: list[LoadResult] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(
                trivial_command(trivial_port), env={}, ready_url=f"http://127.0.0.1:{trivial_port}/health"
            )
        )
        stack.enter_context(
            running(
                _serve_command(durable_port),
                env=durable_env(database_url, admin),
                ready_url=f"{base}/health",
            )
        )
        unleash = None
        if database == "postgresql" and args.unleash:
            unleash = stack.enter_context(running_unleash())
            seed(unleash, flags=UNLEASH_FLAGS)
        secret = _create_endpoint(base, admin)
        signed_headers = _create_signed_endpoint(base, admin, body)
        plain_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
        durable_url = f"{base}/api/signal-endpoint/{ENDPOINT_NAME}"

        def load(url: str, headers: dict[str, str], numbered_header: str | None = None) -> LoadResult:
            """One measured load with this run's body and settings."""
            return run_load(
                url,
                body=body,
                headers=headers,
                connections=args.connections,
                duration=args.duration,
                warmup=args.warmup,
                tool=args.tool,
                numbered_header=numbered_header,
            )

        for round_number in range(1, args.rounds + 1):
            ceiling = load(
                f"http://127.0.0.1:{trivial_port}{TRIVIAL_PATH}", {"Content-Type": "application/json"}
            )
            durable = load(durable_url, plain_headers)
            idempotent = load(durable_url, plain_headers, "Idempotency-Key")
            signed_run = load(
                f"{base}/api/signal-endpoint/{SIGNED_ENDPOINT_NAME}", signed_headers, "Idempotency-Key"
            )
            ceilings.append(ceiling)
            durables.append(durable)
            keyed.append(idempotent)
            signed.append(signed_run)
            print(f"round {round_number}", flush=True)
            print("  " + _line(Row("trivial POST (ceiling)", database, ceiling)), flush=True)
            print(
                "  " + _line(Row("durable ingestion", database, durable, durable.rps / ceiling.rps)),
                flush=True,
            )
            print(
                "  " + _line(Row(KEYED_TARGET, database, idempotent, idempotent.rps / durable.rps)),
                flush=True,
            )
            print(
                "  " + _line(Row(SIGNED_TARGET, database, signed_run, signed_run.rps / durable.rps)),
                flush=True,
            )
            if unleash is not None:
                # The peer at the same connections, and at Unleash's own better setting (32, as in the
                # spec's §4; its throughput falls with more connections): the better run counts.
                tries = [
                    run_load(
                        unleash.base,
                        body=b"",
                        headers=unleash.headers,
                        connections=connections,
                        duration=args.duration,
                        warmup=args.warmup,
                        tool=args.tool,
                        paths=toggle_paths(UNLEASH_FLAGS),
                    )
                    for connections in sorted({args.connections, UNLEASH_CONNECTIONS})
                ]
                peer = max(tries, key=lambda r: r.rps)
                peers.append(peer)
                print("  " + _line(Row(UNLEASH_TARGET, "unleash", peer, durable.rps / peer.rps)), flush=True)
    # Warm-up calls are stored too, so every counted 200 must be a row (and more rows may exist).
    stored = count_signals(database_url)
    acknowledged = sum(r.requests - r.errors for r in [*durables, *keyed, *signed])
    if stored < acknowledged:
        raise SystemExit(f"{database}: {acknowledged} acknowledged signals but only {stored} rows stored")
    ratios = tuple(d.rps / c.rps for c, d in zip(ceilings, durables, strict=True))
    keyed_ratios = tuple(k.rps / d.rps for d, k in zip(durables, keyed, strict=True))
    signed_ratios = tuple(k.rps / d.rps for d, k in zip(durables, signed, strict=True))
    rows = [
        Row("trivial POST (ceiling)", database, _median_run(ceilings)),
        Row(
            "durable ingestion",
            database,
            _median_run(durables),
            ratio=statistics.median(ratios),
            rounds=ratios,
        ),
        Row(
            KEYED_TARGET,
            database,
            _median_run(keyed),
            ratio=statistics.median(keyed_ratios),
            rounds=keyed_ratios,
        ),
        Row(
            SIGNED_TARGET,
            database,
            _median_run(signed),
            ratio=statistics.median(signed_ratios),
            rounds=signed_ratios,
        ),
    ]
    if peers:
        if any(p.errors for p in peers):
            print(
                f"warning: Unleash answered {sum(p.errors for p in peers)} requests with errors", flush=True
            )
        peer_ratios = tuple(d.rps / p.rps for p, d in zip(peers, durables, strict=True))
        rows.append(
            Row(
                UNLEASH_TARGET,
                database,
                _median_run(peers),
                ratio=statistics.median(peer_ratios),
                rounds=peer_ratios,
            )
        )
    return rows


def _median_run(results: list[LoadResult]) -> LoadResult:
    """The run with the median requests/s (with its own p50/p99, so the figures belong together)."""
    median = sorted(results, key=lambda r: r.rps)[len(results) // 2]
    return LoadResult(
        tool=median.tool,
        requests=median.requests,
        seconds=median.seconds,
        rps=median.rps,
        p50_ms=median.p50_ms,
        p99_ms=median.p99_ms,
        errors=sum(r.errors for r in results),
    )


def count_signals(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM signal").fetchone()[0])
    return int(asyncio.run(pg_fetchval("SELECT count(*) FROM signal", database_url)))


def run_backend(args: argparse.Namespace, body: bytes, database: str) -> list[Row]:
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return measure(args, body, database, f"sqlite:///{tmp}/bench.db")
    name = f"switchman_bench_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        return measure(args, body, database, f"{PG_SERVER}/{name}")
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _line(row: Row) -> str:
    r = row.result
    ratio = f"  ratio {row.ratio:.0%}" if row.ratio is not None else ""
    return (
        f"{row.database:10} {row.target:24} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
        f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}{ratio}"
    )


def machine_notes(tool: str, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pg_version = "n/a"
    with contextlib.suppress(Exception):  # notes only
        pg_version = str(str(asyncio.run(pg_fetchval("SHOW server_version")))).split()[0]
    return [
        f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL), "
        f"PostgreSQL {pg_version} (synchronous_commit=on, fsync=on) on the same machine",
        f"load generator: {'wrk 1 thread' if tool == 'wrk' else 'bench._load asyncio client (wrk not found)'}, "
        "loopback only; server, database and load generator share the CPUs",
        "1-minute load average before / after the run: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f} (other work on the machine skews single rounds; "
        "compare the rounds)",
    ]


def render_section(
    rows: list[Row], args: argparse.Namespace, body: bytes, load_before: tuple[float, ...]
) -> str:
    lines = [
        SECTION,
        "",
        "Durable ingestion (`POST /api/signal-endpoint/{name}`: a 200 means the signal row is committed) "
        "against a trivial POST route on the same stack (Starlette on uvicorn, one process, uvloop + "
        'httptools) that reads the body and answers `{"ok":true}` — the ceiling. Both servers run side by '
        f"side and are loaded alternately, {args.rounds} rounds each; the table shows the median round "
        "and the median of the per-round ratios (all rounds in the last column).",
        "",
        f"Command: `{command_line(args)}`), run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Load: {args.connections} keep-alive connections, closed loop, {args.warmup:g} s warm-up then "
        f"{args.duration:g} s measured, {len(body)}-byte JSON body, bearer token.",
        "",
        "Unleash OSS (comparison 2) runs on the PostgreSQL server with its own database, 100 flags; each "
        f"round loads it with the same settings and also at {UNLEASH_CONNECTIONS} connections (its throughput "
        "falls with more connections) and keeps its better run; its row's ratio is switchman's durable "
        "PostgreSQL ingestion over Unleash's toggles, per round.",
        "",
        f"`{KEYED_TARGET}`: the same calls, each with an `Idempotency-Key` no other call has, so every call "
        "claims its key (ADR 0019); its ratio is over plain durable ingestion in the same round (goal "
        f"≥ {KEYED_GOAL:.0%}). `{SIGNED_TARGET}`: the same on an endpoint with GitHub-style signature "
        "verification (ADR 0020), calls carrying `X-Hub-Signature-256` and no token.",
        "",
        "| database | target | requests/s | p50 ms | p99 ms | errors | durable / ceiling | rounds |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        r = row.result
        ratio = f"**{row.ratio:.0%}**" if row.ratio is not None else ""
        rounds = " / ".join(f"{value:.0%}" for value in row.rounds)
        if row.target == UNLEASH_TARGET:  # the peer's row: switchman durable / Unleash, as a multiple
            ratio = f"durable is **{row.ratio:.1f}x**" if row.ratio is not None else ""
            rounds = " / ".join(f"{value:.1f}x" for value in row.rounds)
        if row.target in (KEYED_TARGET, SIGNED_TARGET) and row.ratio is not None:  # over plain durable
            ratio = f"**{row.ratio:.0%}** of plain durable"
        lines.append(
            f"| {row.database} | {row.target} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors} | {ratio} | {rounds} |"
        )
    lines += ["", "Machine:", ""]
    lines += [f"- {note}" for note in machine_notes(rows[0].result.tool, load_before, os.getloadavg())]
    lines += [
        "",
        "Server settings: `switchman serve --no-worker`, `SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND=0`, "
        "`SWITCHMAN_SIGNAL_RETENTION_DAYS=0`, `SWITCHMAN_LOG_LEVEL=WARNING`, default "
        "`SWITCHMAN_GROUP_COMMIT_MAX_BATCH`. After the rounds the signal table is counted: it must hold at "
        "least as many rows as 200 answers were counted.",
        "",
        "Where the durable path spends its time, what was optimised and what is left (FastAPI's per-request "
        "telemetry check and the cyclic garbage collector's full passes over the app's import-time heap): "
        "`docs/adr/0005-signal-ingestion.md`.",
        "",
    ]
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    return (
        f"python -m bench.ingest --connections {args.connections} --duration {args.duration:g} "
        f"--warmup {args.warmup:g} --rounds {args.rounds} --databases {args.databases}"
        + ("" if args.unleash else " --no-unleash")
    )


def result_rows(rows: list[Row]) -> list[ResultRow]:
    out: list[ResultRow] = []
    durable_pg = next(
        (r for r in rows if r.database == "postgresql" and r.target == "durable ingestion"), None
    )
    peer = next((r for r in rows if r.target == UNLEASH_TARGET), None)
    for row in rows:
        if row.target == UNLEASH_TARGET:
            out.append(ResultRow(C2_INGEST_UNLEASH, "Unleash OSS flag on/off", row.result.rps, "req/s"))
            continue
        figure = f"{row.database} {row.target}"
        comparison = C1_INGEST_CEILING
        out.append(ResultRow(comparison, figure, row.result.rps, "req/s"))
        out.append(ResultRow(comparison, f"{figure} p99", row.result.p99_ms, "ms"))
        if row.target in (KEYED_TARGET, SIGNED_TARGET):
            if row.ratio is not None:
                label = "Idempotency-Key" if row.target == KEYED_TARGET else "signed + Idempotency-Key"
                out.append(
                    ResultRow(
                        comparison,
                        f"{row.database} {label} / plain durable",
                        round(row.ratio * 100, 1),
                        "%",
                        f"≥ {KEYED_GOAL:.0%}",
                        row.ratio >= KEYED_GOAL,
                    )
                )
            continue
        if row.ratio is not None:
            out.append(
                ResultRow(
                    comparison,
                    f"{row.database} durable / ceiling",
                    round(row.ratio * 100, 1),
                    "%",
                    f"≥ {CEILING_GOAL:.0%}",
                    row.ratio >= CEILING_GOAL,
                )
            )
    if peer is not None and peer.ratio is not None and durable_pg is not None:
        out.append(
            ResultRow(C2_INGEST_UNLEASH, "postgresql durable ingestion", durable_pg.result.rps, "req/s")
        )
        out.append(
            ResultRow(
                C2_INGEST_UNLEASH,
                "postgresql durable / Unleash on/off",
                round(peer.ratio, 2),
                "x",
                f"≥ {UNLEASH_GOAL:g}x",
                peer.ratio >= UNLEASH_GOAL,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating ceiling/durable runs per database")
    parser.add_argument("--tool", choices=["wrk", "python"], default=None)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--no-unleash", dest="unleash", action="store_false", help="skip the Unleash peer")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s, 32 connections")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.connections = 1, 2.0, 1.0, 32
    started_at = now_iso()
    if args.tool is None:
        args.tool = "wrk" if wrk_available() else "python"
    print(f"load generator: {args.tool}", flush=True)
    body = payload_bytes()
    load_before = os.getloadavg()
    rows: list[Row] = []
    for database in args.databases.split(","):
        rows += run_backend(args, body, database.strip())
    path = write_results(
        "ingest",
        command_line(args),
        started_at,
        result_rows(rows),
        extra={"load_average_before": [round(x, 2) for x in load_before], "tool": args.tool},
    )
    print(f"wrote {path.relative_to(ROOT)}")
    if not args.no_write:
        write_section(SECTION, render_section(rows, args, body, load_before))
        print(f"wrote {BENCHMARKS_MD.relative_to(ROOT)} ({SECTION})")


if __name__ == "__main__":
    main()
