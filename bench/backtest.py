"""Backtest benchmark: an action set replayed over 10,000 stored signals through the real server.

    make bench-backtest        # = python -m bench.backtest
    python -m bench.backtest [--signals 10000] [--runs 5] [--databases sqlite,postgresql] [--no-write]

For each database: `switchman serve --no-worker` on a fresh database, one endpoint, `--signals` signals
posted through the ingestion API (the ~500-byte alert of bench.ingest, half of them `firing`), one action
set filtering on two keys; then `POST …/actions/{id}/backtest` with `limit` = `--signals`, `--runs` times
back to back, each answer checked (every signal replayed, half matched) — once with the filters only, once
replaying a policy (per alert of 20, a window of 3 within an hour and a 10-minute cooldown: one run per
firing alert, the rest held back). Goal (issue 14): an answer within 2 s for 10,000 signals. Results: stdout, the `## Backtest` section of docs/benchmarks.md and
bench/out/backtest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from bench._pg import scratch_database
from bench._report import BENCHMARKS_MD, ResultRow, now_iso, write_results, write_section
from bench._server import free_port, running
from bench.ingest import payload_bytes

SECTION = "## Backtest"
GOAL_SECONDS = 2.0
COMPARISON = "7 backtest"


ALERTS = 20  # alert identities the signals cycle through (`alert`: a0 … a19)
POLICY = {
    "perAlert": True,
    "alertKey": "alert",
    "windowCount": 3,
    "windowSeconds": 3600,
    "cooldownSeconds": 600,
}
VARIANTS = {"filters only": None, "with a policy": POLICY}


@dataclass(frozen=True)
class Timing:
    database: str
    variant: str
    signals: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


async def _seed(base: str, admin: str, signals: int) -> int:
    """The endpoint, `signals` signals (half firing) and the action set; returns the set's id."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": admin}, timeout=30) as client:
        endpoint = (await client.post("/api/admin/signal-endpoints", json={"name": "bench-backtest"})).json()
        token = (
            await client.post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", json={"name": "b"})
        ).json()["token"]
        account = (
            await client.post(
                "/api/admin/service-account", json={"username": "bench-bt", "name": "b", "rootRole": 1}
            )
        ).json()
        await client.post("/api/admin/projects/default/features", json={"name": "bench-flag"})
        alert = orjson.loads(payload_bytes())
        bodies = [
            orjson.dumps({**alert, "status": "firing" if n % 2 else "resolved", "alert": f"a{n % ALERTS}"})
            for n in range(signals)
        ]
        semaphore = asyncio.Semaphore(32)

        async def post(body: bytes) -> None:
            async with semaphore:
                response = await client.post(
                    "/api/signal-endpoint/bench-backtest", content=body, headers={"Authorization": token}
                )
                response.raise_for_status()

        await asyncio.gather(*(post(body) for body in bodies))
        created = await client.post(
            "/api/admin/projects/default/actions",
            json={
                "name": "bench backtest",
                "actorId": account["id"],
                "match": {
                    "source": "signal-endpoint",
                    "sourceId": endpoint["id"],
                    "payload": {
                        "status": {"operator": "IN", "values": ["firing"]},
                        "alerts[*].labels.severity": {"operator": "NOT_IN", "values": ["info"]},
                    },
                },
                "actions": [
                    {
                        "action": "TOGGLE_FEATURE_OFF",
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
        created.raise_for_status()
        return int(created.json()["id"])


def _check(database: str, policy: object, result: dict[str, object], signals: int) -> None:
    runs, held = result["runs"], result.get("heldBack", [])
    assert isinstance(runs, list) and isinstance(held, list)
    firing_alerts = len({n % ALERTS for n in range(signals) if n % 2})
    expected_runs = signals // 2 if policy is None else firing_alerts
    if result["signals"] != signals or result["matched"] != signals // 2 or len(runs) != expected_runs:
        raise SystemExit(
            f"{database}: unexpected backtest answer {result['signals']=} {result['matched']=} {len(runs)=}"
        )
    if len(runs) + len(held) != signals // 2:
        raise SystemExit(f"{database}: {len(runs)} runs and {len(held)} held back for {signals // 2} matches")


def measure(database: str, args: argparse.Namespace, scratch: Path) -> list[Timing]:
    admin = f"*:*.{secrets.token_hex(16)}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        scratch_database(database, scratch, prefix="switchman_bench_backtest") as url,
        running(
            [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)],
            env={
                "SWITCHMAN_DATABASE_URL": url,
                "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
                "SWITCHMAN_SIGNAL_RATE_LIMIT_PER_SECOND": "0",
                "SWITCHMAN_LOG_LEVEL": "WARNING",
            },
            ready_url=f"{base}/health",
        ),
    ):
        set_id = asyncio.run(_seed(base, admin, args.signals))
        timings: list[Timing] = []
        with httpx.Client(base_url=base, headers={"Authorization": admin}, timeout=60) as client:
            for variant, policy in VARIANTS.items():
                body: dict[str, object] = {"limit": args.signals}
                if policy is not None:
                    body["policy"] = policy
                seconds: list[float] = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    answer = client.post(f"/api/admin/projects/default/actions/{set_id}/backtest", json=body)
                    seconds.append(time.perf_counter() - started)
                    answer.raise_for_status()
                    _check(database, policy, answer.json(), args.signals)
                timing = Timing(database, variant, args.signals, seconds)
                print(
                    f"{database} ({variant}): {args.signals:,} signals, backtest median {timing.median:.3f} s, "
                    f"max {max(seconds):.3f} s"
                )
                timings.append(timing)
    return timings


def render(timings: list[Timing], args: argparse.Namespace, load: tuple[float, float, float]) -> str:
    lines = [
        SECTION,
        "",
        f"`python -m bench.backtest` ({now_iso()}, load average {load[0]:.2f} at the start): "
        f"`POST /api/admin/projects/default/actions/{{id}}/backtest` with `limit` {args.signals:,} through "
        f"`switchman serve --no-worker`, after {args.signals:,} ≈ 500-byte alerts were posted through the "
        "ingestion API; two filters (one of them `[*]`), half the signals matching; each answer checked. "
        f"{args.runs} runs back to back, with the filters only and replaying a policy sent with the request "
        f"(`{orjson.dumps(POLICY).decode()}`: one run per firing alert, the other matches held back). "
        f"Goal: ≤ {GOAL_SECONDS:g} s for 10,000 signals.",
        "",
        "| database | backtest | signals | median (s) | max (s) | goal met |",
        "|---|---|---:|---:|---:|---|",
    ]
    for t in timings:
        met = "yes" if t.median <= GOAL_SECONDS else "**no**"
        lines.append(
            f"| {t.database} | {t.variant} | {t.signals:,} | {t.median:.3f} | {max(t.seconds):.3f} | {met} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 signals, 2 runs")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.signals, args.runs = 1_000, 2
    started = now_iso()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        timings = [timing for db in args.databases.split(",") for timing in measure(db, args, Path(scratch))]
    rows = [
        ResultRow(
            COMPARISON,
            f"{t.database} backtest of {t.signals:,} signals ({t.variant})",
            round(t.median, 3),
            "s",
            f"≤ {GOAL_SECONDS:g} s",
            t.median <= GOAL_SECONDS,
        )
        for t in timings
    ]
    if args.no_write:
        return
    write_section(SECTION, render(timings, args, load), BENCHMARKS_MD)
    write_results("backtest", "python -m bench.backtest", started, rows)
    print("wrote docs/benchmarks.md (## Backtest) and bench/out/backtest.json")


if __name__ == "__main__":
    main()
