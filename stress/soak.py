"""Soak: ten minutes of mixed, paced load on one `switchman serve` (SQLite, in-process worker):
ingestion (4 sources x 10 signals/s), event listings (5/s) and admin reads (5/s), loopback only.

The server's resident memory and open file descriptors are sampled every 5 s; the first and the last
window (a minute each; 30 s in --quick) are compared against these thresholds:

- RSS: median of the last window ≤ median of the first + RSS_GROWTH_MIB;
- file descriptors: most in the last window ≤ most in the first + FD_GROWTH;
- latency, per kind of call: last p50 ≤ P50_FACTOR x first p50 + P50_SLACK_MS and last p95 ≤
  P95_FACTOR x first p95 + P95_SLACK_MS (p95, not p99: a window holds a few hundred calls; generous factors: the machine is shared; a leak or a
  growing scan shows as a steady climb far past them).

At the end the usual promises are checked (stress/_checks.py).

    python -m stress.soak [--quick]       # full: 600 s; quick: 90 s
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from stress._checks import check
from stress._procs import ADMIN_SECRET, base_env, run_dir
from stress._report import Result, main
from stress._scenario import SendLog, create_sources, stream

SOURCES = 4
PER_SOURCE_RATE = 10.0
READ_RATE = 5.0
RSS_GROWTH_MIB = 20.0
FD_GROWTH = 5
P50_FACTOR, P50_SLACK_MS = 1.5, 5.0
P95_FACTOR, P95_SLACK_MS = 3.0, 50.0


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


async def _reader(
    base: str, paths: list[str], stop: asyncio.Event, rows: list[tuple[str, float, float]], origin: float
) -> None:
    interval = 1.0 / READ_RATE
    async with httpx.AsyncClient(
        base_url=base, timeout=10.0, headers={"Authorization": ADMIN_SECRET}
    ) as client:
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            t0 = time.monotonic()
            response = await client.get(path)
            elapsed = time.monotonic() - t0
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
            rows.append((path.split("?")[0].rsplit("/", 1)[-1], t0 - origin, elapsed))
            await asyncio.sleep(max(0.0, interval - elapsed))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(quick: bool) -> Result:
    result = Result("soak (mixed load: memory, descriptors, latency drift)")
    duration = 90.0 if quick else 600.0
    window = 30.0 if quick else 60.0
    with run_dir("soak") as (tmp, procs):
        server = procs.server("serve", base_env(f"sqlite:///{tmp}/stress.db"))
        server.start()
        await server.wait_ready()
        sources = await create_sources(server.url, SOURCES)
        log = SendLog()
        stop = asyncio.Event()
        origin = time.monotonic()
        rows: list[tuple[str, float, float]] = []
        tasks = [
            asyncio.create_task(
                stream([server.url], sources, log, stop=stop, per_source_rate=PER_SOURCE_RATE)
            ),
            asyncio.create_task(
                _reader(
                    server.url,
                    [
                        f"/api/admin/projects/default/actions/{sources[0].on_set}/events?limit=50",
                        f"/api/admin/projects/default/actions/{sources[1].off_set}/events?limit=50&offset=100",
                    ],
                    stop,
                    rows,
                    origin,
                )
            ),
            asyncio.create_task(
                _reader(
                    server.url,
                    ["/api/admin/signal-endpoints", "/api/admin/projects/default/features"],
                    stop,
                    rows,
                    origin,
                )
            ),
        ]
        samples: list[tuple[float, float, int]] = []
        try:
            while time.monotonic() - origin < duration:
                samples.append((time.monotonic() - origin, _rss_mib(server.pid), _fds(server.pid)))
                await asyncio.sleep(5.0)
                for task in tasks:
                    if task.done():
                        task.result()  # a reader failing is a failure of the run
            samples.append((time.monotonic() - origin, _rss_mib(server.pid), _fds(server.pid)))
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if task.exception() is not None:
                result.fail(f"load failed: {task.exception()!r}")
        rows += [("ingest", at, seconds) for at, seconds in log.latencies]

        def first(at: float) -> bool:
            return at < window

        def last(at: float) -> bool:
            return at >= duration - window

        rss_first = statistics.median(r for at, r, _ in samples if first(at))
        rss_last = statistics.median(r for at, r, _ in samples if last(at))
        fd_first = max(f for at, _, f in samples if first(at))
        fd_last = max(f for at, _, f in samples if last(at))
        latency: dict[str, object] = {}
        for kind in sorted({k for k, _, _ in rows}):
            a = [s * 1000 for k, at, s in rows if k == kind and first(at)]
            b = [s * 1000 for k, at, s in rows if k == kind and last(at)]
            figures = {
                "calls": sum(1 for k, _, _ in rows if k == kind),
                "first_p50_ms": round(_pct(a, 0.5), 1),
                "last_p50_ms": round(_pct(b, 0.5), 1),
                "first_p95_ms": round(_pct(a, 0.95), 1),
                "last_p95_ms": round(_pct(b, 0.95), 1),
            }
            latency[kind] = figures
            if _pct(b, 0.5) > P50_FACTOR * _pct(a, 0.5) + P50_SLACK_MS:
                result.fail(f"{kind}: p50 drifted {figures['first_p50_ms']} → {figures['last_p50_ms']} ms")
            if _pct(b, 0.95) > P95_FACTOR * _pct(a, 0.95) + P95_SLACK_MS:
                result.fail(f"{kind}: p95 drifted {figures['first_p95_ms']} → {figures['last_p95_ms']} ms")
        if rss_last > rss_first + RSS_GROWTH_MIB:
            result.fail(f"RSS grew {rss_first:.1f} → {rss_last:.1f} MiB")
        if fd_last > fd_first + FD_GROWTH:
            result.fail(f"open descriptors grew {fd_first} → {fd_last}")
        outcome = await check(f"sqlite:///{tmp}/stress.db", sources, log, ordered=True)
        result.problems.extend(outcome.problems)
        bad = {s: n for s, n in log.statuses.items() if s != "200"}
        if bad:
            result.fail(f"ingestion replies other than 200: {bad}")
        result.figures = {
            "seconds": duration,
            "window_seconds": window,
            "signals_acknowledged": outcome.acked,
            "events": outcome.events,
            "reads": len(rows) - len(log.latencies),
            "rss_mib_first_last": [round(rss_first, 1), round(rss_last, 1)],
            "rss_mib_min_max": [
                round(min(r for _, r, _ in samples), 1),
                round(max(r for _, r, _ in samples), 1),
            ],
            "fds_first_last": [fd_first, fd_last],
            "latency": latency,
            "thresholds": {
                "rss_growth_mib": RSS_GROWTH_MIB,
                "fd_growth": FD_GROWTH,
                "p50": f"≤ {P50_FACTOR}x first + {P50_SLACK_MS} ms",
                "p95": f"≤ {P95_FACTOR}x first + {P95_SLACK_MS} ms",
            },
        }
    return result


if __name__ == "__main__":
    main(run, __doc__ or "")
