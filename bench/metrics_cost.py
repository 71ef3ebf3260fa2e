"""What recording Prometheus metrics costs ingestion (ADR 0030): metrics on against off, in one run.

    make bench-metrics            # = python -m bench.metrics_cost
    python -m bench.metrics_cost [--connections 64] [--duration 3] [--warmup 1] [--rounds 3]
                                 [--tool wrk|python] [--no-write]

For each database (a fresh SQLite file, then a fresh PostgreSQL database on SWITCHMAN_BENCH_PG), two
`switchman serve --no-worker` servers run side by side on that one database with `bench.ingest`'s settings
and 500-byte alert — one with `SWITCHMAN_METRICS_ENABLED=true` (the default), one with `false` — and are
loaded one after the other, round after round, each round starting with the next server, beside a third
server with metrics on too (an A/A control: what the two servers with metrics on differ by is noise). Besides
requests/s, each round measures the server's CPU time per stored signal (its process's user + system time,
from /proc, over the signals the round added): throughput on a shared 2-core machine swings with whatever
else runs, CPU per call much less. Each server is
scraped once after the rounds, so the counters are checked to have moved (on) or to be absent (off).
Then what one ingestion call records, in this process: `signal_received` and `request_finished` back to
back 200,000 times (less exposed to other work on the machine than the HTTP rounds).
Results go to stdout and the `## Metrics cost` section of docs/benchmarks.md. Goal: on ≥ 95 % of off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._load import LoadResult, run_load, wrk_available
from bench._pg import PG_SERVER, pg_admin
from bench._report import machine_description, now_iso, write_section
from bench._server import free_port, running
from bench.ingest import count_signals, durable_env, payload_bytes

SECTION = "## Metrics cost"
ENDPOINT = "bench-metrics"
ON, OFF, CONTROL = "on", "off", "on, again"  # CONTROL: a second server with metrics on (an A/A check)
GOAL = 0.95


def _env(database_url: str, admin: str, enabled: bool) -> dict[str, str]:
    return {**durable_env(database_url, admin), "SWITCHMAN_METRICS_ENABLED": "true" if enabled else "false"}


def _endpoint_token(base: str, admin: str) -> str:
    with httpx.Client(base_url=base, headers={"Authorization": admin}) as client:
        endpoint = client.post("/api/admin/signal-endpoints", json={"name": ENDPOINT})
        endpoint.raise_for_status()
        token = client.post(f"/api/admin/signal-endpoints/{endpoint.json()['id']}/tokens", json={"name": "b"})
        token.raise_for_status()
    secret: str = token.json()["token"]
    return secret


@dataclass(frozen=True)
class Round:
    load: LoadResult
    cpu_us_per_call: float  # the server's CPU time per signal it stored in the round (warm-up included)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(args: argparse.Namespace, database_url: str) -> dict[str, list[Round]]:
    admin = f"*:*.{secrets.token_hex(16)}"
    results: dict[str, list[Round]] = {}
    # The database, endpoint and token are set up by a server of their own, stopped before the measured
    # two start: the server that ran the migrations and the admin calls was measured ~6 % slower even
    # with metrics on in both (an A/A run), which this bench first mistook for the cost of metrics.
    setup_port = free_port()
    command = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(setup_port)]
    setup_env = _env(database_url, admin, enabled=False)
    with running(command, env=setup_env, ready_url=f"http://127.0.0.1:{setup_port}/health"):
        secret = _endpoint_token(f"http://127.0.0.1:{setup_port}", admin)
    with contextlib.ExitStack() as stack:
        bases: dict[str, str] = {}
        pids: dict[str, int] = {}
        for label in (ON, OFF, CONTROL):
            port = free_port()
            bases[label] = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]
            env = _env(database_url, admin, enabled=label != OFF)
            pids[label] = stack.enter_context(
                running(command, env=env, ready_url=f"{bases[label]}/health")
            ).pid
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
        for round_number in range(1, args.rounds + 1):
            labels = [ON, OFF, CONTROL]
            shift = (round_number - 1) % len(labels)  # each round starts with another server: no order bias
            order = labels[shift:] + labels[:shift]
            for label in order:
                cpu, stored = _cpu_seconds(pids[label]), count_signals(database_url)
                result = run_load(
                    f"{bases[label]}/api/signal-endpoint/{ENDPOINT}",
                    body=payload_bytes(),
                    headers=headers,
                    connections=args.connections,
                    duration=args.duration,
                    warmup=args.warmup,
                    tool=args.tool,
                )
                calls = max(1, count_signals(database_url) - stored)
                per_call = (_cpu_seconds(pids[label]) - cpu) / calls * 1e6
                results.setdefault(label, []).append(Round(result, per_call))
                print(
                    f"  round {round_number} metrics {label:9} {result.rps:8.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  "
                    f"CPU {per_call:6.1f} µs/call",
                    flush=True,
                )
        _check_scrapes(bases)
    return results


def _check_scrapes(bases: dict[str, str]) -> None:
    """The server with metrics on counted the load; the one with them off serves no scrape."""
    on = httpx.get(f"{bases[ON]}/metrics")
    on.raise_for_status()
    counted = f'switchman_signals_received_total{{endpoint="{ENDPOINT}",outcome="accepted"}}'
    assert counted in on.text, "the server with metrics on did not count the load"
    assert httpx.get(f"{bases[OFF]}/metrics").status_code == 404


def recording_cost(calls: int = 200_000) -> float:
    """Microseconds of recording per ingestion call: the signal counted and the request observed."""
    from switchman import metrics

    metrics.configure(enabled=True)
    scope = {"type": "http", "method": "POST", metrics.ROUTE_TEMPLATE: "/api/signal-endpoint/{name}"}
    start = time.perf_counter()
    for _ in range(calls):
        metrics.signal_received(ENDPOINT, metrics.ACCEPTED, exists=True)
        metrics.request_finished(scope, 200, 0.004)
    cost = (time.perf_counter() - start) / calls * 1e6
    print(f"  recording per call: {cost:.2f} µs", flush=True)
    return cost


def _ratios(results: dict[str, list[Round]], over: str = OFF) -> list[float]:
    return [on.load.rps / base.load.rps for on, base in zip(results[ON], results[over], strict=True)]


def render(
    args: argparse.Namespace,
    by_database: dict[str, dict[str, list[Round]]],
    started: str,
    loads: tuple[float, float],
    cost: float,
) -> str:
    lines = [
        SECTION,
        "",
        f"`python -m bench.metrics_cost --connections {args.connections} --duration {args.duration:g} "
        f"--warmup {args.warmup:g} --rounds {args.rounds}` ({started}; load average {loads[0]:.2f} at the "
        f"start, {loads[1]:.2f} at the end; load generator `{args.tool}`). Two `switchman serve --no-worker` "
        "servers on one fresh database, `SWITCHMAN_METRICS_ENABLED=true` and `false`, otherwise "
        "`bench.ingest`'s settings and 500-byte alert (database, endpoint and token set up by a server of "
        "their own, stopped before), loaded one after the other, each round starting with the next (ADR 0030). Other engineers' work shared the 2 CPUs during the run: single rounds "
        f"are noisy, compare the per-round ratios. Server CPU per call: the server process's user + system "
        "time over the signals the round stored (warm-up included), less exposed to the rest of the machine "
        "than requests/s. A third server, with metrics on as well, is loaded in the same rotation: "
        "the last column compares the two servers with metrics on — a difference there is the noise floor "
        f"of the run, not metrics. Goal: on ≥ {GOAL:.0%} of off.",
        "",
        "| database | metrics on, req/s (median) | off, req/s (median) | on / off, median | rounds | "
        "server CPU per call on / off (median) | CPU: off / on | goal (throughput / CPU) | "
        "A/A control: on / on again (throughput / CPU) |",
        "|---|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for database, results in by_database.items():
        ratios = _ratios(results)
        on = statistics.median(r.load.rps for r in results[ON])
        off = statistics.median(r.load.rps for r in results[OFF])
        ratio = statistics.median(ratios)
        cpu_on = statistics.median(r.cpu_us_per_call for r in results[ON])
        cpu_off = statistics.median(r.cpu_us_per_call for r in results[OFF])
        verdicts = " / ".join("met" if x >= GOAL else "**missed**" for x in (ratio, cpu_off / cpu_on))
        control = statistics.median(_ratios(results, CONTROL))
        cpu_control = statistics.median(r.cpu_us_per_call for r in results[CONTROL])
        lines.append(
            f"| {database} | {on:,.0f} | {off:,.0f} | **{ratio:.0%}** | "
            f"{' / '.join(f'{x:.0%}' for x in ratios)} | {cpu_on:.0f} / {cpu_off:.0f} µs | "
            f"**{cpu_off / cpu_on:.0%}** | {verdicts} | {control:.0%} / {cpu_control / cpu_on:.0%} |"
        )
    fastest_off = max(statistics.median(r.load.rps for r in results[OFF]) for results in by_database.values())
    lines += [
        "",
        f"Recording alone, in-process, for one ingestion call (the signal counted and the request observed, "
        f"back to back {200_000:,} times): **{cost:.2f} µs** — {cost * fastest_off / 1e6:.1%} of one core "
        f"at the fastest median above ({fastest_off:,.0f} req/s).",
        "",
        f"Machine: {machine_description()}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tool", choices=["wrk", "python"], default=None)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    args.tool = args.tool or ("wrk" if wrk_available() else "python")
    started, load_before = now_iso(), os.getloadavg()[0]
    by_database: dict[str, dict[str, list[Round]]] = {}
    with tempfile.TemporaryDirectory(prefix="switchman-bench-metrics-") as scratch:
        print("SQLite", flush=True)
        by_database["SQLite"] = measure(args, f"sqlite:///{Path(scratch) / 'bench.db'}")
    if not args.no_postgres:
        name = f"switchman_bench_metrics_{secrets.token_hex(4)}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
        try:
            print("PostgreSQL", flush=True)
            by_database["PostgreSQL"] = measure(args, f"{PG_SERVER}/{name}")
        finally:
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    cost = recording_cost()
    text = render(args, by_database, started, (load_before, os.getloadavg()[0]), cost)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
