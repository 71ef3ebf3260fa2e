"""What the cluster rate limit costs ingestion on PostgreSQL (ADR 0029).

    python -m bench.rate_limit [--rate 20000] [--connections 64] [--duration 3] [--warmup 1] [--rounds 3]
                               [--tool wrk|python] [--no-write]

Three `switchman serve --no-worker` servers run side by side on one fresh PostgreSQL database, each with
the same endpoint and token, and are loaded alternately, round after round, with `bench.ingest`'s body
and settings: rate limit off (`SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND=0`), per process (scope `process`)
and shared by the cluster (scope `cluster`), both at `--rate`, above what one server ingests, so every
call is accepted and the figures show what deciding costs (the cluster limiter leases a block of 2 % of
the rate from the database each time its allowance is spent). Results go to stdout and the
`## Cluster rate limits` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
from dataclasses import dataclass

import httpx

from bench._load import LoadResult, run_load, wrk_available
from bench._pg import PG_SERVER, pg_admin, pg_fetchval
from bench._report import machine_description, now_iso, write_section
from bench._server import free_port, running
from bench.ingest import payload_bytes

SECTION = "## Cluster rate limits"
ENDPOINT = "bench-limited"
OFF = "off"


@dataclass(frozen=True)
class Target:
    label: str
    env: dict[str, str]


def targets(rate: float) -> list[Target]:
    limited = {"SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": f"{rate:g}"}
    return [
        Target(OFF, {"SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0"}),
        Target("process", {**limited, "SWITCHMAN_SIGNAL_RATE_LIMIT_SCOPE": "process"}),
        Target("cluster", {**limited, "SWITCHMAN_SIGNAL_RATE_LIMIT_SCOPE": "cluster"}),
    ]


def _env(database_url: str, admin: str, target: Target) -> dict[str, str]:
    return {
        "SWITCHMAN_DATABASE_URL": database_url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_SIGNAL_RETENTION_DAYS": "0",
        "SWITCHMAN_LOG_LEVEL": "WARNING",
        "SWITCHMAN_RUN_WORKER": "false",
        **target.env,
    }


def _endpoint_token(base: str, admin: str) -> str:
    with httpx.Client(base_url=base, headers={"Authorization": admin}) as client:
        endpoint = client.post("/api/admin/signal-endpoints", json={"name": ENDPOINT})
        endpoint.raise_for_status()
        token = client.post(f"/api/admin/signal-endpoints/{endpoint.json()['id']}/tokens", json={"name": "b"})
        token.raise_for_status()
    secret: str = token.json()["token"]
    return secret


def measure(args: argparse.Namespace, database_url: str) -> dict[str, list[LoadResult]]:
    admin = f"*:*.{secrets.token_hex(16)}"
    body = payload_bytes()
    results: dict[str, list[LoadResult]] = {}
    with contextlib.ExitStack() as stack:
        bases: dict[str, str] = {}
        for target in targets(args.rate):
            port = free_port()
            bases[target.label] = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]
            stack.enter_context(
                running(
                    command, env=_env(database_url, admin, target), ready_url=f"{bases[target.label]}/health"
                )
            )
        secret = _endpoint_token(bases[OFF], admin)  # one database: every server sees the endpoint
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}", flush=True)
            for label, base in bases.items():
                result = run_load(
                    f"{base}/api/signal-endpoint/{ENDPOINT}",
                    body=body,
                    headers=headers,
                    connections=args.connections,
                    duration=args.duration,
                    warmup=args.warmup,
                    tool=args.tool,
                )
                results.setdefault(label, []).append(result)
                print(
                    f"  {label:8} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}",
                    flush=True,
                )
    return results


def render(args: argparse.Namespace, results: dict[str, list[LoadResult]], started: str, load: float) -> str:
    off = results[OFF]
    lines = [
        SECTION,
        "",
        f"`python -m bench.rate_limit --rate {args.rate:g} --connections {args.connections} "
        f"--duration {args.duration:g} --warmup {args.warmup:g} --rounds {args.rounds}` ({started}, load "
        f"average {load:.2f} at the start; load generator `{args.tool}`). Three `switchman serve --no-worker` "
        "servers on one PostgreSQL database, loaded alternately with `bench.ingest`'s 500-byte alert: rate "
        f"limit off, per process, and shared by the cluster (ADR 0029), both at {args.rate:,.0f}/s — above "
        "what one server ingests, so every call is accepted and the rows show what deciding costs (the "
        "cluster limiter leases 2 % of the rate per database round trip). Other engineers' work shared the "
        "2 CPUs during the run: single rounds are noisy, compare the per-round ratios.",
        "",
        "| rate limit | requests/s (median round) | p50 ms | p99 ms | errors | / off, median | rounds |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, runs in results.items():
        median = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        ratios = [r.rps / o.rps for r, o in zip(runs, off, strict=True)]
        ratio = "" if label == OFF else f"**{statistics.median(ratios):.0%}**"
        rounds = "" if label == OFF else " / ".join(f"{x:.0%}" for x in ratios)
        lines.append(
            f"| {label} | {median.rps:,.0f} | {median.p50_ms:.2f} | {median.p99_ms:.2f} | "
            f"{sum(r.errors for r in runs)} | {ratio} | {rounds} |"
        )
    lines += ["", f"Machine: {machine_description()}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20_000.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tool", choices=["wrk", "python"], default=None)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    args.tool = args.tool or ("wrk" if wrk_available() else "python")
    started, load = now_iso(), os.getloadavg()[0]
    name = f"switchman_bench_rl_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        results = measure(args, f"{PG_SERVER}/{name}")
        stored = int(asyncio.run(pg_fetchval("SELECT count(*) FROM signal", f"{PG_SERVER}/{name}")))
        print(f"signals stored: {stored:,}", flush=True)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    text = render(args, results, started, load)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
