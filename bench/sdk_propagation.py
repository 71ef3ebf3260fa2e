"""Signal → SDK: how long after a signal's 200 Unleash's Python SDK sees the flag change.

For each database: a fresh database, `switchman serve` (in-process worker) as a subprocess with a client
token from `SWITCHMAN_INIT_CLIENT_API_TOKENS`; a flag turned on in development; two action sets on one
signal endpoint (`state IN [firing]` → off, `state IN [resolved]` → on). The official Python SDK
(UnleashClient, `refresh_interval=1`, metrics off) runs in this process. Then N toggles: wait a random
0-1 s (so the signal lands at a random phase of the SDK's poll), send a signal for the opposite state,
and from the moment its 200 arrives poll both
- `GET /api/client/features` with the last ETag, every 10 ms (switchman's part: worker + commit + what the client API
  serves — the moment any SDK polling then would get the change), and
- `sdk.is_enabled(flag)`, every 1 ms (what the application sees: switchman's part + the wait for the SDK's next poll).

    python -m bench.sdk_propagation [--toggles 20] [--databases sqlite,postgresql] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench._pg import PG_SERVER, pg_admin
from bench._report import ResultRow, now_iso, percentile, write_results, write_section
from bench._server import free_port, running

HEADING = "## Signal to SDK"
MODULE = "sdk_propagation"
COMPARISON = "signal→SDK (embedded store, Python SDK)"
ADMIN = "*:*.bench-sdk-admin-secret"
CLIENT = "default:development.bench-sdk-client-secret"
FLAG = "bench-sdk-flag"
REFRESH_INTERVAL = 1  # seconds (the SDK's minimum is 1)
SDK_POLL = 0.001  # seconds between `is_enabled` checks (in memory)
SERVER_POLL = (
    0.01  # seconds between GETs: tighter polling would compete with the worker for the server's loop
)
TIMEOUT = 10.0  # a toggle not seen after this is an error, not a figure


@dataclass(frozen=True)
class Toggle:
    worker_ms: float  # signal 200 → the worker recorded the flag change (its audit event's createdAt)
    server_ms: float  # signal 200 → /api/client/features serves the new state
    sdk_ms: float  # signal 200 → sdk.is_enabled returns the new state


@dataclass(frozen=True)
class Run:
    database: str
    toggles: list[Toggle]


def _setup(base: str) -> tuple[str, str]:
    with httpx.Client(base_url=base, headers={"Authorization": ADMIN}, timeout=10) as http:

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = http.post(path, json=body) if body is not None else http.post(path)
            response.raise_for_status()
            return response.json() if response.content else {}

        post("/api/admin/projects/default/features", {"name": FLAG})
        post(f"/api/admin/projects/default/features/{FLAG}/environments/development/on")
        actor = post("/api/admin/service-account", {"username": "bench-bot", "name": "Bench", "rootRole": 2})
        endpoint = post("/api/admin/signal-endpoints", {"name": "bench-apm"})
        token = post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", {"name": "bench"})
        for state, action in (("firing", "TOGGLE_FEATURE_OFF"), ("resolved", "TOGGLE_FEATURE_ON")):
            post(
                "/api/admin/projects/default/actions",
                {
                    "name": f"{state} → {action}",
                    "actorId": actor["id"],
                    "match": {
                        "source": "signal-endpoint",
                        "sourceId": endpoint["id"],
                        "payload": {"state": {"operator": "IN", "values": [state]}},
                    },
                    "actions": [
                        {
                            "action": action,
                            "sortOrder": 1,
                            "executionParams": {
                                "project": "default",
                                "environment": "development",
                                "featureName": FLAG,
                            },
                        }
                    ],
                },
            )
        return "bench-apm", token["token"]


def _served_state(http: httpx.Client, etag: str | None) -> tuple[bool | None, str | None]:
    """The flag's state in /api/client/features (None when 304), and the ETag."""
    headers = {"Authorization": CLIENT} | ({"If-None-Match": etag} if etag else {})
    response = http.get("/api/client/features", headers=headers)
    if response.status_code == 304:
        return None, etag
    response.raise_for_status()
    flag = next(f for f in response.json()["features"] if f["name"] == FLAG)
    return bool(flag["enabled"]), response.headers["etag"]


def _last_flag_change(http: httpx.Client) -> float:
    """Unix time of the newest enable/disable event of the flag (written in the worker's transaction)."""
    response = http.get(f"/api/admin/events/{FLAG}", headers={"Authorization": ADMIN})
    response.raise_for_status()
    newest = max(
        (e for e in response.json()["events"] if e["type"].startswith("feature-environment-")),
        key=lambda e: e["id"],
    )
    return datetime.fromisoformat(newest["createdAt"].replace("Z", "+00:00")).timestamp()


def _measure(base: str, toggles: int, scratch: Path, database: str) -> list[Toggle]:
    from UnleashClient import UnleashClient

    endpoint, signal_token = _setup(base)
    sdk = UnleashClient(
        url=f"{base}/api",
        app_name=f"switchman-bench-{database}",  # one SDK instance per app name (else the SDK warns)
        refresh_interval=REFRESH_INTERVAL,
        disable_metrics=True,
        custom_headers={"Authorization": CLIENT},
        cache_directory=str(scratch / "sdk-cache"),
    )
    results: list[Toggle] = []
    try:
        sdk.initialize_client()
        if not sdk.is_enabled(FLAG):
            raise RuntimeError("the SDK does not see the flag on after initialisation")
        with httpx.Client(base_url=base, timeout=10) as http:
            state, etag = _served_state(http, None)
            for i in range(toggles):
                target = i % 2 == 1  # first toggle turns the flag off
                time.sleep(random.uniform(0, REFRESH_INTERVAL))  # a random phase of the SDK poll
                sent = http.post(
                    f"/api/signal-endpoint/{endpoint}",
                    json={"state": "resolved" if target else "firing"},
                    headers={"Authorization": f"Bearer {signal_token}"},
                )
                sent.raise_for_status()
                acknowledged = time.perf_counter()
                acknowledged_wall = time.time()
                server_ms = sdk_ms = None
                next_get = 0.0
                while server_ms is None or sdk_ms is None:
                    elapsed = time.perf_counter() - acknowledged
                    if elapsed > TIMEOUT:
                        raise RuntimeError(
                            f"toggle {i} not seen after {TIMEOUT} s (server {server_ms}, sdk {sdk_ms})"
                        )
                    if server_ms is None and elapsed >= next_get:
                        next_get = elapsed + SERVER_POLL
                        served, etag = _served_state(http, etag)
                        if served is not None:
                            state = served
                        if state is target:
                            server_ms = (time.perf_counter() - acknowledged) * 1000
                    if sdk_ms is None and sdk.is_enabled(FLAG) is target:
                        sdk_ms = (time.perf_counter() - acknowledged) * 1000
                    time.sleep(SDK_POLL)
                worker_ms = (_last_flag_change(http) - acknowledged_wall) * 1000
                results.append(Toggle(worker_ms=worker_ms, server_ms=server_ms, sdk_ms=sdk_ms))
                print(
                    f"  toggle {i + 1}/{toggles}: worker {worker_ms:.1f} ms, served {server_ms:.1f} ms, "
                    f"SDK {sdk_ms:.1f} ms",
                    flush=True,
                )
    finally:
        sdk.destroy()
    return results


def run_database(database: str, toggles: int) -> Run:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if database == "sqlite":
            url = f"sqlite:///{scratch / 'bench.db'}"
        else:
            name = f"switchman_bench_sdk_{secrets.token_hex(3)}"
            asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
            url = f"{PG_SERVER}/{name}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "SWITCHMAN_DATABASE_URL": url,
            "SWITCHMAN_INIT_ADMIN_API_TOKENS": ADMIN,
            "SWITCHMAN_INIT_CLIENT_API_TOKENS": CLIENT,
            "SWITCHMAN_LOG_LEVEL": "WARNING",
        }
        try:
            with running(
                [sys.executable, "-m", "switchman", "serve", "--port", str(port)],
                env=env,
                ready_url=f"{base}/health",
            ):
                return Run(database, _measure(base, toggles, scratch, database))
        finally:
            if database != "sqlite":
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    ordered = sorted(values)
    return ordered[0], statistics.median(ordered), percentile(ordered, 0.99), ordered[-1]


def _fmt(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in _stats(values))


def render(runs: list[Run], args: argparse.Namespace) -> str:
    lines = [
        HEADING,
        "",
        f"`make bench-sdk` (`python -m bench.sdk_propagation --toggles {args.toggles}`), measured "
        f"{datetime.now(UTC):%Y-%m-%d} on the shared 2-core machine. `switchman serve` (in-process worker) "
        "as a subprocess; Unleash's Python SDK (UnleashClient 6.9.1, `refresh_interval=1`) in the benchmark "
        "process. Each toggle: a random 0-1 s pause, a signal whose action set turns the flag off (or on), "
        "then polling from the signal's 200. *Switchman's part* = until `/api/client/features` (polled every 10 ms) "
        "serves the new state (worker run + commit + revision/ETag + the 10 ms poll step); *worker changed the flag* = "
        "the createdAt of the flag's audit event, written in the worker's transaction before its commit (same clock; "
        "negative when the worker was faster than this process reading the 200); *SDK* = until "
        "`is_enabled` returns it, "
        "which adds the wait for the SDK's next poll (0-1 s with `refresh_interval=1`). Load average during the "
        f"run: {os.getloadavg()[0]:.1f} on 2 CPUs (other engineers' work shares the machine).",
        "",
        "| database | toggles | worker changed the flag, min / median / p99 / max (ms) | switchman's part: served by `/api/client/features` (ms) | SDK sees it (ms) | SDK poll wait, median (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        worker = [t.worker_ms for t in run.toggles]
        server = [t.server_ms for t in run.toggles]
        sdk = [t.sdk_ms for t in run.toggles]
        wait = statistics.median(t.sdk_ms - t.server_ms for t in run.toggles)
        lines.append(
            f"| {run.database} | {len(run.toggles)} | {_fmt(worker)} | {_fmt(server)} | {_fmt(sdk)} | {wait:,.0f} |"
        )
    lines += [
        "",
        f"Bound: the SDK sees the change within its refresh interval + 1 s ({(REFRESH_INTERVAL + 1) * 1000:,} ms) "
        "of the signal's 200. For comparison, Unleash 8.2.0 itself, toggled directly through its admin API "
        "(no signal, no worker), reached the same SDK after min 931 / median 1,263 / max 1,652 ms over 12 "
        "toggles (measured on this machine kind in November 2026): its client payload lags a change by up to "
        "1 s (revision scheduler) before the SDK's own poll. Unleash Enterprise processes signals once a minute.",
        "",
    ]
    return "\n".join(lines)


def rows_of(runs: list[Run]) -> list[ResultRow]:
    bound = (REFRESH_INTERVAL + 1) * 1000.0
    rows: list[ResultRow] = []
    for run in runs:
        server = _stats([t.server_ms for t in run.toggles])
        sdk = _stats([t.sdk_ms for t in run.toggles])
        for label, value in zip(("min", "median", "p99", "max"), sdk, strict=True):
            goal = f"≤ {bound:,.0f} ms" if label == "max" else None
            met = value <= bound if label == "max" else None
            rows.append(
                ResultRow(
                    COMPARISON, f"{run.database} signal 200 → SDK sees it, {label}", value, "ms", goal, met
                )
            )
        worker = _stats([t.worker_ms for t in run.toggles])
        for label, value in zip(("median", "p99"), worker[1:3], strict=True):
            rows.append(
                ResultRow(
                    COMPARISON, f"{run.database} signal 200 → worker changed the flag, {label}", value, "ms"
                )
            )
        for label, value in zip(("median", "p99"), server[1:3], strict=True):
            rows.append(
                ResultRow(
                    COMPARISON,
                    f"{run.database} signal 200 → served by /api/client/features, {label}",
                    value,
                    "ms",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--toggles", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started_at = now_iso()
    runs = []
    for database in (d.strip() for d in args.databases.split(",") if d.strip()):
        print(f"{database}:", flush=True)
        run = run_database(database, args.toggles)
        print(
            f"{database}: switchman's part {_fmt([t.server_ms for t in run.toggles])} ms, "
            f"SDK {_fmt([t.sdk_ms for t in run.toggles])} ms (min / median / p99 / max)",
            flush=True,
        )
        runs.append(run)
    if not args.no_write:
        write_section(HEADING, render(runs, args))
        command = "python -m bench.sdk_propagation " + " ".join(sys.argv[1:])
        write_results(MODULE, command.strip(), started_at, rows_of(runs))


if __name__ == "__main__":
    main()
