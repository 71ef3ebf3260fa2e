"""The embedded worker's set-based batches: adaptive claim size, order inside a batch, resumed runs."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from switchman.action_sets.event_store import save_event, start_event
from switchman.action_sets.repository import load_matching_candidates
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.engine.executor import ActionState
from switchman.flags.factory import create_flag_backend
from switchman.signal_endpoints.queue import claim_signals
from switchman.wakeup import Wakeup
from switchman.worker.embedded_batches import EmbeddedBatches
from switchman.worker.loop import SignalWorker
from tests.conftest import make_settings
from tests.worker.test_concurrency import _seed


async def _add_signals(db: Database, endpoint_id: int, count: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            t.signal.insert(),
            [
                {
                    "source": "signal-endpoint",
                    "source_id": endpoint_id,
                    "payload": "{}",
                    "created_at": datetime.now(UTC),
                }
                for _ in range(count)
            ],
        )


def _worker(db: Database, db_url: str, **overrides: float) -> SignalWorker:
    settings = make_settings(db_url, **overrides)
    return SignalWorker(settings=settings, db=db, wakeup=Wakeup(), backend=create_flag_backend(settings, db))


async def test_full_claims_double_up_to_the_maximum_and_a_short_one_keeps_twice_what_it_found(
    db: Database, db_url: str
) -> None:
    endpoint_id, _sets = await _seed(db, signals=95, action_sets=1)
    worker = _worker(
        db, db_url, worker_batch_size=10, worker_max_batch_size=40, worker_batch_target_seconds=3600
    )
    assert [await worker.drain_once() for _ in range(4)] == [10, 20, 40, 25]
    assert isinstance(worker.strategy, EmbeddedBatches)
    # The short claim (25 of 40) kept the size at min(40, 2 x 25): 15 new signals go in one batch.
    assert worker.strategy.sizer.limit == 40
    await _add_signals(db, endpoint_id, 15)
    assert await worker.drain_once() == 15
    assert worker.strategy.sizer.limit == 30
    # An empty queue, or a signal at a time, brings it back to the base size.
    assert await worker.drain_once() == 0
    assert worker.strategy.sizer.limit == 10
    await _add_signals(db, endpoint_id, 1)
    assert await worker.drain_once() == 1
    assert worker.strategy.sizer.limit == 10
    async with db.read() as conn:
        events = (await conn.execute(sa.select(sa.func.count()).select_from(t.action_set_event))).scalar_one()
    assert events == 111


async def test_a_batch_slower_than_twice_the_target_halves_the_claim(db: Database, db_url: str) -> None:
    await _seed(db, signals=150, action_sets=1)
    worker = _worker(
        db, db_url, worker_batch_size=10, worker_max_batch_size=40, worker_batch_target_seconds=3600
    )
    assert [await worker.drain_once() for _ in range(3)] == [10, 20, 40]
    # Every batch now takes longer than twice a (nanosecond) target: the claim shrinks back, never below
    # the base size, and never grows although each claim comes back full.
    assert isinstance(worker.strategy, EmbeddedBatches)
    worker.strategy.sizer.target_seconds = 1e-9
    assert [await worker.drain_once() for _ in range(3)] == [40, 20, 10]
    assert await worker.drain_once() == 10


async def _flag_state(db: Database) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(t.event.c.type, t.event.c.feature_name)
            .where(t.event.c.type.like("feature-environment-%"))
            .order_by(t.event.c.id)
        )
        return [(row.type, row.feature_name) for row in rows]


async def test_runs_of_one_batch_see_each_others_changes_in_signal_order(db: Database, db_url: str) -> None:
    """Two sets on one flag, on then off, for four signals in one batch: four real changes, in order."""
    _endpoint, set_ids = await _seed(db, signals=4, action_sets=2)
    async with db.transaction() as conn:
        await conn.execute(
            t.action.update()
            .where(t.action.c.action_set_id == set_ids[1])
            .values(action="TOGGLE_FEATURE_OFF")
        )
    worker = _worker(db, db_url, worker_batch_size=10)
    assert await worker.drain_once() == 4
    changes = await _flag_state(db)
    assert [kind for kind, _ in changes] == [
        "feature-environment-enabled",
        "feature-environment-disabled",
    ] * 4
    async with db.read() as conn:
        seqs = (
            await conn.execute(
                sa.select(
                    t.action_set_event.c.action_set_id,
                    t.action_set_event.c.seq,
                    t.action_set_event.c.signal_id,
                ).order_by(t.action_set_event.c.action_set_id, t.action_set_event.c.seq)
            )
        ).all()
    signal_ids = sorted({row.signal_id for row in seqs})
    assert [(row.action_set_id, row.seq, row.signal_id) for row in seqs] == [
        (set_id, n + 1, signal_id) for set_id in set_ids for n, signal_id in enumerate(signal_ids)
    ]


async def test_a_batch_resumes_a_started_event_and_skips_a_finished_one(db: Database, db_url: str) -> None:
    """Events left by another worker for pending signals: `started` is resumed (same event, its finished
    actions kept), a final one is left alone, and the new one takes the next dense `seq`."""
    endpoint_id, (set_id,) = await _seed(db, signals=3, action_sets=1)
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        (action_set,) = await load_matching_candidates(conn, source="signal-endpoint", source_id=endpoint_id)
        signals = await claim_signals(conn, worker_id="gone", now=now, lease=now - now, limit=3)
        interrupted = await start_event(conn, action_set=action_set, signal=signals[0].wire(), now=now)
        finished = await start_event(conn, action_set=action_set, signal=signals[1].wire(), now=now)
        assert interrupted is not None and finished is not None
        await save_event(conn, finished, state="failed", steps=[])
    worker = _worker(db, db_url, worker_batch_size=10)
    assert await worker.drain_once() == 3
    async with db.read() as conn:
        rows = {
            row.signal_id: row
            for row in await conn.execute(sa.select(t.action_set_event).order_by(t.action_set_event.c.id))
        }
        last_seq = (
            await conn.execute(sa.select(t.action_set.c.last_event_seq).where(t.action_set.c.id == set_id))
        ).scalar_one()
    first, second, third = (rows[signal.id] for signal in signals)
    assert (first.id, first.seq, first.state) == (interrupted.id, 1, "success")
    assert (second.id, second.seq, second.state) == (finished.id, 2, "failed")
    assert (third.seq, third.state) == (3, "success")
    assert last_seq == 3
    assert '"state":"success"' in first.doc and f'"id":{first.id},' in first.doc
    assert str(ActionState.NOT_STARTED) not in third.doc
