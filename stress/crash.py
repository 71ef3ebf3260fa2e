"""Crash durability: kill -9 `serve` (and, separately, a `worker`) at random moments under a steady
stream of signals, on SQLite and on PostgreSQL; after each restart and at the end, check the promises
(stress/_checks.py) with per-source ordering (one worker at a time), and those of time boxes and
restore on resolve running beside them (stress/_automation.py), and that every run, restore and revert
is announced to a real local webhook receiver at least once, with stable ids (stress/_notifications.py).

    python -m stress.crash [--quick]      # full: 20 kills per (database, target); quick: 3
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

from stress._automation import check_automation, create_automation, send_automation
from stress._checks import check
from stress._notifications import ENV as NOTIFICATION_ENV
from stress._notifications import check_notifications, create_channel, running_receiver
from stress._procs import Server, Worker, base_env, run_dir, throwaway_database
from stress._report import Result, main
from stress._scenario import SendLog, create_sources, stream

SOURCES = 4
PER_SOURCE_RATE = 10.0  # signals per second per source: 40/s in all


@contextlib.asynccontextmanager
async def database(kind: str, tmp: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/stress.db"
    else:
        async with throwaway_database() as url:
            yield url


async def one_combination(kind: str, target: str, kills: int, rng: random.Random, result: Result) -> None:
    label = f"{kind}/{target}"
    with run_dir(f"crash-{kind}-{target}") as (tmp, procs):
        async with database(kind, str(tmp)) as url, running_receiver() as receiver:
            env = base_env(url, **NOTIFICATION_ENV)
            server = procs.server("serve", env, worker=(target == "serve"))
            victim: Server | Worker = server
            if target == "worker":
                victim = procs.worker("worker", env)
            server.start()
            await server.wait_ready()
            if target == "worker":
                victim.start()
                await victim.wait_ready()
            await create_channel(server.url, receiver)
            sources = await create_sources(server.url, SOURCES)
            automation = await create_automation(server.url)
            log = SendLog()
            stop = asyncio.Event()
            sender = asyncio.create_task(
                stream([server.url], sources, log, stop=stop, per_source_rate=PER_SOURCE_RATE)
            )
            automation_sender = asyncio.create_task(
                send_automation(server.url, automation, stop=stop, rng=random.Random(rng.random()))
            )
            downtime = 0.0
            try:
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(0.5, 3.0))
                    victim.kill9()
                    pause = rng.uniform(0.0, 0.5)
                    await asyncio.sleep(pause)
                    loop = asyncio.get_running_loop()
                    t0 = loop.time()
                    victim.start()
                    await victim.wait_ready()
                    downtime += pause + loop.time() - t0
                await asyncio.sleep(2.0)
            finally:
                stop.set()
                await sender
                await automation_sender
            outcome = await check(url, sources, log, ordered=True)
            automation_figures = await check_automation(url, automation, outcome)
            notification_figures = await check_notifications(url, receiver, outcome)
            tracebacks = sum(p.log_text().count("Traceback") for p in procs.all)
            result.figures[label] = {
                "kills": kills,
                "signals_sent": log.sent,
                "acknowledged": outcome.acked,
                "stored": outcome.signals,
                "stored_without_ack": outcome.unacked_stored,
                "events": outcome.events,
                "replies": dict(log.statuses),
                "restart_seconds_total": round(downtime, 1),
                "drain_seconds": round(outcome.drain_seconds, 1),
                "tracebacks_in_logs": tracebacks,
                "automation": automation_figures,
                "notifications": notification_figures,
            }
            for problem in outcome.problems:
                result.fail(f"{label}: {problem}")
            if any(status not in {"200"} and status.isdigit() for status in log.statuses):
                bad = {s: n for s, n in log.statuses.items() if s.isdigit() and s not in {"200", "503"}}
                if bad:
                    result.fail(f"{label}: unexpected replies {bad}")


async def run(quick: bool) -> Result:
    result = Result("crash durability (kill -9 serve / worker)")
    kills = 3 if quick else 20
    rng = random.Random(7)
    for kind in ("sqlite", "postgresql"):
        for target in ("serve", "worker"):
            await one_combination(kind, target, kills, rng, result)
    return result


if __name__ == "__main__":
    main(run, __doc__ or "")
