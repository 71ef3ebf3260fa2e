"""Rate limits held by the whole cluster (ADR 0029): replicas leasing from one shared window per name.

Two replicas are two limiters, each with its own `Database` handle on the same database, driven by one
controlled clock. The store works on both databases (the runtime uses it on PostgreSQL only, which the
HTTP tests at the end check with two real apps).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from switchman.config import to_async_url
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.runtime import Runtime
from switchman.signal_endpoints import rate_limit_store
from switchman.signal_endpoints.cluster_rate_limit import ClusterRateLimiter, Quota, quota_for
from switchman.signal_endpoints.rate_limit import RateLimiter
from tests.conftest import assert_error, make_settings
from tests.factories import endpoint_with_token, running_app

WINDOW_START = 1_800_000_000.0  # a whole second, so window numbers are easy to follow


class Clock:
    def __init__(self, now: float = WINDOW_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def second_db(db_url: str, db: Database) -> AsyncIterator[Database]:
    """Another replica's handle on the same (clean) database."""
    other = Database(to_async_url(db_url))
    try:
        yield other
    finally:
        await other.dispose()


async def stored_windows(db: Database) -> dict[str, tuple[int, int]]:
    w = t.signal_rate_window
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(w.c.endpoint_name, w.c.used, w.c.granted))).all()
    return {row.endpoint_name: (row.used, row.granted) for row in rows}


def replica(db: Database, rate: float, clock: Clock) -> ClusterRateLimiter:
    """A limiter that waits for its leases however slow a loaded test machine makes them (the fallback
    after a slow lease has its own test)."""
    return ClusterRateLimiter(db, rate, clock=clock, lease_wait_seconds=60)


async def settled(limiter: ClusterRateLimiter) -> None:
    """Wait until no lease of `limiter` is in flight (leases asked ahead run in the background)."""
    for _ in range(1000):
        if all(window.lease is None for window in limiter._windows.values()):
            return
        await asyncio.sleep(0.001)
    raise AssertionError("a lease is still in flight")


def test_the_quota_cuts_time_into_windows_of_the_rate() -> None:
    assert quota_for(1000) == Quota(window_seconds=1, limit=1000, block=10)
    assert quota_for(200) == Quota(window_seconds=1, limit=200, block=2)
    assert quota_for(5) == Quota(window_seconds=1, limit=5, block=1)
    assert quota_for(0.5) == Quota(window_seconds=2, limit=1, block=1)
    assert quota_for(0.001) == Quota(window_seconds=1000, limit=1, block=1)
    with pytest.raises(ValueError, match="positive"):
        quota_for(0)


async def test_two_replicas_interleaved_accept_the_rate_per_window_within_ten_percent(
    db: Database, second_db: Database
) -> None:
    clock = Clock()
    rate = 200
    replicas = [replica(db, rate, clock), replica(second_db, rate, clock)]
    rng = random.Random(16)
    for window in range(4):
        clock.now = WINDOW_START + window
        accepted = [0, 0]
        for _ in range(3 * rate):  # three times the rate, randomly spread over both replicas
            clock.now = WINDOW_START + window + rng.random() * 0.999
            which = rng.randrange(2)
            if (await replicas[which].take("alerts")).allowed:
                accepted[which] += 1
        assert 0.9 * rate <= sum(accepted) <= rate, (window, accepted)
        assert min(accepted) > 0.2 * rate, accepted  # both replicas took their share of the leases
    block = replicas[0].quota.block
    assert replicas[0].leases + replicas[1].leases <= 4 * (rate // block + 4)  # blocks, not one per call


async def test_two_replicas_under_concurrent_load_stay_within_ten_percent(
    db: Database, second_db: Database
) -> None:
    clock = Clock()
    rate = 100
    replicas = [replica(db, rate, clock), replica(second_db, rate, clock)]
    for window in range(3):
        clock.now = WINDOW_START + window + 0.5
        decisions = await asyncio.gather(*(replicas[i % 2].take("alerts") for i in range(3 * rate)))
        accepted = sum(d.allowed for d in decisions)
        assert 0.9 * rate <= accepted <= rate, (window, accepted)


async def test_calls_without_allowance_wait_for_one_lease_per_replica(db: Database) -> None:
    clock = Clock()
    limiter = replica(db, 400, clock)  # blocks of 4; the next is asked for under 4 left
    decisions = await asyncio.gather(*(limiter.take("alerts") for _ in range(10)))
    assert all(d.allowed for d in decisions)
    # One lease in flight at a time, the waiters sharing its block (the next one asked for as soon as
    # fewer than a block were left): four blocks for ten calls, six calls left.
    await settled(limiter)
    assert limiter.leases == 4
    assert await stored_windows(db) == {"alerts": (16, 4)}
    assert limiter._windows["alerts"].allowance == 6


async def test_a_used_up_window_is_refused_without_asking_the_database_again(db: Database) -> None:
    clock = Clock(WINDOW_START + 0.25)
    limiter = replica(db, 5, clock)
    decisions = [await limiter.take("alerts") for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert limiter.leases == 5  # the fifth lease used the window up; the refusals asked nothing
    refused = decisions[-1]
    assert refused.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
        "Retry-After": "1",
    }
    assert "Retry-After" not in decisions[0].headers()
    clock.now = WINDOW_START + 1  # the next window
    assert (await limiter.take("alerts")).allowed
    # names have windows of their own
    assert (await limiter.take("other")).allowed


async def test_a_replica_whose_clock_is_behind_gets_nothing_from_a_window_the_cluster_left(
    db: Database, second_db: Database
) -> None:
    ahead, behind = Clock(WINDOW_START + 1.001), Clock(WINDOW_START + 0.999)
    first = replica(db, 5, ahead)
    late = replica(second_db, 5, behind)
    assert (await first.take("alerts")).allowed
    await settled(first)  # it holds one more call, leased ahead
    refused = await late.take("alerts")
    assert not refused.allowed and refused.retry_after == 1
    behind.now = ahead.now  # caught up: the current window has three calls nobody holds
    assert [(await late.take("alerts")).allowed for _ in range(4)] == [True] * 3 + [False]


async def test_a_window_longer_than_a_second_serves_slow_rates(db: Database) -> None:
    clock = Clock(WINDOW_START)  # a multiple of 10
    limiter = replica(db, 0.1, clock)  # one call per 10-second window
    assert (await limiter.take("alerts")).allowed
    clock.now += 9.5
    refused = await limiter.take("alerts")
    assert not refused.allowed and refused.retry_after == 1 and refused.limit == 1
    clock.now += 0.5
    assert (await limiter.take("alerts")).allowed


async def test_names_no_endpoint_can_have_are_decided_in_process(db: Database) -> None:
    limiter = replica(db, 1, Clock())
    for name in ("Upper", "x" * 256, "dot.ted", "nul\x00"):
        assert (await limiter.take(name)).allowed
        assert not (await limiter.take(name)).allowed
    assert limiter.leases == 0
    assert await stored_windows(db) == {}


async def test_past_windows_are_deleted(db: Database) -> None:
    clock = Clock()
    limiter = replica(db, 10, clock)
    assert (await limiter.take("old")).allowed
    await settled(limiter)  # its lease asked ahead lands first
    clock.now += 61  # past the clean-up interval: the next lease deletes windows before the previous one
    assert (await limiter.take("new")).allowed
    for _ in range(100):
        if "old" not in await stored_windows(db):
            break
        await asyncio.sleep(0.01)
    assert set(await stored_windows(db)) == {"new"}
    # the store's deletion keeps the windows from its bound on
    assert await rate_limit_store.delete_windows_before(db, datetime.fromtimestamp(clock.now + 1, UTC)) == 1
    await limiter.close()


async def test_close_cancels_the_leases_in_flight(db: Database) -> None:
    limiter = replica(db, 5, Clock())
    assert (await limiter.take("alerts")).allowed  # its next block is being asked for in the background
    assert len(limiter._in_flight) == 1
    await limiter.close()
    assert limiter._in_flight == set()


async def test_an_unreachable_database_falls_back_to_the_in_process_rate() -> None:
    nowhere = Database(to_async_url("postgresql://postgres@127.0.0.1:1/nowhere"))
    try:
        limiter = ClusterRateLimiter(nowhere, 3, clock=Clock())
        decisions = [await limiter.take("alerts") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]  # not a 500, not all refused
        assert (await limiter.take("other")).allowed
        assert limiter.leases == 1  # every name is decided locally for a while once a lease failed
        await limiter.close()
    finally:
        await nowhere.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite's leases run inline, at once
async def test_a_lease_that_does_not_answer_in_time_falls_back_to_the_in_process_rate(db: Database) -> None:
    limiter = ClusterRateLimiter(db, 2, clock=Clock(), lease_wait_seconds=0)
    decisions = [await limiter.take("alerts") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert limiter.leases == 1  # the calls did not wait for it, nor ask again
    await limiter.close()


# --- through HTTP, two real apps on one database -------------------------------------------------------


def _limiter_of(app: FastAPI) -> Any:
    runtime: Runtime = app.state.runtime
    return runtime.require_ingestion().rate_limiter


async def _burst(
    apps: list[FastAPI], name: str, secret: str, calls: int
) -> tuple[list[httpx.Response], float, float]:
    """`calls` concurrent calls, alternating between the apps; the responses and the wall-clock span."""
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://t") for a in apps]
    try:
        start = time.time()
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    f"/api/signal-endpoint/{name}", json={"n": i}, headers={"Authorization": secret}
                )
                for i in range(calls)
            )
        )
        return list(responses), start, time.time()
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_apps_on_postgresql_share_one_rate(db_url: str, db: Database) -> None:
    rate = 50
    settings = make_settings(db_url, signal_rate_limit_per_second=rate)
    async with running_app(settings) as (first, admin), running_app(settings) as (second, _):
        assert all(isinstance(_limiter_of(a), ClusterRateLimiter) for a in (first, second))
        endpoint, secret = await endpoint_with_token(admin)
        await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.01)  # start just after a second begins
        responses, start, end = await _burst([first, second], endpoint["name"], secret, 3 * rate)
        windows = math.floor(end) - math.floor(start) + 1
        accepted = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code != 200]
        assert len(accepted) <= rate * windows  # one replica alone would have allowed twice that
        if windows == 1:
            assert len(accepted) >= 0.9 * rate
        assert all(_limiter_of(a).leases > 0 for a in (first, second))  # both asked the shared window
        assert {r.status_code for r in refused} == {429}
        error = assert_error(refused[0], 429, "RateLimitError")
        assert refused[0].headers["retry-after"] in error["message"]
        assert refused[0].headers["ratelimit-limit"] == str(rate)


@pytest.mark.parametrize(
    ("db_url", "scope", "accepted"),
    [("postgresql", "cluster", 1), ("postgresql", "process", 2), ("sqlite", "cluster", 2)],
    indirect=["db_url"],
)
async def test_where_two_apps_share_the_rate(db_url: str, db: Database, scope: str, accepted: int) -> None:
    # 0.001 per second: one call per 1,000-second window (cluster), or per process bucket.
    settings = make_settings(db_url, signal_rate_limit_per_second=0.001, signal_rate_limit_scope=scope)
    async with running_app(settings) as (first, admin), running_app(settings) as (second, _):
        shared = scope == "cluster" and db_url.startswith("postgresql")
        kind = ClusterRateLimiter if shared else RateLimiter
        assert all(type(_limiter_of(a)) is kind for a in (first, second))
        endpoint, secret = await endpoint_with_token(admin)
        responses = []
        for i in range(6):  # alternating, one after the other
            app = (first, second)[i % 2]
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                responses.append(
                    await c.post(
                        f"/api/signal-endpoint/{endpoint['name']}", json={}, headers={"Authorization": secret}
                    )
                )
        assert sum(r.status_code == 200 for r in responses) == accepted
        assert {r.status_code for r in responses} == {200, 429}
