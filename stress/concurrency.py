"""Concurrency: 4 `switchman worker` + 2 `switchman serve --no-worker` processes on one PostgreSQL
database; 10,000 signals across 20 action sets (10 sources x on/off), sent through both API processes.
Checks: exactly one event per (signal, matching set), nothing lost or stuck, consistent flag audit
trails, and no deadlock (PostgreSQL's per-database deadlock counter and every process log).

    python -m stress.concurrency [--quick]     # full: 10,000 signals; quick: 1,000
"""

from __future__ import annotations

import asyncio

import asyncpg

from stress._checks import check
from stress._procs import base_env, run_dir, throwaway_database
from stress._report import Result, main
from stress._scenario import SendLog, create_sources, stream

SOURCES = 10
WORKERS = 4
API_PROCESSES = 2


async def run(quick: bool) -> Result:
    result = Result("concurrency (4 workers + 2 API processes, one PostgreSQL)")
    total = 1_000 if quick else 10_000
    with run_dir("concurrency") as (_tmp, procs):
        async with throwaway_database() as url:
            env = base_env(url)
            apis = [procs.server(f"api-{i}", env, worker=False) for i in range(API_PROCESSES)]
            apis[0].start()
            await apis[0].wait_ready()  # the first one migrates the database alone
            for api in apis[1:]:
                api.start()
            for api in apis[1:]:
                await api.wait_ready()
            sources = await create_sources(apis[0].url, SOURCES)
            workers = [procs.worker(f"worker-{i}", env) for i in range(WORKERS)]
            for worker in workers:
                worker.start()
            for worker in workers:
                await worker.wait_ready()
            log = SendLog()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await stream(
                [api.url for api in apis],
                sources,
                log,
                stop=asyncio.Event(),
                per_source_rate=0,
                limit_per_source=total // SOURCES,
            )
            send_seconds = loop.time() - t0
            outcome = await check(url, sources, log, ordered=False, drain_timeout=300)
            conn = await asyncpg.connect(url)
            try:
                deadlocks = await conn.fetchval(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                )
            finally:
                await conn.close()
            logs = {proc.name: proc.log_text() for proc in procs.all}
            deadlock_lines = sum(text.lower().count("deadlock") for text in logs.values())
            tracebacks = sum(text.count("Traceback") for text in logs.values())
            result.figures = {
                "signals_sent": log.sent,
                "acknowledged": outcome.acked,
                "stored": outcome.signals,
                "events": outcome.events,
                "action_sets": SOURCES * 2,
                "replies": dict(log.statuses),
                "send_seconds": round(send_seconds, 1),
                "ingest_rate_per_s": round(log.sent / send_seconds),
                "drain_after_last_ack_seconds": round(outcome.drain_seconds, 1),
                "pg_deadlocks": deadlocks,
                "deadlock_lines_in_logs": deadlock_lines,
                "tracebacks_in_logs": tracebacks,
            }
            result.problems.extend(outcome.problems)
            if log.statuses.get("200", 0) != total:
                result.fail(
                    f"only {log.statuses.get('200', 0)} of {total} signals acknowledged: {dict(log.statuses)}"
                )
            if outcome.events != total:
                result.fail(f"{outcome.events} events for {total} signals")
            if deadlocks:
                result.fail(f"PostgreSQL counted {deadlocks} deadlocks")
            if deadlock_lines:
                result.fail(f"{deadlock_lines} log lines mention a deadlock")
                # The lock cycle as PostgreSQL described it, and where the aborted statement was.
                for name, text in logs.items():
                    lines = text.splitlines()
                    for i, line in enumerate(lines):
                        if line.startswith("DETAIL:") and "waits for" in line:
                            cycle = " | ".join(lines[i : i + 3])
                            where = [
                                x.strip()
                                for x in lines[:i]
                                if x.strip().startswith('File "/') and "switchman" in x
                            ][-3:]
                            result.fail(f"{name}: {cycle} (at {where})")
                            break
            if tracebacks:
                result.fail(f"{tracebacks} tracebacks in the process logs")
    return result


if __name__ == "__main__":
    main(run, __doc__ or "")
