"""Many workers, crashes: exactly one action set event per (signal, action set), nothing lost."""

from __future__ import annotations

import asyncio
import signal as os_signal
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from switchman.config import Settings
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.flags.factory import create_flag_backend
from switchman.wakeup import Wakeup
from switchman.worker.loop import SignalWorker
from tests.conftest import make_settings, unique
from tests.factories import spawn_worker


async def _seed(db: Database, *, signals: int, action_sets: int) -> tuple[int, list[int]]:
    """An endpoint, an Admin service account, `action_sets` filterless sets turning a flag on, and
    `signals` pending signals — written directly, as ingestion would have."""
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        actor_id = (
            await conn.execute(
                t.service_account.insert()
                .values(username=unique("sa"), name="bot", root_role=1, created_at=now)
                .returning(t.service_account.c.id)
            )
        ).scalar_one()
        endpoint_id = (
            await conn.execute(
                t.signal_endpoint.insert()
                .values(name=unique("ep"), enabled=True, created_at=now, created_by_user_id=-42)
                .returning(t.signal_endpoint.c.id)
            )
        ).scalar_one()
        feature = unique("flag")
        await conn.execute(t.feature.insert().values(name=feature, project_id="default", created_at=now))
        await conn.execute(
            t.feature_environment.insert(),
            [
                {"feature_name": feature, "environment_name": env, "enabled": False}
                for env in ("development", "production")
            ],
        )
        set_ids = []
        for n in range(action_sets):
            set_id = (
                await conn.execute(
                    t.action_set.insert()
                    .values(
                        project_id="default",
                        name=f"set-{n}",
                        actor_id=actor_id,
                        enabled=True,
                        match_source="signal-endpoint",
                        match_source_id=endpoint_id,
                        match_payload={},
                        created_at=now,
                        created_by_user_id=-42,
                    )
                    .returning(t.action_set.c.id)
                )
            ).scalar_one()
            await conn.execute(
                t.action.insert().values(
                    action_set_id=set_id,
                    action="TOGGLE_FEATURE_ON",
                    sort_order=1,
                    execution_params={
                        "project": "default",
                        "environment": "production",
                        "featureName": feature,
                    },
                    created_at=now,
                    created_by_user_id=-42,
                )
            )
            set_ids.append(set_id)
        await conn.execute(
            t.signal.insert(),
            [
                {
                    "source": "signal-endpoint",
                    "source_id": endpoint_id,
                    "payload": orjson.dumps({"n": n}).decode(),
                    "created_at": now,
                }
                for n in range(signals)
            ],
        )
    return endpoint_id, set_ids


async def _outcome(db: Database) -> tuple[int, int, int, list[str]]:
    async with db.read() as conn:
        pending = (
            await conn.execute(sa.select(sa.func.count()).where(t.signal.c.processed_at.is_(None)))
        ).scalar_one()
        events = (await conn.execute(sa.select(sa.func.count()).select_from(t.action_set_event))).scalar_one()
        pairs = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(
                    sa.select(t.action_set_event.c.signal_id, t.action_set_event.c.action_set_id)
                    .distinct()
                    .subquery()
                )
            )
        ).scalar_one()
        states = list((await conn.execute(sa.select(t.action_set_event.c.state).distinct())).scalars())
    return pending, events, pairs, states


async def test_four_concurrent_workers_record_one_event_per_signal_and_set(db: Database, db_url: str) -> None:
    signals, sets = (1000, 2) if db.is_postgres else (200, 2)
    await _seed(db, signals=signals, action_sets=sets)
    settings: Settings = make_settings(db_url, worker_batch_size=10)
    workers, databases = [], []
    for _ in range(4):
        own_db = Database(settings.async_database_url, pool_size=2)
        databases.append(own_db)
        workers.append(
            SignalWorker(
                settings=settings, db=own_db, wakeup=Wakeup(), backend=create_flag_backend(settings, own_db)
            )
        )

    async def drain(worker: SignalWorker) -> int:
        total = 0
        while handled := await worker.drain_once():
            total += handled
        return total

    try:
        handled = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for own_db in databases:
            await own_db.dispose()
    assert sum(handled) == signals
    if db.is_postgres:
        assert sum(1 for h in handled if h > 0) > 1  # the work really was shared
    pending, events, pairs, states = await _outcome(db)
    assert pending == 0
    assert events == pairs == signals * sets
    assert states == ["success"]


async def _victim_in_transaction(db: Database) -> bool:
    """PostgreSQL: does another switchman connection have a transaction open (a batch in flight)?"""
    async with db.read() as conn:
        busy = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'switchman' "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND datname = current_database()"
                )
            )
        ).scalar_one()
    return bool(busy)


@pytest.mark.slow
async def test_killed_worker_claims_are_retaken(db: Database, db_url: str, tmp_path: Path) -> None:
    """SIGKILL a `switchman worker` process in the middle of its work: the batch it held is rolled back
    with its connection and another worker process takes those signals; every (signal, action set)
    still gets exactly one event, and none is left `started`."""
    signals = 400
    await _seed(db, signals=signals, action_sets=2)
    victim = spawn_worker(db_url, tmp_path, worker_lease_seconds="1", worker_batch_size="10")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, events, _, _ = await _outcome(db)
            if events >= 20 and (not db.is_postgres or await _victim_in_transaction(db)):
                victim.send_signal(os_signal.SIGKILL)
                break
            await asyncio.sleep(0.005)
        victim.wait(timeout=10)
        assert victim.returncode == -os_signal.SIGKILL, "the worker must be killed mid-run"
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    pending_after_kill, events_after_kill, _, _ = await _outcome(db)
    assert pending_after_kill > 0
    assert 0 < events_after_kill < signals * 2

    rescuer = spawn_worker(db_url, tmp_path, worker_lease_seconds="1", worker_batch_size="10")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending, events, pairs, states = await _outcome(db)
            if pending == 0 and "started" not in states:
                break
            await asyncio.sleep(0.1)
    finally:
        rescuer.terminate()
        rescuer.wait(timeout=20)
    pending, events, pairs, states = await _outcome(db)
    assert pending == 0
    assert events == pairs == signals * 2
    assert states == ["success"]
