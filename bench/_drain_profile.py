"""Development harness (not part of `make bench`): drain a backlog with one in-process worker, optionally
under cProfile — how the worker's per-optimization figures in docs/benchmarks.md were taken.

    python -m bench._drain_profile [--signals 5000] [--batch 500] [--profile] [--sort tottime]

A fresh PostgreSQL database gets the latency benchmark's scenario (through a short-lived
`switchman serve --no-worker`) and `--signals` pending signals (COPY); then one `SignalWorker` with a
fixed claim size (`--batch`, adaptive growth off) drains them in this process, and the exactly-once
checks of `bench.scaleout` run. Prints signals/s (and the profile).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import secrets
import sys
import time

from bench._pg import PG_SERVER, pg_admin
from bench._server import free_port, running
from bench.latency import setup_scenario
from bench.scaleout import _env, seed_backlog, verify
from switchman.config import Settings, to_async_url
from switchman.db.engine import Database
from switchman.flags.factory import create_flag_backend
from switchman.wakeup import Wakeup
from switchman.worker.loop import SignalWorker


async def _drain(url: str, batch: int) -> tuple[int, float]:
    settings = Settings(database_url=url, worker_batch_size=batch, worker_max_batch_size=batch)
    db = Database(to_async_url(url), pool_size=4)
    backend = create_flag_backend(settings, db)
    worker = SignalWorker(settings=settings, db=db, wakeup=Wakeup(), backend=backend)
    started, total = time.perf_counter(), 0
    try:
        while handled := await worker.drain_once():
            total += handled
        return total, time.perf_counter() - started
    finally:
        await backend.close()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    args = parser.parse_args()
    name = f"switchman_bench_drain_{secrets.token_hex(3)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "switchman", "serve", "--no-worker", "--port", str(port)]
        with running(serve, env=_env(url), ready_url=f"{base}/health"):
            scenario = asyncio.run(setup_scenario(base))
        asyncio.run(seed_backlog(url, endpoint_id=scenario.endpoint_id, count=args.signals))
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        total, seconds = asyncio.run(_drain(url, args.batch))
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(40)
        print(
            f"drained {total} signals in {seconds:.2f} s = {total / seconds:,.0f} signals/s (batch {args.batch})"
        )
        asyncio.run(verify(url, signals=args.signals))
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
