"""On SQLite the worker waits for a lull in ingestion before a batch (ADR 0017): the order of events, not
their speed, is what these tests check."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from switchman.runtime import Runtime
from switchman.wakeup import Wakeup
from switchman.worker.embedded_batches import EmbeddedBatches
from switchman.worker.loop import SignalWorker
from tests.conftest import make_settings
from tests.worker.conftest import Scenario, drain, toggle


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_an_idle_ingestion_is_a_lull_at_once() -> None:
    wakeup = Wakeup()
    await asyncio.wait_for(wakeup.lull(quiet=3600, at_most=3600), timeout=5)


async def test_no_lull_while_signals_are_being_stored_then_one_quiet_period_after() -> None:
    wakeup = Wakeup()
    with wakeup.storing():
        waiting = asyncio.create_task(wakeup.lull(quiet=0.02, at_most=3600))
        await _settle()
        assert not waiting.done()  # a batch is waiting for the write lock or being written
        wakeup.committed()
    await asyncio.wait_for(waiting, timeout=5)


async def test_a_sparse_commit_is_no_reason_to_wait() -> None:
    wakeup = Wakeup()
    wakeup.committed()  # one commit, long after the previous (none): nothing to gather
    await asyncio.wait_for(wakeup.lull(quiet=3600, at_most=3600), timeout=5)


async def test_a_dense_stream_of_commits_postpones_the_lull_until_the_bound() -> None:
    wakeup = Wakeup()
    wakeup.committed()
    wakeup.committed()  # two commits close together: a stream
    waiting = asyncio.create_task(wakeup.lull(quiet=3600, at_most=0.2))
    for _ in range(3):
        wakeup.committed()
        await asyncio.sleep(0.01)
        assert not waiting.done()
    await asyncio.wait_for(waiting, timeout=5)  # the bound ends the wait even though commits go on


async def test_the_embedded_worker_waits_for_the_lull_before_claiming(
    client: httpx.AsyncClient, scenario: Scenario, app: FastAPI, db_url: str
) -> None:
    ctx: Runtime = app.state.runtime
    settings = make_settings(db_url, worker_batch_target_seconds=3600)  # no bound within the test
    worker = SignalWorker(settings=settings, db=ctx.db, wakeup=ctx.wakeup, backend=ctx.flag_backend)
    assert isinstance(worker.strategy, EmbeddedBatches)
    await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    await scenario.send(client, {})
    if ctx.db.is_postgres:
        assert await drain(worker) == 1  # PostgreSQL has no single writer: no lull
        return
    with ctx.wakeup.storing():
        batch = asyncio.create_task(worker.drain_once())
        await _settle()
        assert not batch.done()  # ingestion is busy: the batch has not started
    assert await asyncio.wait_for(batch, timeout=5) == 1
