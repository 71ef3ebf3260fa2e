"""Poison signals (ADR 0028): a signal whose processing raises is retried after a backoff, then set aside
with its error; the queue moves on; an operator lists and retries it through the API.

The fault is injected where a bug would be (the worker's matching step raising for one payload), never in
storage: the database, the migrations and the flag store are the real ones.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.runtime import Runtime
from switchman.signal_endpoints.queue import ClaimedSignal
from switchman.worker import matching
from switchman.worker.failures import describe, is_outage
from switchman.worker.loop import SignalWorker
from tests.conftest import assert_error, make_settings
from tests.metrics.helpers import delta, scrape
from tests.worker.conftest import Scenario, drain, remote_worker, toggle


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Signals whose payload has `"poison": true` make the worker's matching raise while `armed`."""
    state = {"armed": True}
    original = matching.BatchLookups.planned_runs

    async def planned_runs(self: matching.BatchLookups, signal: ClaimedSignal) -> Any:
        if state["armed"] and signal.payload().get("poison") is True:
            raise RuntimeError("the matcher choked on this payload")
        return await original(self, signal)

    monkeypatch.setattr(matching.BatchLookups, "planned_runs", planned_runs)
    return state


async def _row(db: Database, signal_id: int) -> Any:
    async with db.read() as conn:
        s = t.signal
        query = sa.select(
            s.c.processed_at, s.c.failures, s.c.last_error, s.c.set_aside_at, s.c.claim_expires_at
        )
        return (await conn.execute(query.where(s.c.id == signal_id))).one()


async def _let_backoff_pass(db: Database, signal_id: int) -> None:
    """As if the retry delay had gone by (the delay itself is tested by the row's claim expiry)."""
    async with db.transaction() as conn:
        await conn.execute(
            t.signal.update().where(t.signal.c.id == signal_id).values(claim_expires_at=None, claimed_by=None)
        )


async def _events(client: httpx.AsyncClient, set_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/admin/projects/default/actions/{set_id}/events")
    events: list[dict[str, Any]] = response.json()["actionSetEvents"]
    return events


async def _embedded_worker(app: FastAPI, **overrides: Any) -> tuple[SignalWorker, Runtime]:
    from switchman.flags.factory import create_flag_backend

    ctx: Runtime = app.state.runtime
    settings = make_settings(ctx.settings.database_url, **overrides)
    worker = SignalWorker(
        settings=settings, db=ctx.db, wakeup=ctx.wakeup, backend=create_flag_backend(settings, ctx.db)
    )
    return worker, ctx


async def test_a_poison_signal_is_retried_then_set_aside_and_the_queue_moves_on(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, poison: dict[str, bool]
) -> None:
    worker, ctx = await _embedded_worker(app, worker_max_signal_failures=2, worker_batch_size=10)
    metrics_before = await scrape(client)
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    before = [await scenario.send(client, {"n": n}) for n in range(2)]
    bad = await scenario.send(client, {"poison": True, "n": 2})
    after = [await scenario.send(client, {"n": n}) for n in range(3, 5)]

    await drain(worker)

    # The batch failed whole, was taken apart, and every healthy signal ran once.
    ran = sorted(event["signal"]["id"] for event in await _events(client, set_id))
    assert ran == sorted(before + after)
    first = await _row(ctx.db, bad)
    assert (first.failures, first.processed_at, first.set_aside_at) == (1, None, None)
    assert first.claim_expires_at is not None  # waiting out its retry delay, not at the queue's head
    assert "RuntimeError: the matcher choked on this payload" in first.last_error
    assert "in planned_runs" in first.last_error

    await _let_backoff_pass(ctx.db, bad)
    await drain(worker)
    second = await _row(ctx.db, bad)
    assert second.failures == 2
    assert second.set_aside_at is not None and second.processed_at is not None

    scraped = await scrape(client)
    assert scraped.value("switchman_signals_set_aside") == 1
    assert delta(metrics_before, scraped, "switchman_signal_failures_total", outcome="retried") == 1
    assert delta(metrics_before, scraped, "switchman_signal_failures_total", outcome="set_aside") == 1

    listed = (await client.get("/api/admin/signals/set-aside")).json()
    assert listed["total"] == 1
    (entry,) = listed["signals"]
    assert entry["id"] == bad and entry["failures"] == 2 and entry["payload"] == {"poison": True, "n": 2}
    assert entry["sourceId"] == scenario.endpoint_id and entry["source"] == "signal-endpoint"
    assert entry["lastError"].startswith("RuntimeError: the matcher choked")
    assert entry["setAsideAt"] and entry["createdAt"]

    # Fixed, then retried by an operator: it runs, once, and is no longer set aside.
    poison["armed"] = False
    retried = await client.post(f"/api/admin/signals/{bad}/retry")
    assert retried.status_code == 202, retried.text
    assert (await client.get("/api/admin/signals/set-aside")).json() == {"signals": [], "total": 0}
    assert (await scrape(client)).value("switchman_signals_set_aside") == 0
    await drain(worker)
    ran = sorted(event["signal"]["id"] for event in await _events(client, set_id))
    assert ran == sorted([*before, bad, *after])
    final = await _row(ctx.db, bad)
    assert final.set_aside_at is None and final.processed_at is not None and final.failures == 0

    audit = (await client.get("/api/admin/events", params={"type": "signal-retried"})).json()
    assert any(event["data"] == {"id": bad} for event in audit["events"]), audit


async def test_retry_answers_404_for_a_signal_that_is_not_set_aside(
    client: httpx.AsyncClient, scenario: Scenario
) -> None:
    pending = await scenario.send(client, {"n": 1})
    for signal_id in (str(pending), "99999999", "abc", "0"):
        assert_error(await client.post(f"/api/admin/signals/{signal_id}/retry"), 404, "NotFoundError")


async def test_set_aside_signals_need_an_admin(anon: httpx.AsyncClient) -> None:
    assert_error(await anon.get("/api/admin/signals/set-aside"), 401)
    assert_error(await anon.post("/api/admin/signals/1/retry"), 401)


async def test_a_remote_batch_counts_a_failure_against_its_signal_only(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, poison: dict[str, bool]
) -> None:
    """Step by step (a remote Unleash): the failing signal is counted and skipped, the batch goes on."""
    calls: list[str] = []
    ctx: Runtime = app.state.runtime
    settings = make_settings(ctx.settings.database_url, worker_max_signal_failures=1)
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", "checkout", 1)])
    bad = await scenario.send(client, {"poison": True})
    good = await scenario.send(client, {"n": 1})
    async with remote_worker(app, calls, settings) as worker:
        await drain(worker)
    row = await _row(ctx.db, bad)
    assert row.failures == 1 and row.set_aside_at is not None and row.processed_at is not None
    assert "RuntimeError: the matcher choked on this payload" in row.last_error
    assert [event["signal"]["id"] for event in await _events(client, set_id)] == [good]
    assert len(calls) == 1
    good_row = await _row(ctx.db, good)
    assert good_row.processed_at is not None and good_row.failures == 0


def test_database_outages_do_not_count_against_a_signal() -> None:
    from sqlalchemy import exc as sa_exc

    assert is_outage(sa_exc.OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert is_outage(TimeoutError())
    assert is_outage(sa_exc.TimeoutError("QueuePool limit reached"))
    assert not is_outage(RuntimeError("bug"))
    assert not is_outage(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_outage(KeyError("value"))


def test_the_kept_error_names_the_type_the_message_and_where() -> None:
    def inner() -> None:
        raise ValueError("bad threshold")

    try:
        inner()
    except ValueError as error:
        text = describe(error)
    assert text.startswith("ValueError: bad threshold (at test_poison_signals.py:")
    assert "in inner" in text
