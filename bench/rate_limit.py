"""What the cluster rate limit costs ingestion on PostgreSQL (ADR 0029).

    python -m bench.rate_limit [--rate 20000] [--connections 64] [--duration 3] [--warmup 1] [--rounds 3]
                               [--enforce-rate 1000] [--tool wrk|python] [--no-write]

Three `switchman serve --no-worker` servers run side by side on one fresh PostgreSQL database, each with
the same endpoint and token, and are loaded alternately, round after round, with `bench.ingest`'s body
and settings: rate limit off (`SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND=0`), per process (scope `process`)
and shared by the cluster (scope `cluster`), both at `--rate`, above what one server ingests, so every
call is accepted and the figures show what deciding costs (the cluster limiter leases a block of 1 % of
the rate from the database while it still holds one).

Then the decision alone, in this process: `take` called back to back 200,000 times on one name, per
process and shared (leases on the benchmark's database included; a single caller never lets a lease
asked ahead run before the allowance is spent, so each block's round trip is waited for — an upper
bound). Less exposed to other work on the machine than the HTTP rounds.

Then enforcement across processes: two replicas (two servers on the database) with scope `cluster`, then
two with scope `process`, each pair at `--enforce-rate` and loaded at once, far above it; the signals
stored per whole second of the run (by `created_at`, the first and last second left out) show what the
pair accepted per second against the rate. Results go to stdout and the `## Cluster rate limits` section
of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from bench._load import LoadResult, run_load, wrk_available
from bench._pg import PG_SERVER, pg_admin, pg_fetchval
from bench._report import machine_description, now_iso, write_section
from bench._server import free_port, running
from bench.ingest import durable_env, payload_bytes
from switchman.config import to_async_url
from switchman.db.engine import Database
from switchman.signal_endpoints.cluster_rate_limit import ClusterRateLimiter
from switchman.signal_endpoints.rate_limit import EndpointRateLimiter, RateLimiter

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
    return {**durable_env(database_url, admin), **target.env}


def _endpoint_token(base: str, admin: str, name: str = ENDPOINT) -> str:
    with httpx.Client(base_url=base, headers={"Authorization": admin}) as client:
        endpoint = client.post("/api/admin/signal-endpoints", json={"name": name})
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
            labels = list(bases)
            shift = (round_number - 1) % len(labels)  # each round starts with another server: no order bias
            for label in labels[shift:] + labels[:shift]:
                result = run_load(
                    f"{bases[label]}/api/signal-endpoint/{ENDPOINT}",
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


def measure_enforcement(args: argparse.Namespace, database_url: str, scope: str) -> list[int]:
    """Two replicas with `scope` at `--enforce-rate`, loaded at once; signals stored per whole second."""
    admin = f"*:*.{secrets.token_hex(16)}"
    target = Target(
        scope,
        {
            "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": f"{args.enforce_rate:g}",
            "SWITCHMAN_SIGNAL_RATE_LIMIT_SCOPE": scope,
        },
    )
    with contextlib.ExitStack() as stack:
        bases = []
        for _ in range(2):
            port = free_port()
            bases.append(f"http://127.0.0.1:{port}")
            command = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]
            stack.enter_context(
                running(command, env=_env(database_url, admin, target), ready_url=f"{bases[-1]}/health")
            )
        name = f"{ENDPOINT}-{scope}"
        secret = _endpoint_token(bases[0], admin, name)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
        with ThreadPoolExecutor(2) as pool:
            loads = [
                pool.submit(
                    run_load,
                    f"{base}/api/signal-endpoint/{name}",
                    body=payload_bytes(),
                    headers=headers,
                    connections=args.connections // 2,
                    duration=args.duration * 2,
                    warmup=0,
                    tool=args.tool,
                )
                for base in bases
            ]
            for future in loads:
                future.result()
    whole = asyncio.run(counts_per_second(database_url, name))[1:-1]
    print(f"  two replicas, {scope:8} accepted per second: {whole}", flush=True)
    return whole


async def decision_cost(
    args: argparse.Namespace, database_url: str, calls: int = 200_000
) -> dict[str, float]:
    """Microseconds per `take`, back to back on one name: the in-process bucket, then the cluster's."""
    db = Database(to_async_url(database_url))
    try:
        cost: dict[str, float] = {}
        limiters: dict[str, EndpointRateLimiter] = {
            "process": RateLimiter(args.rate),
            "cluster": ClusterRateLimiter(db, args.rate),
        }
        for label, limiter in limiters.items():
            start = time.perf_counter()
            for _ in range(calls):
                await limiter.take("bench-decisions")
            cost[label] = (time.perf_counter() - start) / calls * 1e6
            await limiter.close()
        print(
            f"  one decision: {cost['process']:.2f} µs per process, {cost['cluster']:.2f} µs shared",
            flush=True,
        )
        return cost
    finally:
        await db.dispose()


async def counts_per_second(database_url: str, endpoint_name: str) -> list[int]:
    """Signals of the endpoint stored per second of `created_at`, in time order."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT count(*) FROM signal s JOIN signal_endpoint e ON e.id = s.source_id WHERE e.name = $1 "
            "GROUP BY date_trunc('second', s.created_at) ORDER BY date_trunc('second', s.created_at)",
            endpoint_name,
        )
    finally:
        await conn.close()
    return [int(row[0]) for row in rows]


def render(
    args: argparse.Namespace,
    results: dict[str, list[LoadResult]],
    cost: dict[str, float],
    enforcement: dict[str, list[int]],
    started: str,
    load: float,
) -> str:
    off = results[OFF]
    lines = [
        SECTION,
        "",
        f"`python -m bench.rate_limit --rate {args.rate:g} --connections {args.connections} "
        f"--duration {args.duration:g} --warmup {args.warmup:g} --rounds {args.rounds}` ({started}, load "
        f"average {load:.2f} at the start; load generator `{args.tool}`). Three `switchman serve --no-worker` "
        "servers on one PostgreSQL database, loaded one after the other (each round starting with the next one) with `bench.ingest`'s 500-byte alert: rate "
        f"limit off, per process, and shared by the cluster (ADR 0029), both at {args.rate:,.0f}/s — above "
        "what one server ingests, so every call is accepted and the rows show what deciding costs (the "
        "cluster limiter leases 1 % of the rate per database round trip). Other work shared the machine's "
        "CPUs during the run (load average above), and the servers, the database and the load generator "
        "share them too: with a load average above the CPU count, rounds vary by more than any limiter "
        "costs (the per-process limiter is the same code as before ADR 0029) — the in-process decision "
        "cost below is the steadier figure.",
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
    lines += [
        "",
        f"One decision in-process, `take` back to back {200_000:,} times on one name (leases on the same "
        f"database included, each waited for: an upper bound): **{cost['process']:.2f} µs** per process, "
        f"**{cost['cluster']:.2f} µs** shared by the cluster.",
        "",
        f"Enforcement across processes: two replicas on the database, each loaded at once by "
        f"{args.connections // 2} connections for {2 * args.duration:g} s, far above the rate "
        f"({args.enforce_rate:,.0f}/s per endpoint); signals the pair stored per whole second (goal for "
        "`cluster`: within ±10 % of the rate):",
        "",
        "| scope | seconds | accepted per second (min / median / max) | median / rate | within ±10 % |",
        "|---|---:|---|---:|---|",
    ]
    for scope, counts in enforcement.items():
        if not counts:
            lines.append(f"| {scope} | 0 | (no whole second measured) | | |")
            continue
        ratio = statistics.median(counts) / args.enforce_rate
        within = all(abs(c / args.enforce_rate - 1) <= 0.10 for c in counts)
        lines.append(
            f"| {scope} | {len(counts)} | {min(counts):,} / {statistics.median(counts):,.0f} / {max(counts):,} "
            f"| {ratio:.0%} | {'yes' if within else 'no'} |"
        )
    lines += ["", f"Machine: {machine_description()}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20_000.0)
    parser.add_argument("--enforce-rate", type=float, default=1_000.0)
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
        cost = asyncio.run(decision_cost(args, f"{PG_SERVER}/{name}"))
        enforcement = {
            scope: measure_enforcement(args, f"{PG_SERVER}/{name}", scope) for scope in ("cluster", "process")
        }
        stored = int(asyncio.run(pg_fetchval("SELECT count(*) FROM signal", f"{PG_SERVER}/{name}")))
        print(f"signals stored: {stored:,}", flush=True)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    text = render(args, results, cost, enforcement, started, load)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
