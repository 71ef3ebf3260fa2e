"""Console page-render benchmark: each web console page at 1,000,000 stored action set events (issue 15).

    make bench-console        # = python -m bench.console
    python -m bench.console [--events 1000000] [--requests 200] [--databases sqlite,postgresql] [--quick] [--no-write]

For each database: a fresh database seeded as `bench.events_listing` seeds it (one action set, `--events`
events of ≈ 1.85 KB, every tenth failed — 100,000 failed runs), then `switchman serve --no-worker`; the
benchmark signs in through the console's form like a browser, then requests each page `--requests` times
back to back on one keep-alive connection: the overview, signal endpoints, action sets, the set's runs (the
newest page, and one 900,000 runs deep through the `before` cursor), failed runs, flags and service
accounts. Each answer is checked (200, the page's own heading). Goal: p99 ≤ 50 ms per page. Results:
stdout, the `## Console pages` section of docs/benchmarks.md and bench/out/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._pg import scratch_database
from bench._report import BENCHMARKS_MD, ResultRow, now_iso, write_results, write_section
from bench._server import free_port, running
from bench.events_listing import _prepare, seed_postgres, seed_sqlite

SECTION = "## Console pages"
GOAL_MS = 50.0
COMPARISON = "8 console"


@dataclass(frozen=True)
class PageTiming:
    database: str
    page: str
    samples_ms: list[float]

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pages(set_id: int, deep_before: int) -> list[tuple[str, str, str]]:
    """(label, path, text the page must show)."""
    runs = f"/ui/projects/default/actions/{set_id}"
    return [
        ("overview", "/ui/", "<h1>Overview</h1>"),
        ("signal endpoints", "/ui/signal-endpoints", "<h1>Signal endpoints</h1>"),
        ("action sets", "/ui/actions?project=default", "<h1>Action sets</h1>"),
        ("a set's runs, newest", runs, 'class="timeline"'),
        ("a set's runs, 900,000 deep", f"{runs}?before={deep_before}", 'class="timeline"'),
        ("failed runs", "/ui/events/failed", "<h1>Failed runs</h1>"),
        ("flags", "/ui/flags?project=default", "<h1>Flags</h1>"),
        ("service accounts", "/ui/service-accounts", "<h1>Service accounts</h1>"),
    ]


def _sign_in(client: httpx.Client, admin: str) -> None:
    form = client.get("/ui/sign-in")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found is not None
    signed = client.post("/ui/sign-in", data={"csrf_token": found.group(1), "token": admin})
    if signed.status_code != 303:
        raise SystemExit(f"sign-in failed: {signed.status_code}")


def measure(database: str, url: str, args: argparse.Namespace) -> list[PageTiming]:
    async def prepare_and_seed() -> int:
        db, record = await _prepare(url)
        await db.dispose()
        started = time.perf_counter()
        if database == "sqlite":
            await asyncio.to_thread(seed_sqlite, url.removeprefix("sqlite:///"), record, args.events)
        else:
            await seed_postgres(url, record, args.events)
        print(
            f"{database}: seeded {args.events:,} events in {time.perf_counter() - started:.0f} s", flush=True
        )
        return record.id

    set_id = asyncio.run(prepare_and_seed())
    admin = f"*:*.{secrets.token_hex(16)}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "SWITCHMAN_DATABASE_URL": url,
        "SWITCHMAN_INIT_ADMIN_API_TOKENS": admin,
        "SWITCHMAN_LOG_LEVEL": "WARNING",
    }
    timings: list[PageTiming] = []
    with (
        running([sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)], env=env,
                ready_url=f"{base}/health"),
        httpx.Client(base_url=base, timeout=30) as client,
    ):  # fmt: skip
        _sign_in(client, admin)
        newest = client.get(f"/api/admin/projects/default/actions/{set_id}/events?limit=1",
                            headers={"Authorization": admin}).json()["actionSetEvents"][0]["id"]  # fmt: skip
        for label, path, marker in _pages(
            set_id, newest - 900_000 if args.events > 900_000 else newest // 10
        ):
            samples: list[float] = []
            for n in range(args.requests + 5):
                started = time.perf_counter()
                answer = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200 or marker not in answer.text:
                    raise SystemExit(f"{database} {label}: {answer.status_code} {answer.text[:300]}")
                if n >= 5:  # warm-up
                    samples.append(elapsed)
            timing = PageTiming(database, label, samples)
            print(
                f"  {label:<28} p50 {statistics.median(samples):6.1f} ms   p99 {timing.pct(0.99):6.1f} ms",
                flush=True,
            )
            timings.append(timing)
    return timings


def run_database(database: str, args: argparse.Namespace) -> list[PageTiming]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(database, Path(tmp), prefix="switchman_bench_console") as url,
    ):
        return measure(database, url, args)


def render(timings: list[PageTiming], args: argparse.Namespace, load: float) -> str:
    lines = [
        SECTION,
        "",
        f"`python -m bench.console` ({now_iso()}, load average {load:.2f} at the start): each console page "
        f"requested {args.requests} times back to back on one keep-alive connection, signed in like a browser, "
        f"through `switchman serve --no-worker` with {args.events:,} action set events stored (every tenth "
        "failed), seeded as the events-listing benchmark seeds them. Times are the whole HTTP exchange (the "
        f"page rendered from the services). Goal: p99 ≤ {GOAL_MS:g} ms per page.",
        "",
        "| database | page | p50 (ms) | p99 (ms) | goal met |",
        "|---|---|---:|---:|---|",
    ]
    for t in timings:
        met = "yes" if t.pct(0.99) <= GOAL_MS else "**no**"
        lines.append(
            f"| {t.database} | {t.page} | {statistics.median(t.samples_ms):.1f} | {t.pct(0.99):.1f} | {met} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 events, 20 requests per page")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.requests = 20_000, 20
    started = now_iso()
    load = os.getloadavg()[0]
    timings = [t for database in args.databases.split(",") for t in run_database(database, args)]
    rows = [
        ResultRow(COMPARISON, f"{t.database} {t.page} p99", round(t.pct(0.99), 1), "ms", f"≤ {GOAL_MS:g} ms",
                  t.pct(0.99) <= GOAL_MS)
        for t in timings
    ]  # fmt: skip
    if args.no_write:
        return
    write_section(SECTION, render(timings, args, load), BENCHMARKS_MD)
    write_results("console", "python -m bench.console", started, rows)
    print("wrote docs/benchmarks.md (## Console pages) and bench/out/console.json")


if __name__ == "__main__":
    main()
