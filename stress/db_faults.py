"""Database faults: our own PostgreSQL cluster (never the machine's) is stopped — alternately
`immediate` (a crash) and `fast` — and started again while signals stream in.

Promises checked: while the database is away ingestion answers 503 (never 500, never a 2xx for a signal
that is not stored) and `/health` answers 503; once it is back both recover by themselves (no restart of
switchman) within RECOVERY_LIMIT seconds; afterwards every acknowledged signal exists, nothing is
doubled or stuck, flags are consistent (stress/_checks.py, one worker so per-source order holds).

    python -m stress.db_faults [--quick]      # full: 5 restarts; quick: 2
"""

from __future__ import annotations

import asyncio
import time

import httpx

from stress._checks import check
from stress._procs import PrivateCluster, base_env, run_dir
from stress._report import Result, main
from stress._scenario import SendLog, create_sources, stream

SOURCES = 4
PER_SOURCE_RATE = 10.0
OUTAGE_SECONDS = 4.0
RECOVERY_LIMIT = 30.0


async def _poll_health(url: str, stop: asyncio.Event, seen: list[tuple[float, int]], origin: float) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        while not stop.is_set():
            try:
                status = (await client.get(f"{url}/health")).status_code
            except httpx.HTTPError:
                status = 0
            seen.append((time.monotonic() - origin, status))
            await asyncio.sleep(0.25)


def _first_after(timeline: list[tuple[float, str]], moment: float, want: str) -> float | None:
    later = [at for at, outcome in timeline if at >= moment and outcome == want]
    return min(later) - moment if later else None


async def run(quick: bool) -> Result:
    result = Result("database faults (PostgreSQL stopped and started under load)")
    restarts = 2 if quick else 5
    cluster = PrivateCluster()
    try:
        cluster.init()
        cluster.start()
        url = await cluster.create_database()
        with run_dir("db-faults") as (_tmp, procs):
            server = procs.server("serve", base_env(url))
            server.start()
            await server.wait_ready()
            sources = await create_sources(server.url, SOURCES)
            log = SendLog()
            stop = asyncio.Event()
            origin = time.monotonic()  # `stream` measures its timeline from (almost) the same moment
            sender = asyncio.create_task(
                stream([server.url], sources, log, stop=stop, per_source_rate=PER_SOURCE_RATE)
            )
            health: list[tuple[float, int]] = []
            health_task = asyncio.create_task(_poll_health(server.url, stop, health, origin))
            outages = []
            try:
                for i in range(restarts):
                    await asyncio.sleep(3.0)
                    mode = "immediate" if i % 2 == 0 else "fast"
                    down_at = time.monotonic() - origin
                    await asyncio.to_thread(cluster.stop, mode)
                    await asyncio.sleep(OUTAGE_SECONDS)
                    # The outage window ends when we start the server (it accepts connections before
                    # pg_ctl returns); recovery is measured from when pg_ctl says it is up.
                    starting_at = time.monotonic() - origin
                    await asyncio.to_thread(cluster.start)
                    up_at = time.monotonic() - origin
                    # Wait for recovery (bounded), then record how long it took.
                    deadline = time.monotonic() + RECOVERY_LIMIT
                    while time.monotonic() < deadline:
                        if _first_after(log.timeline, up_at, "200") is not None and any(
                            at >= up_at and status == 200 for at, status in health
                        ):
                            break
                        await asyncio.sleep(0.2)
                    ingest_recovery = _first_after(log.timeline, up_at, "200")
                    health_recovery = next(
                        (at - up_at for at, status in health if at >= up_at and status == 200), None
                    )
                    during = [
                        outcome for at, outcome in log.timeline if down_at + 0.5 <= at < starting_at - 0.2
                    ]
                    health_during = [
                        status for at, status in health if down_at + 0.5 <= at < starting_at - 0.2
                    ]
                    outages.append(
                        {
                            "mode": mode,
                            "ingest_replies_while_down": {s: during.count(s) for s in sorted(set(during))},
                            "health_while_down": {
                                str(s): health_during.count(s) for s in sorted(set(health_during))
                            },
                            "ingest_recovered_after_s": None
                            if ingest_recovery is None
                            else round(ingest_recovery, 2),
                            "health_recovered_after_s": None
                            if health_recovery is None
                            else round(health_recovery, 2),
                        }
                    )
                    if ingest_recovery is None:
                        result.fail(f"restart {i + 1}: ingestion did not recover within {RECOVERY_LIMIT} s")
                    if health_recovery is None:
                        result.fail(f"restart {i + 1}: /health did not recover within {RECOVERY_LIMIT} s")
                    if "503" not in during:
                        result.fail(
                            f"restart {i + 1}: no 503 from ingestion while the database was down: {during[:20]}"
                        )
                    if "200" in during:
                        result.fail(f"restart {i + 1}: a 200 while the database was down")
                    if health_during and set(health_during) != {503}:
                        result.fail(
                            f"restart {i + 1}: /health answered {sorted(set(health_during))} while down"
                        )
                await asyncio.sleep(2.0)
            finally:
                stop.set()
                await sender
                await health_task
            outcome = await check(url, sources, log, ordered=True)
            result.problems.extend(outcome.problems)
            bad = {s: n for s, n in log.statuses.items() if s not in {"200", "503"}}
            if bad:
                result.fail(f"replies other than 200/503: {bad}")
            tracebacks = server.log_text().count("Traceback")
            result.figures = {
                "restarts": restarts,
                "outage_seconds_each": OUTAGE_SECONDS,
                "signals_sent": log.sent,
                "acknowledged": outcome.acked,
                "stored": outcome.signals,
                "stored_without_ack": outcome.unacked_stored,
                "events": outcome.events,
                "replies": dict(log.statuses),
                "slowest_reply_s": round(log.slowest, 2),
                "outages": outages,
                "tracebacks_in_server_log": tracebacks,
            }
    finally:
        cluster.destroy()
    return result


if __name__ == "__main__":
    main(run, __doc__ or "")
